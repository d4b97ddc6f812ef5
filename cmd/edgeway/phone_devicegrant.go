package main

import (
	"context"
	"fmt"
	"io"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/edgeway/edgeway/bench"
)

// deviceGrant onboards the phone with the device grant (RFC 8628): it asks
// the edge for a device_code, prints the user_code and the approval page
// (verification_uri_complete, also as a QR code an administrator can scan),
// and polls the token endpoint, honouring interval and slow_down, until an
// administrator approves or denies it or it expires.
func (p *phoneFlags) deviceGrant(ctx context.Context, ph *bench.Phone, note io.Writer) (bench.Tokens, error) {
	da, err := ph.DeviceAuthorize(ctx)
	if err != nil {
		return bench.Tokens{}, err
	}
	fmt.Fprintf(note, "device grant for %s: user_code %s\n", p.device, da.UserCode)
	fmt.Fprintf(note, "approve it at %s (code valid %ds; polling every %ds)\n", da.VerificationURIComplete, da.ExpiresIn, da.Interval)
	if qr, err := qrcode.New(da.VerificationURIComplete, qrcode.Low); err == nil {
		fmt.Fprint(note, qr.ToSmallString(false))
	}
	t, err := ph.PollDeviceToken(ctx, da, nil)
	if err != nil {
		return bench.Tokens{}, fmt.Errorf("device grant: %w", err)
	}
	return t, nil
}
