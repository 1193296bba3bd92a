package imapconn

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/google/go-cmp/cmp"
)

func TestMessageKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mailbox     string
		uidValidity uint32
		uid         uint32
		want        string
	}{
		{"INBOX", 1, 2, "INBOX/1/2"},
		{"[Gmail]/All Mail", 4294967295, 4294967295, "[Gmail]/All Mail/4294967295/4294967295"},
		{"Lists/go/1", 3, 4, "Lists/go/1/3/4"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		got := MessageKey(tt.mailbox, tt.uidValidity, tt.uid)
		if got != tt.want {
			t.Errorf("MessageKey(%q, %d, %d) = %q, want %q", tt.mailbox, tt.uidValidity, tt.uid, got, tt.want)
		}
		if seen[got] {
			t.Errorf("MessageKey %q twice", got)
		}
		seen[got] = true
	}
}

// text returns a text/plain single part.
func text(subtype, encoding, charset string, size uint32) *imap.BodyStructureSinglePart {
	p := &imap.BodyStructureSinglePart{Type: "text", Subtype: subtype, Encoding: encoding, Size: size,
		Params: map[string]string{}, Text: &imap.BodyStructureText{NumLines: 1}}
	if charset != "" {
		p.Params["charset"] = charset
	}
	return p
}

// disposed returns p with a Content-Disposition.
func disposed(p *imap.BodyStructureSinglePart, value string) *imap.BodyStructureSinglePart {
	p.Extended = &imap.BodyStructureSinglePartExt{Disposition: &imap.BodyStructureDisposition{Value: value,
		Params: map[string]string{"filename": "notes.txt"}}}
	return p
}

func multi(subtype string, children ...imap.BodyStructure) *imap.BodyStructureMultiPart {
	return &imap.BodyStructureMultiPart{Subtype: subtype, Children: children}
}

func TestFindTextPart(t *testing.T) {
	t.Parallel()
	pdf := &imap.BodyStructureSinglePart{Type: "application", Subtype: "pdf", Encoding: "base64", Size: 9000}
	attachedMessage := &imap.BodyStructureSinglePart{Type: "message", Subtype: "rfc822", Encoding: "7bit", Size: 500,
		MessageRFC822: &imap.BodyStructureMessageRFC822{BodyStructure: text("plain", "7bit", "utf-8", 100)}}
	tests := []struct {
		name string
		bs   imap.BodyStructure
		want textPart
		ok   bool
	}{
		{"nil", nil, textPart{}, false},
		{"single part", text("plain", "7BIT", "UTF-8", 120),
			textPart{path: []int{1}, encoding: "7bit", charset: "UTF-8", size: 120}, true},
		{"single part upper-case type", &imap.BodyStructureSinglePart{Type: "TEXT", Subtype: "PLAIN", Encoding: "Quoted-Printable", Size: 7},
			textPart{path: []int{1}, encoding: "quoted-printable", size: 7}, true},
		{"inline disposition", disposed(text("plain", "base64", "iso-8859-1", 40), "inline"),
			textPart{path: []int{1}, encoding: "base64", charset: "iso-8859-1", size: 40}, true},
		{"html only", text("html", "7bit", "utf-8", 10), textPart{}, false},
		{"alternative", multi("alternative", text("plain", "quoted-printable", "utf-8", 300), text("html", "quoted-printable", "utf-8", 900)),
			textPart{path: []int{1}, encoding: "quoted-printable", charset: "utf-8", size: 300}, true},
		{"alternative html first", multi("alternative", text("html", "7bit", "utf-8", 900), text("plain", "7bit", "utf-8", 300)),
			textPart{path: []int{2}, encoding: "7bit", charset: "utf-8", size: 300}, true},
		{"mixed with attachment", multi("mixed", multi("alternative", text("plain", "base64", "windows-1252", 64), text("html", "base64", "utf-8", 128)), pdf),
			textPart{path: []int{1, 1}, encoding: "base64", charset: "windows-1252", size: 64}, true},
		{"text attachment skipped", multi("mixed", text("html", "7bit", "utf-8", 10), disposed(text("plain", "7bit", "utf-8", 20), "ATTACHMENT"), text("plain", "8bit", "utf-8", 30)),
			textPart{path: []int{3}, encoding: "8bit", charset: "utf-8", size: 30}, true},
		{"only a text attachment", multi("mixed", text("html", "7bit", "utf-8", 10), disposed(text("plain", "7bit", "utf-8", 20), "attachment")),
			textPart{}, false},
		{"attached message not descended", multi("mixed", text("html", "7bit", "utf-8", 10), attachedMessage),
			textPart{}, false},
		{"attached message alone", attachedMessage, textPart{}, false},
		{"deep", multi("mixed", pdf, multi("related", multi("alternative", text("html", "7bit", "", 1), text("plain", "7bit", "", 2)))),
			textPart{path: []int{2, 1, 2}, encoding: "7bit", size: 2}, true},
		{"none", multi("mixed", pdf, text("html", "7bit", "utf-8", 10)), textPart{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := findTextPart(tt.bs)
			if ok != tt.ok {
				t.Fatalf("findTextPart ok = %v, want %v (%+v)", ok, tt.ok, got)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(textPart{})); diff != "" {
				t.Errorf("findTextPart (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFetchSize(t *testing.T) {
	t.Parallel()
	// The octets fetched always decode to at least max bytes.
	for _, max := range []int{MinMaxBodyBytes, DefaultMaxBodyBytes, MaxMaxBodyBytes} {
		plain := strings.Repeat("x", max)
		b64 := base64.StdEncoding.EncodeToString([]byte(plain))
		var wrapped strings.Builder
		for len(b64) > 76 {
			wrapped.WriteString(b64[:76] + "\r\n")
			b64 = b64[76:]
		}
		wrapped.WriteString(b64)
		if n := fetchSize("base64", max); n < int64(wrapped.Len()) {
			t.Errorf("fetchSize(base64, %d) = %d, under the %d octets of %d bytes wrapped at 76", max, n, wrapped.Len(), max)
		}
		if n := fetchSize("quoted-printable", max); n < int64(3*max) {
			t.Errorf("fetchSize(quoted-printable, %d) = %d, want at least %d", max, n, 3*max)
		}
		if n := fetchSize("8bit", max); n != int64(max) {
			t.Errorf("fetchSize(8bit, %d) = %d", max, n)
		}
	}
}

func TestDecodeText(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	long := strings.Repeat("é", 1000) // 2000 bytes
	tests := []struct {
		name      string
		raw       string
		encoding  string
		charset   string
		complete  bool
		max       int
		want      string
		truncated bool
	}{
		{name: "7bit", raw: "Hello,\r\nworld.\r\n", encoding: "7bit", complete: true, max: 1024, want: "Hello,\nworld.\n"},
		{name: "no encoding", raw: "plain", complete: true, max: 1024, want: "plain"},
		{name: "7bit cut", raw: "Hello", encoding: "7bit", max: 1024, want: "Hello", truncated: true},
		{name: "utf-8", raw: "Grüße", encoding: "8bit", charset: "UTF-8", complete: true, max: 1024, want: "Grüße"},
		{name: "us-ascii", raw: "ascii", encoding: "7bit", charset: "US-ASCII", complete: true, max: 1024, want: "ascii"},
		{name: "quoted-printable", raw: "caf=C3=A9 cr=C3=A8me=\r\n br=C3=BBl=C3=A9e\r\n", encoding: "quoted-printable", charset: "utf-8", complete: true, max: 1024,
			want: "café crème brûlée\n"},
		{name: "quoted-printable cut mid-escape", raw: "caf=C3=A9 cr=C3=A8me =4", encoding: "quoted-printable", charset: "utf-8", max: 1024,
			want: "café crème", truncated: true}, // QP drops the line's trailing space
		{name: "quoted-printable cut after =", raw: "caf=C3=A9=", encoding: "quoted-printable", charset: "utf-8", max: 1024,
			want: "café", truncated: true},
		{name: "quoted-printable cut in a soft break", raw: "one=\r", encoding: "quoted-printable", max: 1024,
			want: "one", truncated: true},
		{name: "base64", raw: b64("Hello, world!\r\nBye.\r\n"), encoding: "base64", complete: true, max: 1024, want: "Hello, world!\nBye.\n"},
		{name: "base64 wrapped", raw: "SGVsbG8s\r\nIHdvcmxk\r\nIQ==\r\n", encoding: "BASE64", complete: true, max: 1024, want: "Hello, world!"},
		{name: "base64 cut mid-quartet", raw: "SGVsbG8s\r\nIHdvcmx", encoding: "base64", max: 1024, want: "Hello, wo", truncated: true},
		{name: "base64 corrupt", raw: "SGVsbG8s!!!!", encoding: "base64", complete: true, max: 1024, want: "Hello,", truncated: true},
		{name: "iso-8859-1", raw: "caf\xe9 cr\xe8me", encoding: "8bit", charset: "ISO-8859-1", complete: true, max: 1024, want: "café crème"},
		{name: "iso-8859-1 quoted", raw: "caf=E9", encoding: "quoted-printable", charset: " iso-8859-1 ", complete: true, max: 1024, want: "café"},
		{name: "windows-1252", raw: "\x93quoted\x94 \x80 5", encoding: "8bit", charset: "windows-1252", complete: true, max: 1024, want: "“quoted” € 5"},
		{name: "windows-1252 base64", raw: b64("\x93hi\x94"), encoding: "base64", charset: "windows-1252", complete: true, max: 1024, want: "“hi”"},
		{name: "unknown charset", raw: "caf\xe9", encoding: "8bit", charset: "x-klingon", complete: true, max: 1024, want: "caf\uFFFD", truncated: true},
		{name: "unknown charset ascii", raw: "plain", encoding: "7bit", charset: "x-klingon", complete: true, max: 1024, want: "plain", truncated: true},
		{name: "invalid utf-8 replaced", raw: "a\xffb", encoding: "8bit", charset: "utf-8", complete: true, max: 1024, want: "a\uFFFDb"},
		{name: "cut at max on a rune boundary", raw: long, encoding: "8bit", charset: "utf-8", complete: true, max: 1025,
			want: long[:1024], truncated: true},
		{name: "exactly max", raw: strings.Repeat("x", 1024), encoding: "7bit", complete: true, max: 1024, want: strings.Repeat("x", 1024)},
		{name: "cut at max", raw: strings.Repeat("x", 2000), encoding: "7bit", complete: true, max: 1024, want: strings.Repeat("x", 1024), truncated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := textPart{path: []int{1}, encoding: strings.ToLower(tt.encoding), charset: tt.charset, size: uint32(len(tt.raw))}
			got, truncated := decodeText([]byte(tt.raw), p, tt.complete, tt.max)
			if got != tt.want {
				t.Errorf("decodeText = %q, want %q", got, tt.want)
			}
			if truncated != tt.truncated {
				t.Errorf("decodeText truncated = %v, want %v", truncated, tt.truncated)
			}
			checkText(t, got, tt.max)
		})
	}
}

// TestDecodeTextBounds holds the three promises every text keeps, on
// inputs built to break them.
func TestDecodeTextBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		raw      string
		encoding string
		charset  string
		complete bool
	}{
		// Each invalid byte becomes a three-byte U+FFFD.
		{name: "invalid bytes past max", raw: strings.Repeat("a\xff", 800), encoding: "8bit", charset: "utf-8", complete: true},
		{name: "invalid bytes, unknown charset", raw: strings.Repeat("a\xe9", 800), encoding: "8bit", charset: "x-unknown", complete: true},
		// A part cut inside a rune, max bytes long: the partial rune
		// becomes a U+FFFD past max.
		{name: "cut part ends inside a rune at max", raw: strings.Repeat("x", 1022) + "\xe2\x82", encoding: "8bit", charset: "utf-8"},
		// Replacing "\r\n" once leaves the "\r\n" of "\r\r\n".
		{name: "crlf split by the cut", raw: strings.Repeat("x", 1023) + "\r\nmore", encoding: "7bit", complete: true},
		{name: "cr cr lf", raw: "one\r\r\ntwo", encoding: "7bit", complete: true},
		{name: "cr cr lf quoted-printable", raw: "one=0D\r\ntwo", encoding: "quoted-printable", complete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := textPart{path: []int{1}, encoding: tt.encoding, charset: tt.charset, size: uint32(len(tt.raw))}
			got, _ := decodeText([]byte(tt.raw), p, tt.complete, MinMaxBodyBytes)
			checkText(t, got, MinMaxBodyBytes)
		})
	}
}

// checkText checks what every decoded text must be.
func checkText(t *testing.T, got string, max int) {
	t.Helper()
	if !utf8.ValidString(got) {
		t.Errorf("text %q is not valid UTF-8", got)
	}
	if len(got) > max {
		t.Errorf("text is %d bytes, over max %d", len(got), max)
	}
	if strings.Contains(got, "\r\n") {
		t.Errorf("text %q holds CRLF", got)
	}
}

func TestNewMessage(t *testing.T) {
	t.Parallel()
	date := time.Date(2025, 3, 1, 9, 30, 0, 0, time.FixedZone("CET", 3600))
	received := time.Date(2025, 3, 1, 8, 31, 0, 0, time.FixedZone("X", -7200))
	tests := []struct {
		name string
		buf  *imapclient.FetchMessageBuffer
		want Message
	}{
		{
			name: "full envelope",
			buf: &imapclient.FetchMessageBuffer{UID: 42, RFC822Size: 2048, ModSeq: 77, InternalDate: received,
				Flags: []imap.Flag{imap.FlagSeen, `\Recent`, `\RECENT`, "$Label1"},
				Envelope: &imap.Envelope{Date: date, Subject: "Hello", MessageID: "abc@example.com", InReplyTo: []string{"parent@example.com"},
					From: []imap.Address{{Name: "Ann", Mailbox: "ann", Host: "example.com"}},
					To: []imap.Address{
						{Mailbox: "friends"}, // group start
						{Name: "Bob", Mailbox: "bob", Host: "example.org"},
						{Mailbox: "carol", Host: "example.org"},
						{}, // group end
						{Mailbox: "dan", Host: "example.net"},
					},
					Cc: []imap.Address{{Mailbox: "undisclosed-recipients"}, {}},
				}},
			want: Message{Mailbox: "INBOX", UIDValidity: 9, UID: 42, InternalDate: received.UTC(), Date: date, Subject: "Hello",
				From:      []Address{{Name: "Ann", Address: "ann@example.com"}},
				To:        []Address{{Name: "Bob", Address: "bob@example.org"}, {Address: "carol@example.org"}, {Address: "dan@example.net"}},
				Cc:        []Address{},
				MessageID: "abc@example.com", InReplyTo: []string{"parent@example.com"},
				Flags: []string{`\Seen`, "$Label1"}, Size: 2048, ModSeq: 77},
		},
		{
			name: "no envelope",
			buf:  &imapclient.FetchMessageBuffer{UID: 1},
			want: Message{Mailbox: "INBOX", UIDValidity: 9, UID: 1, From: []Address{}, To: []Address{}, Cc: []Address{}, Flags: []string{}},
		},
		{
			name: "invalid utf-8 replaced",
			buf: &imapclient.FetchMessageBuffer{UID: 2, Envelope: &imap.Envelope{Subject: "caf\xe9", MessageID: "id\xff@x", InReplyTo: []string{"p\xfe@x"},
				From: []imap.Address{{Name: "M\xfcller", Mailbox: "m\xfc", Host: "example.com"}}}},
			want: Message{Mailbox: "INBOX", UIDValidity: 9, UID: 2, Subject: "caf\uFFFD", MessageID: "id\uFFFD@x", InReplyTo: []string{"p\uFFFD@x"},
				From: []Address{{Name: "M\uFFFDller", Address: "m\uFFFD@example.com"}}, To: []Address{}, Cc: []Address{}, Flags: []string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := newMessage("INBOX", 9, tt.buf)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("newMessage (-want +got):\n%s", diff)
			}
			b, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !utf8.Valid(b) {
				t.Errorf("record JSON is not UTF-8: %s", b)
			}
		})
	}
}

func TestNewMessageAddressCap(t *testing.T) {
	t.Parallel()
	list := func(n int) []imap.Address {
		out := []imap.Address{{Mailbox: "group"}}
		for range n {
			out = append(out, imap.Address{Mailbox: "r", Host: "example.com"})
		}
		return append(out, imap.Address{})
	}
	tests := []struct {
		name      string
		env       imap.Envelope
		from      int
		to        int
		cc        int
		truncated bool
	}{
		{"at the cap", imap.Envelope{From: list(1), To: list(MaxAddresses), Cc: list(MaxAddresses)}, 1, MaxAddresses, MaxAddresses, false},
		{"to over the cap", imap.Envelope{From: list(1), To: list(MaxAddresses + 1)}, 1, MaxAddresses, 0, true},
		{"cc over the cap", imap.Envelope{Cc: list(5 * MaxAddresses)}, 0, 0, MaxAddresses, true},
		{"from over the cap", imap.Envelope{From: list(MaxAddresses + 1), To: list(2)}, MaxAddresses, 2, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMessage("INBOX", 1, &imapclient.FetchMessageBuffer{UID: 1, Envelope: &tt.env})
			if len(m.From) != tt.from || len(m.To) != tt.to || len(m.Cc) != tt.cc {
				t.Errorf("from/to/cc = %d/%d/%d, want %d/%d/%d", len(m.From), len(m.To), len(m.Cc), tt.from, tt.to, tt.cc)
			}
			if m.AddressesTruncated != tt.truncated {
				t.Errorf("AddressesTruncated = %v, want %v", m.AddressesTruncated, tt.truncated)
			}
		})
	}
}

func TestNewMailbox(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		list *imap.ListData
		sel  *imap.SelectData
		want Mailbox
	}{
		{"hierarchy", &imap.ListData{Mailbox: "[Gmail]/Sent Mail", Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren, imap.MailboxAttrSent}},
			&imap.SelectData{UIDValidity: 11, NumMessages: 3, UIDNext: 40, HighestModSeq: 900},
			Mailbox{Name: "[Gmail]/Sent Mail", Delimiter: "/", Attributes: []string{`\HasNoChildren`, `\Sent`}, UIDValidity: 11, Messages: 3, UIDNext: 40, HighestModSeq: 900}},
		{"flat", &imap.ListData{Mailbox: "INBOX"}, &imap.SelectData{UIDValidity: 1},
			Mailbox{Name: "INBOX", Attributes: []string{}, UIDValidity: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, newMailbox(tt.list, tt.sel)); diff != "" {
				t.Errorf("newMailbox (-want +got):\n%s", diff)
			}
		})
	}
}
