package sipx

import (
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/edgeway/edgeway/mtls"
)

// MarkEstablished tells the mtls listener a connection came from that the
// client on it has registered, so its pre-registration timeout
// (mtls.ListenerOptions.EstablishTimeout) no longer applies and the user
// agent's idle timeout alone governs it. source is the connection's remote
// "ip:port" (sip.Request's Source). It reports whether such a connection
// was found.
func MarkEstablished(ua *sipgo.UserAgent, source string) bool {
	c, err := ua.TransportLayer().GetConnection("tls", source)
	if err != nil || c == nil {
		return false
	}
	tc, ok := c.(*sip.TCPConnection)
	if !ok {
		return false
	}
	return mtls.Established(tc.Conn)
}
