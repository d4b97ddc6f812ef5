package relay

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// RFC 8656 section 12.5: over UDP the TURN server sends ChannelData
// without pion's padding, so clients that take the datagram's length for
// the data's (baresip) get exactly the SRTP packet.
func TestUnpaddedChannelDataOverUDP(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		want int
	}{
		{"182-byte SRTP packet padded to 184", channelData(0x4001, 182, 2), 4 + 182},
		{"unpadded", channelData(0x4001, 180, 0), 4 + 180},
		{"1 byte of padding", channelData(0x4fff, 3, 1), 4 + 3},
		{"4 or more extra bytes: not padding, left alone", channelData(0x4001, 10, 4), 4 + 10 + 4},
		{"length beyond the datagram: left alone", append([]byte{0x40, 0x01, 0x00, 0x10}, make([]byte, 8)...), 12},
		{"STUN message: left alone", append([]byte{0x01, 0x01, 0x00, 0x02}, make([]byte, 22)...), 26},
		{"too short", []byte{0x40, 0x01}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer recv.Close()
			send, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer send.Close()
			n, err := unpaddedUDP{send}.WriteTo(tc.msg, recv.LocalAddr())
			if err != nil || n != len(tc.msg) {
				t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(tc.msg))
			}
			buf := make([]byte, 2048)
			_ = recv.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _, err := recv.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !bytes.Equal(buf[:got], tc.msg[:got]) {
				t.Errorf("datagram of %d bytes sent as %d bytes, want %d", len(tc.msg), got, tc.want)
			}
		})
	}
}

// channelData builds a ChannelData message with n bytes of data and pad
// bytes of zero padding.
func channelData(ch uint16, n, pad int) []byte {
	b := []byte{byte(ch >> 8), byte(ch), byte(n >> 8), byte(n)}
	for i := range n {
		b = append(b, byte(i)|1)
	}
	return append(b, make([]byte, pad)...)
}
