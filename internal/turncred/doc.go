// Package turncred is the TURN REST API credential scheme
// (draft-uberti-behave-turn-rest-00, coturn's use-auth-secret): a secret
// shared by every edge node signs time-limited TURN credentials, so any
// node can check a credential another node handed out without a lookup.
//
//	username   = "<unix expiry>:<device>"
//	credential = base64(HMAC-SHA1(secret, username))
//
// The edge issues a credential with each token response (Issue) and its
// TURN server checks it (Verify): the long-term key RFC 8489 §9.2.2
// derives from the credential goes to pion/turn, which checks
// MESSAGE-INTEGRITY with it (in constant time, hmac.Equal). Check is the
// same test for a credential presented in the clear.
package turncred
