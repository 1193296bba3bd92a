// Package bearer checks the operator's bearer token, for the HTTP API and
// the gRPC admin service alike.
//
// Both sides are hashed with SHA-256 before a constant-time compare, so
// neither the token's bytes nor its length leak through timing
// (subtle.ConstantTimeCompare returns early on a length mismatch).
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// Scheme is the Authorization scheme, matched case-insensitively.
const Scheme = "Bearer"

// Checker holds the hash of the expected token, never the token itself.
type Checker struct {
	sum   [sha256.Size]byte
	empty bool
}

// New returns a Checker for token. An empty token accepts nothing.
func New(token string) Checker {
	return Checker{sum: sha256.Sum256([]byte(token)), empty: token == ""}
}

// Valid reports whether got is the token.
func (c Checker) Valid(got string) bool {
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(h[:], c.sum[:]) == 1 && !c.empty
}

// Authorized reports whether an Authorization header value ("Bearer
// <token>") carries the token.
func (c Checker) Authorized(header string) bool {
	tok, ok := Parse(header)
	// Compare even when the header is malformed, so a request without a
	// token costs the same as one with a wrong token.
	valid := c.Valid(tok)
	return ok && valid
}

// Parse extracts the token of an Authorization header value.
func Parse(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
