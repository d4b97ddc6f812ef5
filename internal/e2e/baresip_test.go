package e2e

// Issue 4 acceptance 5, second half: two real baresip instances (Debian's
// package, headless, scripted through ctrl_tcp) call each other with
// medianat=turn pointed at the edge's TURN server, using the credentials
// Edgeway issued with two phones' tokens, and mandatory SDES SRTP.
// Debian's baresip cannot send a bearer token, so the call itself is peer
// to peer (SIP over UDP between 127.0.0.3 and 127.0.0.4); the media goes
// through the edge's relay.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/edgeway/internal/testenv"
)

// baresipPath finds baresip. Without it the test is skipped, except under
// CI, where .ci/run installs it and its absence is a failure.
func baresipPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("baresip")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("baresip not found: .ci/run installs the Debian package baresip")
	}
	t.Skip("baresip not installed (Debian package baresip); .ci/run installs it")
	return ""
}

// freeUDPPort returns a UDP port free on ip at the time of the call.
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("cannot bind %s (is the 127.0.0.0/8 loopback range usable?): %v", ip, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// baresip is one running instance and its ctrl_tcp connection.
type baresip struct {
	name, ip string
	sipPort  int
	log      *bytes.Buffer
	logMu    *sync.Mutex
	conn     net.Conn
	events   chan map[string]any
	seen     []map[string]any // events read, in order, not yet awaited
	replies  chan map[string]any
	done     chan struct{} // closed when the process has exited
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (b *baresip) output() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return b.log.String()
}

// startBaresip writes a config and an account (medianat=turn with the
// given TURN server and credentials, mediaenc=srtp-mand, PCMU only, no
// registration) and starts baresip with it.
func startBaresip(t *testing.T, bin, name, ip, turnServer, user, pass string) *baresip {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b := &baresip{name: name, ip: ip, sipPort: freeUDPPort(t, ip), log: &bytes.Buffer{}, logMu: &sync.Mutex{},
		events: make(chan map[string]any, 256), replies: make(chan map[string]any, 16), done: make(chan struct{})}
	ctrl := freeTCPPort(t)
	// ausine produces 48 kHz stereo only: baresip resamples to PCMU's 8 kHz.
	config := fmt.Sprintf(`poll_method epoll
sip_listen %[1]s:%[2]d
sip_trans_def udp
net_interface %[1]s
audio_source ausine,440
audio_player aufile,%[3]s/received.wav
audio_alert aufile,/dev/null
ausrc_srate 48000
auplay_srate 48000
ausrc_channels 2
auplay_channels 2
rtp_stats yes
rtcp_mux yes
module_path /usr/lib/baresip/modules
module g711.so
module ausine.so
module aufile.so
module srtp.so
module turn.so
module_app account.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:%[4]d
`, ip, b.sipPort, dir, ctrl)
	account := fmt.Sprintf("<sip:%s@%s:%d;transport=udp>;regint=0;medianat=turn;stunserver=turn:%s;stunuser=%s;stunpass=%s;mediaenc=srtp-mand;audio_codecs=PCMU\n",
		name, ip, b.sipPort, turnServer, user, pass)
	for f, body := range map[string]string{"config": config, "accounts": account, "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-f", dir, "-v")
	w := lockedWriter{b.logMu, b.log}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting baresip: %v", err)
	}
	go func() { _ = cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("baresip %s output:\n%s", name, b.output())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrl))
		if err == nil {
			b.conn = c
			break
		}
		select {
		case <-b.done:
			t.Fatalf("baresip %s exited at start:\n%s", name, b.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip %s: ctrl_tcp never listened on %d:\n%s", name, ctrl, b.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { b.conn.Close() })
	go b.readLoop()
	return b
}

// readLoop splits ctrl_tcp's netstrings ("<len>:<json>,") into events and
// command replies.
func (b *baresip) readLoop() {
	r := bufio.NewReader(b.conn)
	defer close(b.events)
	for {
		msg, err := readNetstring(r)
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(msg, &m) != nil {
			continue
		}
		if m["event"] == true {
			b.events <- m
		} else if m["response"] == true {
			b.replies <- m
		}
	}
}

func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	msg := make([]byte, n+1)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	if msg[n] != ',' {
		return nil, errors.New("netstring without its comma")
	}
	return msg[:n], nil
}

// command sends a ctrl_tcp command and waits for its reply.
func (b *baresip) command(t *testing.T, cmd, params string) string {
	t.Helper()
	msg, _ := json.Marshal(map[string]string{"command": cmd, "params": params, "token": cmd})
	if _, err := fmt.Fprintf(b.conn, "%d:%s,", len(msg), msg); err != nil {
		t.Fatalf("%s: ctrl_tcp %s: %v", b.name, cmd, err)
	}
	select {
	case m := <-b.replies:
		if m["ok"] != true {
			t.Fatalf("%s: %s %q refused: %v", b.name, cmd, params, m)
		}
		s, _ := m["data"].(string)
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no reply to %s", b.name, cmd)
	}
	return ""
}

// await returns the first event typ not awaited yet, waiting for it if
// need be; a CALL_CLOSED before it fails the test.
func (b *baresip) await(t *testing.T, typ string) map[string]any {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for i := 0; ; i++ {
		for ; i < len(b.seen); i++ {
			m := b.seen[i]
			if m["type"] == typ {
				b.seen = append(b.seen[:i], b.seen[i+1:]...)
				return m
			}
			if m["type"] == "CALL_CLOSED" {
				t.Fatalf("%s: call closed (%v) while waiting for %s", b.name, m["param"], typ)
			}
		}
		select {
		case m, ok := <-b.events:
			if !ok {
				t.Fatalf("%s: ctrl_tcp closed while waiting for %s", b.name, typ)
			}
			b.seen = append(b.seen, m)
			i = len(b.seen) - 2 // the loop's i++ lands on the new event
		case <-timeout:
			t.Fatalf("%s: no %s event", b.name, typ)
		}
	}
}

// callSummary is what baresip prints when the call's audio stream ends.
type callSummary struct{ txPackets, rxPackets, txErrors, rxErrors, txLost, rxLost int }

var summaryRow = regexp.MustCompile(`(?m)^(packets|errors|lost):\s+(\d+)\s+(\d+)`)

func parseSummary(out string) (callSummary, bool) {
	var s callSummary
	seen := map[string]bool{}
	for _, m := range summaryRow.FindAllStringSubmatch(out, -1) {
		tx, _ := strconv.Atoi(m[2])
		rx, _ := strconv.Atoi(m[3])
		switch m[1] {
		case "packets":
			s.txPackets, s.rxPackets = tx, rx
		case "errors":
			s.txErrors, s.rxErrors = tx, rx
		case "lost":
			s.txLost, s.rxLost = tx, rx
		}
		seen[m[1]] = true
	}
	return s, len(seen) == 3
}

// What baresip logs (-v) of the call's media addresses: the peer's, from
// its SDP ("starting RTCP with remote A", RTCP being multiplexed on the
// RTP port), and the source of the RTP it receives.
var (
	sdpRemote = regexp.MustCompile(`starting RTCP with remote ([0-9.]+:\d+)`)
	rtpSource = regexp.MustCompile(`incoming rtp for 'audio' established, receiving from ([0-9.]+:\d+)`)
)

func TestBaresipCallThroughEdgeTURN(t *testing.T) {
	const talk = 5 * time.Second
	bin := baresipPath(t)
	env := testenv.Start(t, testenv.Options{})
	// Edgeway-issued TURN credentials: from two phones' token responses.
	ta := registered(t, env, phoneA, true).Tokens().TURN
	tb := registered(t, env, phoneB, true).Tokens().TURN
	if ta == nil || tb == nil {
		t.Fatal("token responses carry no turn object")
	}
	turnSrv := env.Edge.TURN()
	if turnSrv == nil {
		t.Fatal("the edge runs no TURN server")
	}
	alice := startBaresip(t, bin, "alice", "127.0.0.3", env.Info.EdgeTURN, ta.Username, ta.Credential)
	bob := startBaresip(t, bin, "bob", "127.0.0.4", env.Info.EdgeTURN, tb.Username, tb.Credential)
	_, fromPeers0 := turnSrv.Relayed()

	alice.command(t, "dial", fmt.Sprintf("sip:bob@%s:%d", bob.ip, bob.sipPort))
	bob.await(t, "CALL_INCOMING")
	bob.command(t, "accept", "")
	alice.await(t, "CALL_ESTABLISHED")
	bob.await(t, "CALL_ESTABLISHED")
	menc := alice.await(t, "CALL_MENC")
	if p, _ := menc["param"].(string); !strings.Contains(p, "AES_CM_128_HMAC_SHA1_80") {
		t.Errorf("alice's media encryption event = %q, want SDES AES_CM_128_HMAC_SHA1_80", p)
	}
	relays := map[netip.AddrPort]bool{}
	for _, a := range turnSrv.RelayAddrs() {
		relays[a] = true
	}
	if len(relays) < 2 {
		t.Fatalf("the edge's TURN holds %d allocations during the call, want one per side at least", len(relays))
	}
	time.Sleep(talk)
	alice.command(t, "hangup", "")
	alice.await(t, "CALL_CLOSED")
	bob.await(t, "CALL_CLOSED")
	_, fromPeers := turnSrv.Relayed()

	// Both print their audio summary when the stream is destroyed.
	var sums [2]callSummary
	for i, b := range []*baresip{alice, bob} {
		var ok bool
		deadline := time.Now().Add(5 * time.Second)
		for !ok && time.Now().Before(deadline) {
			sums[i], ok = parseSummary(b.output())
			time.Sleep(50 * time.Millisecond)
		}
		if !ok {
			t.Fatalf("%s printed no audio summary", b.name)
		}
		out := b.output()
		s := sums[i]
		t.Logf("%s: sent %d, received %d, lost %d, errors %d", b.name, s.txPackets, s.rxPackets, s.rxLost, s.rxErrors)
		if !strings.Contains(out, "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)") {
			t.Errorf("%s: SRTP never enabled", b.name)
		}
		if n := strings.Count(out, "failed to decrypt"); n > 0 {
			t.Errorf("%s: %d SRTP packets failed authentication", b.name, n)
		}
		// 20 ms packets: most of the talk time's worth each way (the
		// stream starts a little after CALL_ESTABLISHED).
		if min := int(talk/(20*time.Millisecond)) * 8 / 10; s.txPackets < min || s.rxPackets < min {
			t.Errorf("%s: sent %d, received %d packets; want at least %d each way", b.name, s.txPackets, s.rxPackets, min)
		}
		if s.rxLost != 0 || s.txLost != 0 || s.rxErrors != 0 || s.txErrors != 0 {
			t.Errorf("%s: lost %d/%d, errors %d/%d; want 0 on loopback", b.name, s.txLost, s.rxLost, s.txErrors, s.rxErrors)
		}
	}
	// The SDP carried relayed addresses: the media address each side's
	// SDP gave the other, and the source of the RTP each received, are
	// allocations on the edge's relay, not the instances' own addresses.
	for _, b := range []*baresip{alice, bob} {
		for _, re := range []*regexp.Regexp{sdpRemote, rtpSource} {
			m := re.FindStringSubmatch(b.output())
			if m == nil {
				t.Errorf("%s logged no %q", b.name, re)
				continue
			}
			if ap, err := netip.ParseAddrPort(m[1]); err != nil || !relays[ap] {
				t.Errorf("%s: %q: %s is not one of the edge's relayed addresses %v", b.name, re, m[1], turnSrv.RelayAddrs())
			}
		}
	}
	// No RTP flowed directly: every packet either side received came out
	// of a relay allocation (RTCP, multiplexed, comes on top).
	if got, want := fromPeers-fromPeers0, uint64(sums[0].rxPackets+sums[1].rxPackets); got < want {
		t.Errorf("the relay delivered %d datagrams from peers, fewer than the %d RTP packets received: some did not cross the relay", got, want)
	}
}
