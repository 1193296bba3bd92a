package github

import (
	"errors"
	"fmt"
	"strings"
)

// errLinkSyntax is wrapped by every parseLink error.
var errLinkSyntax = errors.New("github: malformed Link header")

// link is one link-value of an RFC 8288 Link header.
type link struct {
	// URL is the URI-Reference between < and >, unresolved.
	URL string
	// Rel holds the relation types of the first rel parameter, lower-cased
	// (relation types compare case-insensitively), nil when there is none.
	Rel []string
}

// hasRel reports whether l has relation type rel (lower case).
func (l link) hasRel(rel string) bool {
	for _, r := range l.Rel {
		if r == rel {
			return true
		}
	}
	return false
}

// maxLinks bounds the links of one header: GitHub sends at most four
// (first, prev, next, last), and the header is untrusted input.
const maxLinks = 64

// parseLink parses a Link header value (RFC 8288 section 3):
//
//	Link = #( "<" URI-Reference ">" *( OWS ";" OWS link-param ) )
//	link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
//
// Several Link header fields are parsed as one, joined with ", ". Empty
// list elements are allowed, as in every HTTP list. Parameters other than
// rel are checked for syntax and dropped; only the first rel counts
// (section 3.3). An unquoted parameter value is read leniently (see
// cutValue).
func parseLink(h string) ([]link, error) {
	var out []link
	s := h
	for {
		s = trimOWS(s)
		if s == "" {
			return out, nil
		}
		if s[0] == ',' {
			s = s[1:]
			continue
		}
		if len(out) == maxLinks {
			return nil, fmt.Errorf("%w: more than %d links", errLinkSyntax, maxLinks)
		}
		if s[0] != '<' {
			return nil, fmt.Errorf("%w: want '<' at offset %d", errLinkSyntax, len(h)-len(s))
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return nil, fmt.Errorf("%w: unterminated '<'", errLinkSyntax)
		}
		l := link{URL: s[1:end]}
		s = s[end+1:]
		sawRel := false
		for {
			s = trimOWS(s)
			if s == "" || s[0] == ',' {
				break
			}
			if s[0] != ';' {
				return nil, fmt.Errorf("%w: want ';' or ',' at offset %d", errLinkSyntax, len(h)-len(s))
			}
			s = trimOWS(s[1:])
			if s == "" || s[0] == ',' {
				// A trailing ";" is tolerated: some servers send it.
				break
			}
			name, rest := cutToken(s)
			if name == "" {
				return nil, fmt.Errorf("%w: want a parameter name at offset %d", errLinkSyntax, len(h)-len(s))
			}
			s = trimOWS(rest)
			var value string
			if s != "" && s[0] == '=' {
				s = trimOWS(s[1:])
				var err error
				if value, s, err = cutValue(s); err != nil {
					return nil, err
				}
			}
			if !sawRel && asciiLower(name) == "rel" {
				sawRel = true
				l.Rel = strings.Fields(asciiLower(value))
			}
		}
		out = append(out, l)
	}
}

// nextLink returns the URL of the first link with relation "next", or "".
func nextLink(links []link) string {
	for _, l := range links {
		if l.hasRel("next") {
			return l.URL
		}
	}
	return ""
}

// cutValue cuts a quoted-string, or an unquoted value, off the front of
// s. An unquoted value should be a token, but servers send values such as
// type=text/html bare; it runs to the next whitespace, ';' or ','.
func cutValue(s string) (value, rest string, err error) {
	if s == "" || s[0] != '"' {
		i := strings.IndexAny(s, " \t;,")
		if i < 0 {
			i = len(s)
		}
		value, rest = s[:i], s[i:]
		if value == "" {
			return "", "", fmt.Errorf("%w: want a parameter value", errLinkSyntax)
		}
		return value, rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", fmt.Errorf("%w: unterminated quoted-string", errLinkSyntax)
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("%w: unterminated quoted-string", errLinkSyntax)
}

// cutToken cuts the longest RFC 9110 token off the front of s.
func cutToken(s string) (token, rest string) {
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// trimOWS trims optional whitespace (spaces and tabs) from the front.
func trimOWS(s string) string {
	return strings.TrimLeft(s, " \t")
}

// asciiLower lower-cases ASCII letters only: relation types and parameter
// names are ASCII, and Unicode case mapping would rewrite invalid UTF-8.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
