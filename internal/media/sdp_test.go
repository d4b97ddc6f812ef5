package media

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestSDPMarshal(t *testing.T) {
	gcm, _ := NewCrypto(1, SuiteAEADAES128GCM)
	relayed := netip.MustParseAddrPort("198.51.100.7:49170")
	s := SDP{
		Addr:        relayed,
		PayloadType: PayloadPCMU,
		Crypto:      []Crypto{gcm},
		Candidates:  []Candidate{RelayCandidate(relayed)},
		SessionID:   42, SessionVersion: 43,
	}
	want := "v=0\r\n" +
		"o=- 42 43 IN IP4 198.51.100.7\r\n" +
		"s=-\r\n" +
		"c=IN IP4 198.51.100.7\r\n" +
		"t=0 0\r\n" +
		"m=audio 49170 RTP/SAVP 0\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		"a=ptime:20\r\n" +
		"a=sendrecv\r\n" +
		gcm.Attribute() + "\r\n" +
		"a=candidate:1 1 UDP 16777215 198.51.100.7 49170 typ relay\r\n"
	if got := string(s.Marshal()); got != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", got, want)
	}
}

func TestSDPRoundTrip(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:40000", "[2001:db8::7]:5004"} {
		local := netip.MustParseAddrPort(addr)
		offer, err := NewOffer(local)
		if err != nil {
			t.Fatal(err)
		}
		c := RelayCandidate(local)
		c.Related = netip.MustParseAddrPort("10.0.0.2:6000")
		offer.Candidates = []Candidate{c}
		got, err := ParseSDP(offer.Marshal())
		if err != nil {
			t.Fatalf("ParseSDP(Marshal()): %v\n%s", err, offer.Marshal())
		}
		if !reflect.DeepEqual(got, offer) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, offer)
		}
		if len(got.Crypto) != 2 || got.Crypto[0].Suite != SuiteAEADAES128GCM || got.Crypto[1].Suite != SuiteAESCM128HMACSHA1_80 {
			t.Errorf("default offer suites: %v", got.Crypto)
		}
	}
}

// A body in the style other user agents (baresip, Cisco) send, with
// attributes we ignore and a crypto line we cannot use.
func TestParseSDPForeign(t *testing.T) {
	key30 := "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
	body := "v=0\r\n" +
		"o=- 3895725381 3895725382 IN IP4 192.0.2.10\r\n" +
		"s=baresip\r\n" +
		"c=IN IP4 192.0.2.10\r\n" +
		"t=0 0\r\n" +
		"a=tool:baresip\r\n" +
		"m=audio 10000 RTP/SAVP 9 0 8 101\r\n" +
		"a=rtpmap:9 G722/8000\r\n" +
		"a=rtpmap:0 PCMU/8000\r\n" +
		"a=rtpmap:101 telephone-event/8000\r\n" +
		"a=fmtp:101 0-15\r\n" +
		"a=rtcp:10001\r\n" +
		"a=sendonly\r\n" +
		"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + key30 + key30 + "\r\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4\r\n" +
		"a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n" +
		"a=ptime:20\r\n"
	s, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr != netip.MustParseAddrPort("192.0.2.10:10000") || s.PayloadType != 0 || s.Direction != SendOnly {
		t.Errorf("parsed %+v", s)
	}
	if len(s.Crypto) != 1 || s.Crypto[0].Tag != 3 {
		t.Fatalf("crypto lines kept: %v, want only tag 3", s.Crypto)
	}
	ans, chosen, err := Answer(s, netip.MustParseAddrPort("127.0.0.1:4000"))
	if err != nil {
		t.Fatal(err)
	}
	if chosen.Tag != 3 || ans.Crypto[0].Tag != 3 || ans.Direction != RecvOnly {
		t.Errorf("answer %+v chose %v", ans, chosen)
	}
}

func TestAnswerSelection(t *testing.T) {
	local := netip.MustParseAddrPort("127.0.0.1:4000")
	peer := netip.MustParseAddrPort("127.0.0.1:5000")
	for _, tc := range []struct {
		name   string
		suites []string
	}{
		{"gcm first", []string{SuiteAEADAES128GCM, SuiteAESCM128HMACSHA1_80}},
		{"aes first", []string{SuiteAESCM128HMACSHA1_80, SuiteAEADAES128GCM}},
		{"aes only", []string{SuiteAESCM128HMACSHA1_80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			offer, err := NewOffer(peer, tc.suites...)
			if err != nil {
				t.Fatal(err)
			}
			received, err := ParseSDP(offer.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			answer, chosen, err := Answer(received, local)
			if err != nil {
				t.Fatal(err)
			}
			if chosen.Suite != tc.suites[0] || chosen.Tag != 1 || !bytes.Equal(chosen.Key, offer.Crypto[0].Key) {
				t.Errorf("chose %v, want the first offered line %v", chosen, offer.Crypto[0])
			}
			if len(answer.Crypto) != 1 || answer.Crypto[0].Tag != chosen.Tag || answer.Crypto[0].Suite != chosen.Suite {
				t.Fatalf("answer crypto %v", answer.Crypto)
			}
			if bytes.Equal(answer.Crypto[0].Key, chosen.Key) {
				t.Error("answer reuses the offerer's key; SDES needs one key per direction")
			}
			if answer.Addr != local {
				t.Errorf("answer address %v, want %v", answer.Addr, local)
			}

			// The offerer pairs the answer with its offer; the two sessions interoperate.
			got, err := ParseSDP(answer.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			offLocal, offRemote, err := AcceptAnswer(offer, got)
			if err != nil {
				t.Fatal(err)
			}
			offerer, err := NewSession(offLocal, offRemote)
			if err != nil {
				t.Fatal(err)
			}
			answerer, err := NewSession(answer.Crypto[0], chosen)
			if err != nil {
				t.Fatal(err)
			}
			for _, dir := range []struct{ from, to *Session }{{offerer, answerer}, {answerer, offerer}} {
				pkt := testRTP(1, 160)
				p, err := dir.from.Protect(pkt)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := dir.to.Unprotect(p); err != nil || !bytes.Equal(got, pkt) {
					t.Fatalf("Unprotect after offer/answer: %v", err)
				}
			}
		})
	}

	t.Run("nothing usable", func(t *testing.T) {
		body := strings.Replace(string(mustOffer(t, SuiteAEADAES128GCM).Marshal()), "AEAD_AES_128_GCM", "AEAD_AES_256_GCM", 1)
		offer, err := ParseSDP([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := Answer(offer, local); !errors.Is(err, ErrNoCommonSuite) {
			t.Errorf("Answer: %v, want ErrNoCommonSuite", err)
		}
	})

	t.Run("answer with a tag not offered", func(t *testing.T) {
		offer := mustOffer(t, SuiteAEADAES128GCM)
		answer, _, _ := Answer(offer, local)
		answer.Crypto[0].Tag = 9
		if _, _, err := AcceptAnswer(offer, answer); !errors.Is(err, ErrSDP) {
			t.Errorf("AcceptAnswer: %v, want ErrSDP", err)
		}
	})

	t.Run("answer rejecting the stream", func(t *testing.T) {
		offer := mustOffer(t, SuiteAEADAES128GCM)
		answer, _, _ := Answer(offer, local)
		answer.Addr = netip.AddrPortFrom(answer.Addr.Addr(), 0)
		if _, _, err := AcceptAnswer(offer, answer); !errors.Is(err, ErrRejected) {
			t.Errorf("AcceptAnswer: %v, want ErrRejected", err)
		}
	})
}

func mustOffer(t *testing.T, suites ...string) SDP {
	t.Helper()
	o, err := NewOffer(netip.MustParseAddrPort("127.0.0.1:5000"), suites...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestParseSDPRefusals(t *testing.T) {
	good := string(mustOffer(t, SuiteAEADAES128GCM).Marshal())
	cryptoLine := good[strings.Index(good, "a=crypto:"):]
	cryptoLine = cryptoLine[:strings.Index(cryptoLine, "\r\n")]
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("%q not in the offer", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"plain RTP", replace("RTP/SAVP", "RTP/AVP"), ErrNoSRTP},
		{"SAVPF", replace("RTP/SAVP", "UDP/TLS/RTP/SAVPF"), ErrNoSRTP},
		{"no PCMU", replace("RTP/SAVP 0", "RTP/SAVP 8"), ErrNoCodec},
		{"PT 0 is not PCMU", replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 opus/48000/2"), ErrSDP},
		{"video", replace("m=audio", "m=video"), ErrSDP},
		{"two streams", good + "m=audio 6000 RTP/SAVP 0\r\n", ErrSDP},
		{"no c=", replace("c=IN IP4 127.0.0.1\r\n", ""), ErrSDP},
		{"fqdn", replace("c=IN IP4 127.0.0.1", "c=IN IP4 relay.example.com"), ErrSDP},
		{"family mismatch", replace("c=IN IP4 127.0.0.1", "c=IN IP6 127.0.0.1"), ErrSDP},
		{"multicast", replace("c=IN IP4 127.0.0.1", "c=IN IP4 224.2.1.1/127"), ErrSDP},
		{"bad port", replace("m=audio 5000", "m=audio 70000"), ErrSDP},
		{"no m=", good[:strings.Index(good, "m=")], ErrSDP},
		{"no o=", replace("o=- ", "x=- "), ErrSDP},
		{"not v=0 first", "s=-\r\n" + good, ErrSDP},
		{"garbage line", replace("s=-", "hello"), ErrSDP},
		{"session-level crypto", replace("t=0 0\r\n", "t=0 0\r\n"+cryptoLine+"\r\n"), ErrSDP},
		{"duplicate tag", replace(cryptoLine, cryptoLine+"\r\n"+cryptoLine), ErrSDP},
		{"bad key", replace("inline:", "inline:!!"), ErrCryptoKey},
		{"bad candidate", good + "a=candidate:1 1 UDP 1 relay.example.com 5000 typ relay\r\n", ErrSDP},
		{"too big", good + strings.Repeat("a=x\r\n", maxSDPSize/5), ErrSDP},
		{"too many crypto lines", replace(cryptoLine, strings.Repeat(strings.Replace(cryptoLine, "GCM", "GCM_X", 1)+"\r\n", maxCryptoLines+1)), ErrSDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := ParseSDP([]byte(tc.body)); !errors.Is(err, tc.want) {
				t.Errorf("ParseSDP = %+v, %v; want %v\n%s", s, err, tc.want, tc.body)
			}
		})
	}
}

func TestParseCandidate(t *testing.T) {
	c, err := ParseCandidate("candidate:842163049 1 udp 1677729535 203.0.113.9 41999 typ srflx raddr 10.0.0.4 rport 41999 generation 0 network-cost 999")
	if err != nil {
		t.Fatal(err)
	}
	want := Candidate{Foundation: "842163049", Component: 1, Transport: "udp", Priority: 1677729535,
		Addr: netip.MustParseAddrPort("203.0.113.9:41999"), Type: "srflx", Related: netip.MustParseAddrPort("10.0.0.4:41999")}
	if c != want {
		t.Errorf("ParseCandidate = %+v, want %+v", c, want)
	}
	for _, bad := range []string{"", "candidate:1 1 UDP", "candidate:1 0 UDP 1 1.2.3.4 5 typ host",
		"candidate:1 1 UDP x 1.2.3.4 5 typ host", "candidate:1 1 UDP 1 1.2.3.4 5 type host",
		"candidate:1 1 UDP 1 abc.local 5 typ host", "candidate:1 1 UDP 1 1.2.3.4 5 typ host raddr"} {
		if _, err := ParseCandidate(bad); !errors.Is(err, ErrSDP) {
			t.Errorf("ParseCandidate(%q): %v, want ErrSDP", bad, err)
		}
	}
}

func FuzzParseSDP(f *testing.F) {
	o, _ := NewOffer(netip.MustParseAddrPort("127.0.0.1:5000"))
	o.Candidates = []Candidate{RelayCandidate(o.Addr)}
	f.Add(o.Marshal())
	f.Add([]byte("v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0\r\nc=IN IP6 ::1\r\na=inactive\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSDP(body)
		if err != nil {
			return
		}
		again, err := ParseSDP(s.Marshal())
		if err != nil {
			t.Fatalf("re-parsing our own Marshal of %q: %v", body, err)
		}
		if again.Addr != s.Addr || again.Direction != s.Direction || len(again.Crypto) != len(s.Crypto) {
			t.Fatalf("round trip changed %+v into %+v", s, again)
		}
	})
}
