// Package turncred is the TURN REST API credential scheme
// (draft-uberti-behave-turn-rest-00, coturn's use-auth-secret): a secret
// shared by every edge node signs time-limited TURN credentials, so any
// node can check a credential another node handed out without a lookup.
//
//	username   = "<unix expiry>:<device>[:<family tag>]"
//	credential = base64(HMAC-SHA1(secret, username))
//
// The family tag (FamilyTag) ties the credential to the refresh-token
// family of the access token it came with, so the edge can refuse it, and
// close its allocations, once the core revokes that family (R-2, a
// replayed refresh token). coturn and pion read only the expiry before
// the first colon, so the longer username stays compatible.
//
// The edge issues a credential with each token response (Issue) and its
// TURN server checks it (Verify): the long-term key RFC 8489 §9.2.2
// derives from the credential goes to pion/turn, which checks
// MESSAGE-INTEGRITY with it (in constant time, hmac.Equal). Check is the
// same test for a credential presented in the clear.
package turncred
