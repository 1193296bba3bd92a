package imapconn

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// FuzzConfig decodes configs as the SDK does and holds Validate to its
// word: what it accepts normalizes to a config it accepts again, with an
// address to dial.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{
		`{"host":"imap.gmail.com"}`,
		`{"host":"imap.fastmail.com","mailboxes":["INBOX","Archive"],"since":"2025-01-01"}`,
		`{"host":"127.0.0.1","port":10143,"insecure_plaintext":true,"mailboxes":"*"}`,
		`{"host":"::1","insecure_plaintext":true}`,
		`{"host":"imap.example.com","tls":"starttls","ca_file":"/ca.pem","bodies":"text","max_body_bytes":1024,"max_messages_per_run":1}`,
		`{"host":"h","mailboxes":["inbox","INBOX"]}`,
		`{"host":"h","mailboxes":null,"port":0}`,
		`{"host":"h:1"}`,
		`{"host":"h","mailboxes":[]}`,
		`{"host":"h","mailboxes":"*","extra":1}`,
		`{}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Config
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		c.Normalize()
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate after Normalize of %s: %v", b, err)
		}
		if c.Port < 1 || c.Port > 65535 || c.MaxMessagesPerRun < 1 || c.MaxBodyBytes < MinMaxBodyBytes ||
			c.Bodies == "" || (c.TLS == "") != c.InsecurePlaintext || c.Mailboxes.IsZero() {
			t.Fatalf("Normalize of %s left a default out: %+v", b, c)
		}
		if c.InsecurePlaintext && !loopback(c.Host) {
			t.Fatalf("plaintext to %q accepted", c.Host)
		}
		if addr := c.Addr(); !strings.HasSuffix(addr, ":"+jsonNumber(c.Port)) {
			t.Fatalf("Addr() = %q for port %d", addr, c.Port)
		}
	})
}

func jsonNumber(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzState feeds decodeState what a host might hand back: it never
// panics, and a state it accepts encodes and decodes to itself.
func FuzzState(f *testing.F) {
	cfg := &Config{Host: "imap.example.com", Bodies: BodiesText}
	cfg.Normalize()
	account := AccountID(cfg.Host, "me@example.com")
	s := newState(account, cfg)
	s.Mailboxes["INBOX"] = &MailboxState{UIDValidity: 3, UID: 9, ModSeq: 12}
	s.Mailboxes["[Gmail]/All Mail"] = &MailboxState{UIDValidity: 1, UID: 4294967295}
	good, err := s.encode(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, seed := range []string{
		``, `{}`, `null`, `{"v":1}`,
		`{"v":1,"account":"` + account + `","bodies":"text","mailboxes":null}`,
		`{"v":1,"account":"` + account + `","bodies":"text","mailboxes":{"INBOX":null}}`,
		`{"v":1,"account":"` + account + `","bodies":"text","mailboxes":{"a*":{"uidvalidity":1}}}`,
		`{"v":1,"account":"` + account + `","bodies":"text","mailboxes":{"INBOX":{"uidvalidity":0}}}`,
		`{"v":1,"account":"` + account + `","bodies":"text","mailboxes":{"INBOX":{"uidvalidity":1,"uid":1,"modseq":18446744073709551615}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeState(b, account, cfg)
		if err != nil {
			return
		}
		out, err := st.encode(1 << 20)
		if err != nil {
			t.Fatalf("encode of an accepted state: %v", err)
		}
		again, err := decodeState(out, account, cfg)
		if err != nil {
			t.Fatalf("decodeState refuses its own encoding %s: %v", out, err)
		}
		if diff := cmp.Diff(st, again); diff != "" {
			t.Fatalf("state changed through encode (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeText decodes any octets under any encoding and charset: the
// text is valid UTF-8, at most max bytes, and has no CRLF.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []struct {
		raw, encoding, charset string
		complete               bool
		max                    uint16
	}{
		{"Hello,\r\nworld.\r\n", "7bit", "us-ascii", true, 0},
		{"caf=C3=A9 =E2=8", "quoted-printable", "utf-8", false, 0},
		{"caf=E9=\r\n", "quoted-printable", "iso-8859-1", true, 100},
		{"SGVsbG8s\r\nIHdvcmx", "base64", "utf-8", false, 0},
		{"SGVsbG8sIHdvcmxkIQ==", "base64", "", true, 0},
		{"\x93quoted\x94 \x80", "8bit", "windows-1252", true, 0},
		{"\xa4\xa1\xa4\xa4", "8bit", "euc-kr", true, 0},
		{"+AGEAYgBj-", "7bit", "utf-7", true, 0},
		{"abc", "x-uuencode", "x-unknown", true, 0},
		{strings.Repeat("é", 700), "8bit", "utf-8", true, 0},
		{strings.Repeat("a\xff", 700), "8bit", "utf-8", true, 0},
		{strings.Repeat("x", 1022) + "\xe2\x82", "8bit", "utf-8", false, 0},
		{"one\r\r\ntwo", "7bit", "", true, 0},
	} {
		f.Add([]byte(s.raw), s.encoding, s.charset, s.complete, s.max)
	}
	f.Fuzz(func(t *testing.T, raw []byte, encoding, charset string, complete bool, extra uint16) {
		max := MinMaxBodyBytes + int(extra)%(4*MinMaxBodyBytes)
		p := textPart{path: []int{1}, encoding: strings.ToLower(encoding), charset: charset, size: uint32(len(raw))}
		got, _ := decodeText(raw, p, complete, max)
		if !utf8.ValidString(got) {
			t.Fatalf("text %q is not valid UTF-8", got)
		}
		if len(got) > max {
			t.Fatalf("text is %d bytes, over max %d", len(got), max)
		}
		if strings.Contains(got, "\r\n") {
			t.Fatalf("text %q holds CRLF", got)
		}
	})
}
