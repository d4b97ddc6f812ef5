package logx

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretsNeverReachTheLog(t *testing.T) {
	const tok = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJTRVAifQ.c2lnbmF0dXJl"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		h, err := NewHandler(&buf, slog.LevelDebug, format)
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(h)
		log.Error("failed to parse", "data", "REGISTER sip:x SIP/2.0\r\nAuthorization: Bearer "+tok+"\r\n")
		log.Info("header", "value", "Bearer "+tok)
		log.Info("form", "body", "grant_type=refresh_token&refresh_token=ewr_secret123")
		log.Info("form2", "q", "refresh_token=ewr_secret123&x=1")
		log.Warn("err", "err", errors.New("bad header Authorization: bearer "+tok))
		log.Info("sdp", "sdp", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2VjcmV0LXNydHAta2V5LXNhbHQ=")
		out := buf.String()
		for _, secret := range []string{tok, "ewr_secret123", "c2lnbmF0dXJl", "c2VjcmV0LXNydHAta2V5LXNhbHQ"} {
			if strings.Contains(out, secret) {
				t.Fatalf("%s output leaks %q:\n%s", format, secret, out)
			}
		}
		if !strings.Contains(out, "bytes not logged") || !strings.Contains(out, "[redacted]") {
			t.Fatalf("%s output does not show the redaction:\n%s", format, out)
		}
	}
	if _, err := NewHandler(&bytes.Buffer{}, slog.LevelInfo, "xml"); err == nil {
		t.Fatal("unknown format accepted")
	}
}
