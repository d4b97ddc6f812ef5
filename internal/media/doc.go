// Package media is the simulated phone's media engine: SDES key exchange in
// SDP, SRTP, and a G.711 stream relayed through a TURN allocation (issue 4).
//
// Keys travel only in the SDP bodies of SIP messages, and SIP travels only
// over TLS (phone to edge) and mutual TLS (edge to core). Each side makes
// its own master key and salt, offers it in an a=crypto line (SDES, RFC
// 4568) and sends with it; the peer decrypts with the key it was offered.
// Suites: AES_CM_128_HMAC_SHA1_80 (RFC 4568 §6.2) and AEAD_AES_128_GCM
// (RFC 7714). SRTP itself (RFC 3711) is github.com/pion/srtp/v3.
//
// The TURN relay (RFC 8656, github.com/pion/turn/v5) forwards SRTP packets
// it cannot read: it never sees a key, so the edge and the relay carry only
// ciphertext (S-4: end-to-end secure media over MRA). Tests check this by
// capturing every byte the relay handles and looking for PlaintextMarker.
//
// What is where:
//
//   - sdes.go: Crypto, NewCrypto, ParseCrypto — the a=crypto attribute.
//   - sdp.go: SDP, NewOffer, Answer, AcceptAnswer — one audio stream,
//     RTP/SAVP, PCMU.
//   - srtp.go: Session — Protect/Unprotect with replay protection; ErrAuth.
//   - stats.go: Stats and the RFC 3550 receive statistics (loss, reordering,
//     duplicates, interarrival jitter per §A.8).
//   - stream.go: Stream — 20 ms PCMU packets as SRTP over a net.PacketConn.
//   - relay.go: AllocateRelay — a TURN allocation over UDP, TCP or TLS,
//     following an authenticated 300 Try Alternate (RFC 8489 §10).
//
// The simulated phone (bench/) calls it: NewOffer or Answer during the
// INVITE, AllocateRelay before it, Relay.Permit for the peer's address, then
// NewSession and Stream.Start for the call, Stream.Stop at BYE.
package media
