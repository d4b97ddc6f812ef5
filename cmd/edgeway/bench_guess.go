package main

// edgeway bench guess: an online guessing attack on activation codes
// through the edge (issue 9), from one or many loopback sources, to
// measure how many wrong guesses per second the core actually evaluates.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeway/edgeway/activation"
	"github.com/edgeway/edgeway/bench"
	"github.com/edgeway/edgeway/core"
	"github.com/edgeway/edgeway/internal/token"
)

// Guess outcomes, the classes of the results table. Only guessEvaluated
// is a guess the core looked up in its store.
const (
	guessEvaluated   = "400 wrong code (evaluated by the core)"
	guessLocked      = "400 code locked (per-device budget)"
	guessEdgeBudget  = "429 at the edge (failure budget)"
	guessCoreRefused = "429 at the core (per-source throttle)"
)

// guessClass sorts an answer to a wrong guess. The two 429s and the two
// 400s are told apart by their descriptions: this is a measuring tool,
// reading what a person would read.
func guessClass(err error) string {
	var te *bench.TokenError
	if !errors.As(err, &te) {
		return classOf(err)
	}
	switch {
	case te.Status == http.StatusBadRequest && te.Code == "invalid_grant" && strings.Contains(te.Description, "locked"):
		return guessLocked
	case te.Status == http.StatusBadRequest && te.Code == "invalid_grant":
		return guessEvaluated
	case te.Status == http.StatusTooManyRequests && strings.Contains(te.Description, "this edge"):
		return guessEdgeBudget
	case te.Status == http.StatusTooManyRequests:
		return guessCoreRefused
	}
	return fmt.Sprintf("HTTP %d %s", te.Status, te.Code)
}

// randomWrongCode draws a 16-digit code other than right.
func randomWrongCode(right string) (string, error) {
	r, err := activation.Parse(right)
	if err != nil {
		return "", err
	}
	for {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		c := fmt.Sprintf("%016d", binary.BigEndian.Uint64(b[:])%10_000_000_000_000_000)
		if c != string(r) {
			return c, nil
		}
	}
}

func (r *benchRun) guessRun(ctx context.Context) (bench.Result, error) {
	f := r.f
	if f.sources < 1 || f.sources > 60000 {
		return bench.Result{}, fmt.Errorf("%w: --sources must be in 1-60000", errUsage)
	}
	phones, err := r.provision(ctx, f.phones)
	if err != nil {
		return bench.Result{}, err
	}
	for _, p := range phones {
		p.ph.Close() // only the names and codes are needed
	}
	clients := make([]*http.Client, f.sources)
	for i := range clients {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: sourceIP(i).AsSlice()}, Timeout: 10 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4,
			TLSClientConfig: &tls.Config{RootCAs: r.pool, MinVersion: tls.VersionTLS12}}
		defer tr.CloseIdleConnections()
		clients[i] = &http.Client{Transport: tr, Timeout: f.timeout}
	}
	workers := f.workers
	if workers <= 0 {
		workers = min(f.sources, 64)
	}
	before := r.sampleProcs()
	var next atomic.Int64
	load := bench.Load{Workers: workers, Rate: f.rate, Duration: f.duration, Count: f.count, Progress: r.prog, What: "guess"}
	r.step("guessing activation codes of %d devices through the edge from %d source addresses (%d workers, %s)", len(phones), f.sources, workers, f.duration)
	rec, err := load.Run(ctx, func(ctx context.Context, _ int) string {
		i := int(next.Add(1) - 1)
		p := phones[i%len(phones)]
		code, err := randomWrongCode(p.code)
		if err != nil {
			return classOf(err)
		}
		_, err = bench.PostToken(ctx, clients[i%len(clients)], r.info.EdgeHTTPS, url.Values{
			"grant_type": {token.GrantTypeActivationCode}, "device": {p.name},
			"activation_code": {code}, "service_domain": {r.info.Domain}})
		if err == nil {
			return "" // a wrong code accepted: reported below
		}
		return guessClass(err)
	})
	if err != nil {
		return bench.Result{}, err
	}
	res := r.result("guess", rec, before, map[string]string{
		"sources": strconv.Itoa(f.sources), "workers": strconv.Itoa(workers), "devices": strconv.Itoa(len(phones))})
	res.Target = r.info.EdgeHTTPS + "/oauth2/token (activation-code grants with wrong codes)"
	sum := res.Summary
	secs := time.Duration(sum.Elapsed).Seconds()
	if secs <= 0 {
		secs = 1
	}
	rate := func(n int) string { return fmt.Sprintf("%d (%.1f /s)", n, float64(n)/secs) }
	refused := sum.Errors[guessLocked] + sum.Errors[guessEdgeBudget] + sum.Errors[guessCoreRefused]
	res.Extra["guesses sent"] = rate(sum.Attempts)
	res.Extra["guesses evaluated by the core"] = rate(sum.Errors[guessEvaluated])
	res.Extra["guesses refused unevaluated"] = rate(refused)
	res.Extra["wrong codes accepted (must be 0)"] = strconv.Itoa(sum.Successes)
	res.Figures["sent_per_s"] = float64(sum.Attempts) / secs
	res.Figures["evaluated_per_s"] = float64(sum.Errors[guessEvaluated]) / secs
	res.Figures["refused_per_s"] = float64(refused) / secs
	var codes []core.CodeView
	if err := r.admin.getJSON(ctx, "/api/v1/activation", &codes); err == nil {
		names := map[string]bool{}
		for _, p := range phones {
			names[p.name] = true
		}
		locked := 0
		for _, c := range codes {
			if names[c.Device] && c.State == "locked" {
				locked++
			}
		}
		res.Extra["device codes locked at the end"] = fmt.Sprintf("%d of %d", locked, len(phones))
	}
	if sum.Successes > 0 {
		_ = r.report(res)
		return res, fmt.Errorf("bench: %d wrong activation codes were accepted", sum.Successes)
	}
	return res, nil
}
