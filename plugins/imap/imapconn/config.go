package imapconn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TLS modes of Config.TLS.
const (
	// TLSImplicit speaks TLS from the first byte (IMAPS, port 993).
	TLSImplicit = "implicit"
	// TLSStartTLS connects in plaintext and upgrades with STARTTLS before
	// logging in (port 143); a server that does not offer it is refused.
	TLSStartTLS = "starttls"
)

// Bodies modes of Config.Bodies.
const (
	// BodiesNone collects no message body: envelope, flags and size only.
	BodiesNone = "none"
	// BodiesText collects the first text/plain part, decoded to UTF-8 and
	// cut at MaxBodyBytes.
	BodiesText = "text"
)

// Config defaults and bounds.
const (
	DefaultTLSPort       = 993
	DefaultPlainPort     = 143
	DefaultMaxMessages   = 5000
	MaxMaxMessages       = 1_000_000
	DefaultMaxBodyBytes  = 64 << 10
	MinMaxBodyBytes      = 1 << 10
	MaxMaxBodyBytes      = 1 << 20
	MaxMailboxes         = 1000
	MaxMailboxNameLength = 1000
	// SinceLayout is the layout of Config.Since.
	SinceLayout = "2006-01-02"
)

// AllMailboxes is the "mailboxes" value that selects every selectable
// mailbox the server lists.
const AllMailboxes = "*"

// DefaultMailbox is the mailbox read when the config names none.
const DefaultMailbox = "INBOX"

// Config is an imap connection's config. ConfigSchema documents the same
// fields for operators; Run and Check decode it strictly (an unknown field
// is an error), call Validate, then Normalize.
type Config struct {
	// Host is the server's DNS name or IP address, without a port.
	Host string `json:"host"`
	// Port is the server's port. Zero means DefaultTLSPort with implicit
	// TLS, DefaultPlainPort with STARTTLS or plaintext.
	Port int `json:"port,omitempty"`
	// TLS is TLSImplicit (the default) or TLSStartTLS.
	TLS string `json:"tls,omitempty"`
	// InsecurePlaintext speaks IMAP without TLS, password included. It
	// is refused for any host but a loopback address or localhost, and
	// cannot be combined with TLS or CAFile: it exists for tests against
	// a local server.
	InsecurePlaintext bool `json:"insecure_plaintext,omitempty"`
	// CAFile is an absolute path to PEM certificates to trust instead of
	// the system's roots, for a server with a private CA.
	CAFile string `json:"ca_file,omitempty"`
	// Mailboxes are the mailboxes to read: names, or AllMailboxes. Empty
	// means DefaultMailbox.
	Mailboxes Mailboxes `json:"mailboxes,omitzero"`
	// Since, a date as SinceLayout, skips messages the server received
	// (INTERNALDATE) before it.
	Since string `json:"since,omitempty"`
	// MaxMessagesPerRun bounds the messages one run writes, new or with
	// changed flags, across mailboxes; the next run goes on where it
	// stopped. Zero means DefaultMaxMessages.
	MaxMessagesPerRun int `json:"max_messages_per_run,omitempty"`
	// Bodies is BodiesNone (the default) or BodiesText.
	Bodies string `json:"bodies,omitempty"`
	// MaxBodyBytes bounds the text collected per message with
	// BodiesText. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int `json:"max_body_bytes,omitempty"`
}

// Mailboxes is Config.Mailboxes: a list of names, or "*" for every
// selectable mailbox. In JSON it is an array of strings or the string "*".
type Mailboxes struct {
	// All selects every selectable mailbox.
	All bool
	// Names, when All is false.
	Names []string
}

// UnmarshalJSON accepts ["INBOX", …] or "*".
func (m *Mailboxes) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s != AllMailboxes {
			return fmt.Errorf("mailboxes: %q is neither %q nor a list of names", s, AllMailboxes)
		}
		*m = Mailboxes{All: true}
		return nil
	}
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("mailboxes: not a list of names or %q", AllMailboxes)
	}
	*m = Mailboxes{Names: names}
	return nil
}

// MarshalJSON writes "*" or the list of names.
func (m Mailboxes) MarshalJSON() ([]byte, error) {
	if m.All {
		return json.Marshal(AllMailboxes)
	}
	return json.Marshal(m.Names)
}

// IsZero reports whether m selects nothing: the config left it out.
func (m Mailboxes) IsZero() bool { return !m.All && m.Names == nil }

// String is "*" or the names joined by ", ".
func (m Mailboxes) String() string {
	if m.All {
		return AllMailboxes
	}
	return strings.Join(m.Names, ", ")
}

// hostRE matches a DNS name: labels of letters, digits, '-' and '_'.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$`)

// Validate reports the first rule c breaks. It accepts a config before or
// after Normalize.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Host == "":
		return bad("host is required: the IMAP server's name, such as imap.gmail.com")
	case len(c.Host) > 253:
		return bad("host: longer than 253 characters")
	case strings.Contains(c.Host, "://"):
		return bad("host: %q is a URL; give the server's name alone, such as imap.example.com", c.Host)
	case !validHost(c.Host):
		if _, _, err := net.SplitHostPort(c.Host); err == nil {
			return bad("host: %q holds a port; put the port in \"port\"", c.Host)
		}
		return bad("host: %q is not a DNS name or an IP address", c.Host)
	}
	if c.Port < 0 || c.Port > 65535 {
		return bad("port: %d is outside 1-65535", c.Port)
	}
	switch c.TLS {
	case "", TLSImplicit, TLSStartTLS:
	default:
		return bad("tls: %q is not %s or %s", c.TLS, TLSImplicit, TLSStartTLS)
	}
	if c.InsecurePlaintext {
		switch {
		case c.TLS != "":
			return bad("insecure_plaintext cannot be combined with tls: plaintext has no TLS")
		case c.CAFile != "":
			return bad("insecure_plaintext cannot be combined with ca_file: plaintext has no TLS")
		case !loopback(c.Host):
			return bad("insecure_plaintext is refused for %q: the password would cross the network in the clear; it is allowed for localhost and loopback addresses only", c.Host)
		}
	}
	if c.CAFile != "" && !filepath.IsAbs(c.CAFile) {
		return bad("ca_file: %q is not an absolute path", c.CAFile)
	}
	if c.Mailboxes.All && c.Mailboxes.Names != nil {
		return bad("mailboxes: both %q and names", AllMailboxes)
	}
	if !c.Mailboxes.All && c.Mailboxes.Names != nil && len(c.Mailboxes.Names) == 0 {
		return bad("mailboxes: empty; leave it out to read %s, or use %q for every mailbox", DefaultMailbox, AllMailboxes)
	}
	if len(c.Mailboxes.Names) > MaxMailboxes {
		return bad("mailboxes: more than %d names", MaxMailboxes)
	}
	seen := map[string]bool{}
	for i, n := range c.Mailboxes.Names {
		if err := validMailboxName(n); err != nil {
			return bad("mailboxes[%d]: %v", i, err)
		}
		// INBOX is case-insensitive (RFC 3501 §5.1); other names are not.
		k := n
		if strings.EqualFold(n, DefaultMailbox) {
			k = DefaultMailbox
		}
		if seen[k] {
			return bad("mailboxes[%d]: %q is listed twice", i, n)
		}
		seen[k] = true
	}
	if c.Since != "" {
		if _, err := time.Parse(SinceLayout, c.Since); err != nil {
			return bad("since: %q is not a date as YYYY-MM-DD", c.Since)
		}
	}
	if c.MaxMessagesPerRun < 0 || c.MaxMessagesPerRun > MaxMaxMessages {
		return bad("max_messages_per_run: %d is outside 1-%d", c.MaxMessagesPerRun, MaxMaxMessages)
	}
	switch c.Bodies {
	case "", BodiesNone, BodiesText:
	default:
		return bad("bodies: %q is not %s or %s", c.Bodies, BodiesNone, BodiesText)
	}
	if c.MaxBodyBytes != 0 && (c.MaxBodyBytes < MinMaxBodyBytes || c.MaxBodyBytes > MaxMaxBodyBytes) {
		return bad("max_body_bytes: %d is outside %d-%d", c.MaxBodyBytes, MinMaxBodyBytes, MaxMaxBodyBytes)
	}
	return nil
}

// Normalize fills the defaults in. It leaves values Validate would refuse
// as they are.
func (c *Config) Normalize() {
	if c.TLS == "" && !c.InsecurePlaintext {
		c.TLS = TLSImplicit
	}
	if c.Port == 0 {
		c.Port = DefaultPlainPort
		if c.TLS == TLSImplicit {
			c.Port = DefaultTLSPort
		}
	}
	if c.Mailboxes.IsZero() {
		c.Mailboxes = Mailboxes{Names: []string{DefaultMailbox}}
	}
	for i, n := range c.Mailboxes.Names {
		if strings.EqualFold(n, DefaultMailbox) {
			c.Mailboxes.Names[i] = DefaultMailbox
		}
	}
	if c.MaxMessagesPerRun == 0 {
		c.MaxMessagesPerRun = DefaultMaxMessages
	}
	if c.Bodies == "" {
		c.Bodies = BodiesNone
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// Addr is host:port. Call it after Normalize.
func (c *Config) Addr() string { return net.JoinHostPort(c.Host, fmt.Sprint(c.Port)) }

// since returns Since as a date, or the zero time.
func (c *Config) since() time.Time {
	t, _ := time.Parse(SinceLayout, c.Since)
	return t
}

// validHost reports whether h is a DNS name or an IP address (IPv6
// without brackets).
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return hostRE.MatchString(h)
}

// loopback reports whether h is localhost or a loopback address. The name
// is not resolved: "localhost" is loopback by RFC 6761.
func loopback(h string) bool {
	if strings.EqualFold(strings.TrimSuffix(h, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// validMailboxName refuses names no server holds and names that would
// not be taken literally: wildcards ("*" alone is AllMailboxes, as a
// string, not inside the list).
func validMailboxName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("empty name")
	case len(n) > MaxMailboxNameLength:
		return fmt.Errorf("longer than %d bytes", MaxMailboxNameLength)
	case !utf8.ValidString(n):
		return fmt.Errorf("%q is not UTF-8", n)
	case strings.ContainsAny(n, "*%"):
		return fmt.Errorf("%q holds a wildcard; for every mailbox set \"mailboxes\": %q, not a list", n, AllMailboxes)
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return fmt.Errorf("%q holds a control character", n)
		}
	}
	return nil
}

// ConfigSchema is the JSON Schema of Config, served in the manifest.
const ConfigSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "imap connection config",
  "type": "object",
  "additionalProperties": false,
  "required": ["host"],
  "properties": {
    "host": {
      "description": "The IMAP server's DNS name or IP address, without a port (imap.gmail.com, imap.fastmail.com, imap.mail.me.com).",
      "type": "string",
      "minLength": 1,
      "maxLength": 253,
      "pattern": "^([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\\.?|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*)$"
    },
    "port": {
      "description": "The server's port: 993 by default with implicit TLS, 143 with starttls or insecure_plaintext.",
      "type": "integer",
      "minimum": 1,
      "maximum": 65535
    },
    "tls": {
      "description": "implicit: TLS from the first byte (IMAPS). starttls: upgrade a plaintext connection before logging in; a server that does not offer STARTTLS is refused.",
      "enum": ["implicit", "starttls"],
      "default": "implicit"
    },
    "insecure_plaintext": {
      "description": "No TLS at all, password included. Only for a server on localhost or a loopback address (tests); cannot be combined with tls or ca_file.",
      "type": "boolean",
      "default": false
    },
    "ca_file": {
      "description": "Absolute path, on the host, of PEM certificates to trust instead of the system's, for a server with a private CA.",
      "type": "string",
      "pattern": "^/"
    },
    "mailboxes": {
      "description": "The mailboxes to read: a list of names, or \"*\" for every selectable mailbox.",
      "type": ["string", "array"],
      "if": {"type": "string"},
      "then": {"const": "*"},
      "else": {
        "minItems": 1,
        "maxItems": 1000,
        "uniqueItems": true,
        "items": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": "^[^*%\u0000-\u001f\u007f]+$",
                  "description": "a mailbox name, without a wildcard (* or %) or a control character; for every mailbox, set \"mailboxes\": \"*\""}
      },
      "default": ["INBOX"]
    },
    "since": {
      "description": "Skip messages the server received before this date (YYYY-MM-DD).",
      "type": "string",
      "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
    },
    "max_messages_per_run": {
      "description": "The most messages one run writes, new or with changed flags, across mailboxes; the next run goes on where it stopped.",
      "type": "integer",
      "minimum": 1,
      "maximum": 1000000,
      "default": 5000
    },
    "bodies": {
      "description": "none: envelope, flags and size only. text: also the first text/plain part, decoded to UTF-8 and cut at max_body_bytes.",
      "enum": ["none", "text"],
      "default": "none"
    },
    "max_body_bytes": {
      "description": "With bodies text: the most bytes of text kept per message.",
      "type": "integer",
      "minimum": 1024,
      "maximum": 1048576,
      "default": 65536
    }
  },
  "allOf": [
    {"if": {"required": ["insecure_plaintext"], "properties": {"insecure_plaintext": {"const": true}}},
     "then": {
       "properties": {
         "host": {"description": "with insecure_plaintext, only localhost or a loopback address: the password would cross the network in the clear",
                  "pattern": "^([Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]\\.?|127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}|::1)$"},
         "tls": {"description": "insecure_plaintext cannot be combined with tls: plaintext has no TLS", "not": {}},
         "ca_file": {"description": "insecure_plaintext cannot be combined with ca_file: plaintext has no TLS", "not": {}}
       }
     }}
  ]
}`
