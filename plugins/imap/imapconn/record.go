package imapconn

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
)

// MaxAddresses bounds each address list of a message record (from, to,
// cc): a message to ten thousand recipients keeps the first ones and says
// so in AddressesTruncated.
const MaxAddresses = 1000

// Mailbox is a record of the "mailboxes" stream, keyed by Name.
type Mailbox struct {
	Name string `json:"name"`
	// Delimiter is the hierarchy delimiter ("/" or "."), "" when flat.
	Delimiter string `json:"delimiter,omitempty"`
	// Attributes are the LIST attributes, such as \HasNoChildren or the
	// special-use \Sent.
	Attributes []string `json:"attributes"`
	// UIDValidity, Messages (EXISTS), UIDNext and HighestModSeq are what
	// SELECT reported when the run read the mailbox.
	UIDValidity   uint32 `json:"uidvalidity"`
	Messages      uint32 `json:"messages"`
	UIDNext       uint32 `json:"uidnext,omitempty"`
	HighestModSeq uint64 `json:"highest_modseq,omitempty"`
}

// Message is a record of the "messages" stream, keyed by MessageKey.
type Message struct {
	Mailbox     string `json:"mailbox"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
	// InternalDate is when the server received the message.
	InternalDate time.Time `json:"internal_date,omitzero"`
	// Date is the Date header; zero when absent or unparsable.
	Date      time.Time `json:"date,omitzero"`
	Subject   string    `json:"subject"`
	From      []Address `json:"from"`
	To        []Address `json:"to"`
	Cc        []Address `json:"cc"`
	MessageID string    `json:"message_id,omitempty"`
	// InReplyTo are the In-Reply-To message ids. Ids are without angle
	// brackets.
	InReplyTo          []string `json:"in_reply_to,omitempty"`
	AddressesTruncated bool     `json:"addresses_truncated,omitempty"`
	Flags              []string `json:"flags"`
	// Size is RFC822.SIZE, the message's size in octets.
	Size int64 `json:"size"`
	// ModSeq is the message's CONDSTORE mod-sequence, when the server
	// offers CONDSTORE.
	ModSeq uint64 `json:"modseq,omitempty"`
	// Text is the first text/plain part, decoded to UTF-8 (bodies: text
	// only); TextTruncated says it was cut at max_body_bytes, or that its
	// charset or encoding could not be decoded.
	Text          *string `json:"text,omitempty"`
	TextTruncated bool    `json:"text_truncated,omitempty"`
}

// Address is one mailbox of an address list.
type Address struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address"`
}

// MessageKey is the record key of a message: mailbox/UIDVALIDITY/UID.
// A mailbox name may hold the delimiter; the two numbers at the end keep
// keys unique.
func MessageKey(mailbox string, uidValidity, uid uint32) string {
	return fmt.Sprintf("%s/%d/%d", mailbox, uidValidity, uid)
}

// newMailbox returns the record of a selected mailbox.
func newMailbox(l *imap.ListData, sel *imap.SelectData) Mailbox {
	m := Mailbox{Name: l.Mailbox, Attributes: []string{}, UIDValidity: sel.UIDValidity,
		Messages: sel.NumMessages, UIDNext: uint32(sel.UIDNext), HighestModSeq: sel.HighestModSeq}
	if l.Delim != 0 {
		m.Delimiter = string(l.Delim)
	}
	for _, a := range l.Attrs {
		// \Marked and \Unmarked say whether mail arrived since the
		// mailbox was last selected: they change with every run.
		if a == imap.MailboxAttrMarked || a == imap.MailboxAttrUnmarked {
			continue
		}
		m.Attributes = append(m.Attributes, string(a))
	}
	return m
}

// newMessage returns the record of a fetched message, without its text.
func newMessage(mailbox string, uidValidity uint32, b *imapclient.FetchMessageBuffer) Message {
	m := Message{Mailbox: mailbox, UIDValidity: uidValidity, UID: uint32(b.UID),
		InternalDate: b.InternalDate.UTC(), Size: b.RFC822Size, ModSeq: b.ModSeq,
		Flags: []string{}, From: []Address{}, To: []Address{}, Cc: []Address{}}
	for _, f := range b.Flags {
		// \Recent belongs to the session that first sees a message, not
		// to the message: it would differ from run to run.
		if !strings.EqualFold(string(f), `\Recent`) {
			m.Flags = append(m.Flags, string(f))
		}
	}
	if e := b.Envelope; e != nil {
		if !e.Date.IsZero() {
			m.Date = e.Date
		}
		m.Subject = validUTF8(e.Subject)
		m.MessageID = validUTF8(e.MessageID)
		for _, id := range e.InReplyTo {
			m.InReplyTo = append(m.InReplyTo, validUTF8(id))
		}
		var cut bool
		m.From, cut = addresses(e.From)
		m.AddressesTruncated = m.AddressesTruncated || cut
		m.To, cut = addresses(e.To)
		m.AddressesTruncated = m.AddressesTruncated || cut
		m.Cc, cut = addresses(e.Cc)
		m.AddressesTruncated = m.AddressesTruncated || cut
	}
	return m
}

// addresses converts an envelope's address list, leaving group markers
// out, keeping at most MaxAddresses.
func addresses(list []imap.Address) (out []Address, truncated bool) {
	out = []Address{}
	for _, a := range list {
		if a.IsGroupStart() || a.IsGroupEnd() {
			continue
		}
		// An empty address ("<>") comes back with the server's
		// placeholders: Dovecot's MISSING_MAILBOX and MISSING_DOMAIN,
		// RFC 3501's ".MISSING-HOST-NAME.".
		if a.Mailbox == "MISSING_MAILBOX" || a.Mailbox == "" && a.Name == "" {
			continue
		}
		if len(out) == MaxAddresses {
			return out, true
		}
		addr := a.Addr()
		if addr == "" || a.Host == "MISSING_DOMAIN" || a.Host == ".MISSING-HOST-NAME." {
			addr = a.Mailbox
		}
		out = append(out, Address{Name: validUTF8(a.Name), Address: validUTF8(addr)})
	}
	return out, false
}

// validUTF8 replaces invalid bytes: a record must be valid JSON text.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// textPart finds the first text/plain part of a message that is not an
// attachment: its section path and what decoding it needs.
type textPart struct {
	path     []int
	encoding string
	charset  string
	size     uint32
}

func findTextPart(bs imap.BodyStructure) (textPart, bool) {
	var (
		found textPart
		ok    bool
	)
	if bs == nil {
		return found, false
	}
	bs.Walk(func(path []int, part imap.BodyStructure) bool {
		if ok {
			return false
		}
		sp, single := part.(*imap.BodyStructureSinglePart)
		if !single {
			// Do not look inside attached messages' own structure: only
			// multipart containers are walked into.
			return true
		}
		if sp.MediaType() != "text/plain" {
			return true
		}
		if d := sp.Disposition(); d != nil && strings.EqualFold(d.Value, "attachment") {
			return true
		}
		found = textPart{path: append([]int(nil), path...), encoding: strings.ToLower(sp.Encoding),
			charset: sp.Params["charset"], size: sp.Size}
		ok = true
		return false
	})
	return found, ok
}

// fetchSize is how many encoded octets of a part to fetch for max decoded
// bytes: base64 takes 4 per 3, quoted-printable up to 3 per 1.
func fetchSize(encoding string, max int) int64 {
	switch encoding {
	case "base64":
		// Line breaks every 76 characters, and one more quartet.
		return int64(max)*4/3 + int64(max)/57*2 + 8
	case "quoted-printable":
		// Soft line breaks ("=" CRLF) every 76 characters or fewer.
		return int64(max)*3 + int64(max)*3/72*3 + 8
	}
	return int64(max)
}

// decodeText decodes a text part's (possibly cut) octets to UTF-8 of at
// most max bytes. complete says the octets are the whole part. The result
// is truncated when it was cut, or when the charset or encoding could not
// be decoded (the text is then the readable part of it).
func decodeText(raw []byte, p textPart, complete bool, max int) (text string, truncated bool) {
	truncated = !complete
	var r io.Reader = bytes.NewReader(raw)
	switch p.encoding {
	case "base64":
		clean := bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, raw)
		if !complete {
			clean = clean[:len(clean)/4*4]
		}
		r = base64.NewDecoder(base64.StdEncoding, bytes.NewReader(clean))
	case "quoted-printable":
		if !complete {
			// Do not end inside an escape ("=4" of "=41") or a soft break.
			if i := bytes.LastIndexByte(raw, '='); i >= 0 && len(raw)-i < 3 {
				raw = raw[:i]
			}
		}
		r = quotedprintable.NewReader(bytes.NewReader(raw))
	}
	if cs := strings.ToLower(strings.TrimSpace(p.charset)); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		cr, err := charset.Reader(cs, r)
		if err != nil {
			// An unknown charset: keep the bytes, made valid.
			truncated = true
		} else {
			r = cr
		}
	}
	// Read past max: line breaks shrink and invalid bytes grow below.
	limit := 2*int64(max) + utf8.UTFMax
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		truncated = true
	}
	if !complete || int64(len(b)) == limit {
		// Cut: the last character may be cut too.
		truncated = true
		b = dropPartialRune(b)
	}
	t := normalizeNewlines(strings.ToValidUTF8(string(b), "\uFFFD"))
	if len(t) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(t[cut]) {
			cut--
		}
		t, truncated = t[:cut], true
	}
	return t, truncated
}

// dropPartialRune drops an incomplete UTF-8 sequence at the end of b, left
// by a cut: it would otherwise decode as U+FFFD.
func dropPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

// normalizeNewlines turns CRLF (and CR…CRLF runs) into LF, in one pass.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	var out strings.Builder
	out.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '\r' {
			out.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] == '\r' {
			j++
		}
		if j == len(s) || s[j] != '\n' {
			out.WriteString(s[i:j])
		}
		i = j
	}
	return out.String()
}
