package sipx

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// registerThroughEdge is a REGISTER as the edge relays it to the core: a
// bearer token, two Vias, Path, Contact with the flow parameters (about
// 1.4 kB, more than one read of readBufferSize).
func registerThroughEdge(i int) string {
	tok := strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 30)
	return fmt.Sprintf("REGISTER sip:edgeway.test SIP/2.0\r\n"+
		"Via: SIP/2.0/TLS 127.0.0.33:5061;branch=z9hG4bK.edge%06d;rport\r\n"+
		"Via: SIP/2.0/TLS 127.1.0.1:40000;branch=z9hG4bK.phone%06d;rport=40000;received=127.1.0.1\r\n"+
		"Max-Forwards: 69\r\n"+
		"From: <sip:7000001@edgeway.test>;tag=a%06d\r\n"+
		"To: <sip:7000001@edgeway.test>\r\n"+
		"Call-ID: reg-%06d@127.1.0.1\r\n"+
		"CSeq: %d REGISTER\r\n"+
		"Contact: <sip:7000001@127.1.0.1:40000;transport=tls>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1;expires=3600\r\n"+
		"Path: <sip:flow-abcdefabcdef@127.0.0.33:5061;transport=tls;lr;ob>\r\n"+
		"Authorization: Bearer %s\r\n"+
		"Supported: path, outbound\r\n"+
		"Content-Length: 0\r\n\r\n", i, i, i, i, i+1, tok)
}

// TestStreamAcrossReads: a connection's messages parse the same whatever
// the read size cuts them into (the stream parser joins reads), so the
// per-connection read buffer may be smaller than a message.
func TestStreamAcrossReads(t *testing.T) {
	var stream strings.Builder
	for i := range 5 {
		stream.WriteString(registerThroughEdge(i))
	}
	if len(registerThroughEdge(0)) <= readBufferSize {
		t.Fatalf("test message is %d bytes, not more than one read (%d)", len(registerThroughEdge(0)), readBufferSize)
	}
	for _, chunk := range []int{1, 7, readBufferSize, 1 << 15} {
		par := NewParser().NewSIPStream()
		var got []string
		data := []byte(stream.String())
		for off := 0; off < len(data); off += chunk {
			err := par.ParseSIPStream(data[off:min(off+chunk, len(data))], func(m sip.Message) {
				got = append(got, m.(*sip.Request).CallID().Value())
			})
			if err != nil && err != sip.ErrParseSipPartial {
				t.Fatalf("chunk %d at %d: %v", chunk, off, err)
			}
		}
		if len(got) != 5 || got[4] != "reg-000004@127.1.0.1" {
			t.Fatalf("chunk %d: parsed %v, want 5 REGISTERs", chunk, got)
		}
	}
}

// BenchmarkStreamReads parses REGISTERs fed in reads of the given size:
// the CPU cost of a smaller per-connection read buffer.
func BenchmarkStreamReads(b *testing.B) {
	data := []byte(registerThroughEdge(1))
	for _, chunk := range []int{1024, 2048, 4096} {
		b.Run(fmt.Sprint(chunk), func(b *testing.B) {
			par := NewParser().NewSIPStream()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				for off := 0; off < len(data); off += chunk {
					if err := par.ParseSIPStream(data[off:min(off+chunk, len(data))], func(sip.Message) { n++ }); err != nil && err != sip.ErrParseSipPartial {
						b.Fatal(err)
					}
				}
				if n != 1 {
					b.Fatalf("parsed %d messages", n)
				}
			}
		})
	}
}
