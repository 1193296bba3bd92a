package dovecottest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/ianaindex"
)

// Boundaries start with "=_", which neither quoted-printable nor base64
// output can contain, so they are fixed and Bytes is deterministic.
const (
	boundaryAlternative = "=_dovecottest_alternative"
	boundaryMixed       = "=_dovecottest_mixed"
	attachmentName      = "data.bin"
)

// Message builds an RFC 5322 message. Zero fields are left out: a zero
// Date or an empty MessageID gives a message without that header.
type Message struct {
	From, To, Cc                  []string // "Name <a@b>" or "a@b"; non-ASCII names are RFC 2047-encoded
	Subject, MessageID, InReplyTo string   // ids with angle brackets
	Date                          time.Time
	// Text is the text/plain part (UTF-8 unless TextCharset says
	// otherwise), sent quoted-printable.
	Text string
	// HTML is a text/html part (UTF-8, quoted-printable). With Text the
	// body is multipart/alternative; alone it is the only part.
	HTML string
	// Attachment, when non-nil, makes the message multipart/mixed with the
	// body first and an application/octet-stream "data.bin" (base64).
	Attachment []byte
	// TextCharset is the charset Text is encoded in, e.g. "iso-8859-1"
	// (any IANA MIME name golang.org/x/text knows); empty means utf-8.
	TextCharset string
}

// Bytes returns the message with CRLF line endings. It is deterministic:
// equal messages give equal bytes.
//
// Bytes panics when TextCharset is unknown or cannot encode Text; both are
// mistakes in the test that builds the message.
func (m Message) Bytes() []byte {
	var b bytes.Buffer
	if !m.Date.IsZero() {
		header(&b, "Date", m.Date.Format(time.RFC1123Z))
	}
	addresses(&b, "From", m.From)
	addresses(&b, "To", m.To)
	addresses(&b, "Cc", m.Cc)
	if m.Subject != "" {
		header(&b, "Subject", encodeWord(m.Subject))
	}
	if m.MessageID != "" {
		header(&b, "Message-ID", m.MessageID)
	}
	if m.InReplyTo != "" {
		header(&b, "In-Reply-To", m.InReplyTo)
	}
	header(&b, "MIME-Version", "1.0")
	m.body().write(&b)
	return b.Bytes()
}

// part is one MIME entity: its header fields in order and its encoded
// body.
type part struct {
	fields [][2]string
	body   []byte
}

// write writes p's header fields, the blank line and the body.
func (p part) write(b *bytes.Buffer) {
	for _, f := range p.fields {
		header(b, f[0], f[1])
	}
	b.WriteString("\r\n")
	b.Write(p.body)
}

// body returns the entity after the message's own header fields.
func (m Message) body() part {
	var p part
	switch {
	case m.Text != "" && m.HTML != "":
		p = multipartEntity("alternative", boundaryAlternative, m.textPart(), htmlPart(m.HTML))
	case m.HTML != "":
		p = htmlPart(m.HTML)
	default:
		p = m.textPart()
	}
	if m.Attachment != nil {
		p = multipartEntity("mixed", boundaryMixed, p, attachmentPart(m.Attachment))
	}
	return p
}

func (m Message) textPart() part {
	charset := strings.ToLower(m.TextCharset)
	text := []byte(m.Text)
	if charset == "" {
		charset = "utf-8"
	}
	if charset != "utf-8" {
		text = encodeCharset(charset, m.Text)
	}
	return part{
		fields: [][2]string{
			{"Content-Type", mime.FormatMediaType("text/plain", map[string]string{"charset": charset})},
			{"Content-Transfer-Encoding", "quoted-printable"},
		},
		body: quotedPrintable(text),
	}
}

func htmlPart(html string) part {
	return part{
		fields: [][2]string{
			{"Content-Type", mime.FormatMediaType("text/html", map[string]string{"charset": "utf-8"})},
			{"Content-Transfer-Encoding", "quoted-printable"},
		},
		body: quotedPrintable([]byte(html)),
	}
}

func attachmentPart(data []byte) part {
	return part{
		fields: [][2]string{
			{"Content-Type", mime.FormatMediaType("application/octet-stream", map[string]string{"name": attachmentName})},
			{"Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": attachmentName})},
			{"Content-Transfer-Encoding", "base64"},
		},
		body: base64Lines(data),
	}
}

// multipartEntity joins parts under boundary (RFC 2046 section 5.1).
func multipartEntity(subtype, boundary string, parts ...part) part {
	var b bytes.Buffer
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n")
		p.write(&b)
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return part{
		fields: [][2]string{
			{"Content-Type", mime.FormatMediaType("multipart/"+subtype, map[string]string{"boundary": boundary})},
		},
		body: b.Bytes(),
	}
}

func header(b *bytes.Buffer, name, value string) {
	b.WriteString(name + ": " + value + "\r\n")
}

// addresses writes a list header. Entries net/mail can parse are
// re-formatted (quoting and RFC 2047 as needed); others are written as
// given, so tests can also build malformed headers.
func addresses(b *bytes.Buffer, name string, list []string) {
	if len(list) == 0 {
		return
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a
		addr, err := mail.ParseAddress(a)
		if err != nil {
			continue
		}
		if addr.Name == "" {
			out[i] = addr.Address
		} else {
			out[i] = addr.String()
		}
	}
	header(b, name, strings.Join(out, ", "))
}

// encodeWord RFC 2047-encodes s when it is not plain ASCII.
func encodeWord(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// encodeCharset encodes s in charset, panicking on an unknown charset or
// a character it cannot represent.
func encodeCharset(charset, s string) []byte {
	enc, err := ianaindex.MIME.Encoding(charset)
	if err != nil || enc == nil {
		panic(fmt.Sprintf("dovecottest: Message.TextCharset %q is not a supported charset", charset))
	}
	out, err := enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		panic(fmt.Sprintf("dovecottest: Message.Text cannot be encoded in %s: %v", charset, err))
	}
	return out
}

// quotedPrintable encodes text, turning its line breaks into CRLF.
func quotedPrintable(text []byte) []byte {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	// Writes to a bytes.Buffer cannot fail.
	_, _ = w.Write(text)
	_ = w.Close()
	return b.Bytes()
}

// base64Lines encodes data in lines of at most 76 characters (RFC 2045
// section 6.8) joined by CRLF; the enclosing boundary ends the last one.
func base64Lines(data []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(data)
	var b bytes.Buffer
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	return b.Bytes()
}
