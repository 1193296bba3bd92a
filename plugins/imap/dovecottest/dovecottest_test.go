package dovecottest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/google/go-cmp/cmp"
)

const (
	testUser     = "alice"
	testPassword = "s3cret-canary-1"
)

func TestStartServesBothListeners(t *testing.T) {
	t.Parallel()
	s := Start(t, testUser, testPassword)
	if s.Host != "127.0.0.1" || s.Port == 0 || s.TLSPort == 0 || s.Port == s.TLSPort {
		t.Fatalf("Host, Port, TLSPort = %q, %d, %d; want 127.0.0.1 and two distinct ports", s.Host, s.Port, s.TLSPort)
	}
	caPEM, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := x509.NewCertPool()
	if !fromFile.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CAFile %s holds no PEM certificate", s.CAFile)
	}
	opts := func(cfg *tls.Config) *imapclient.Options { return &imapclient.Options{TLSConfig: cfg} }
	tests := []struct {
		name    string
		dial    func() (*imapclient.Client, error)
		wantErr bool
	}{
		{"implicit TLS trusting CertPool", func() (*imapclient.Client, error) {
			return imapclient.DialTLS(s.TLSAddr(), opts(&tls.Config{RootCAs: s.CertPool}))
		}, false},
		{"implicit TLS trusting CAFile for localhost", func() (*imapclient.Client, error) {
			return imapclient.DialTLS(s.TLSAddr(), opts(&tls.Config{RootCAs: fromFile, ServerName: "localhost"}))
		}, false},
		{"implicit TLS trusting the system roots fails", func() (*imapclient.Client, error) {
			return imapclient.DialTLS(s.TLSAddr(), opts(&tls.Config{}))
		}, true},
		{"STARTTLS on Port", func() (*imapclient.Client, error) {
			return imapclient.DialStartTLS(s.Addr(), opts(s.TLSConfig()))
		}, false},
		{"STARTTLS trusting the system roots fails", func() (*imapclient.Client, error) {
			return imapclient.DialStartTLS(s.Addr(), opts(&tls.Config{}))
		}, true},
		{"plaintext on Port", func() (*imapclient.Client, error) {
			return imapclient.DialInsecure(s.Addr(), nil)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := tt.dial()
			if tt.wantErr {
				var unknown x509.UnknownAuthorityError
				if !errors.As(err, &unknown) {
					t.Fatalf("dial: %v; want an unknown authority error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer closeClient(c)
			if err := c.Login(s.User, s.Password).Wait(); err != nil {
				t.Fatalf("login: %v", err)
			}
			// Not c.State(): imapclient updates it only after Wait
			// returns. STATUS is refused before authentication.
			if _, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait(); err != nil {
				t.Errorf("STATUS after login: %v", err)
			}
		})
	}
}

func TestAppendReadsBack(t *testing.T) {
	t.Parallel()
	s := Start(t, testUser, testPassword)
	s.CreateMailbox(t, "Archive")
	date := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name  string
		msg   Message
		flags []imap.Flag
	}{
		{"seen plain text", Message{From: []string{"bob@example.org"}, Subject: "one", Date: date, Text: "first\n"}, []imap.Flag{imap.FlagSeen}},
		{"unflagged html", Message{From: []string{"bob@example.org"}, Subject: "two", Date: date, HTML: "<p>second</p>"}, nil},
		{"flagged with attachment", Message{From: []string{"bob@example.org"}, Subject: "three", Date: date, Text: "third", Attachment: []byte{0, 1, 2}}, []imap.Flag{imap.FlagFlagged, imap.FlagAnswered}},
	}
	uids := make([]imap.UID, len(tests))
	for i, tt := range tests {
		uids[i] = s.Append(t, "Archive", tt.msg.Bytes(), tt.flags...)
		if i > 0 && uids[i] <= uids[i-1] {
			t.Fatalf("%s: UID %d after UID %d; want increasing UIDs", tt.name, uids[i], uids[i-1])
		}
	}

	c := s.Dial(t)
	if _, err := c.Select("Archive", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkLogClean(t, s) })
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fetch(t, c, uids[i])
			if diff := cmp.Diff(tt.msg.Bytes(), got.body); diff != "" {
				t.Errorf("body read back differs (-appended +read):\n%s", diff)
			}
			if diff := cmp.Diff(sortedFlags(tt.flags), sortedFlags(got.flags)); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetFlagsReplaces(t *testing.T) {
	t.Parallel()
	s := Start(t, testUser, testPassword)
	uid := s.Append(t, "INBOX", Message{Subject: "flags", Text: "x"}.Bytes(), imap.FlagSeen, imap.FlagDraft)
	tests := []struct {
		name  string
		flags []imap.Flag
	}{
		{"system flag", []imap.Flag{imap.FlagFlagged}},
		{"keyword and system flag", []imap.Flag{"$Label1", imap.FlagSeen}},
		{"no flags", nil},
	}
	// Sequential: each case replaces the flags the previous one set.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetFlags(t, "INBOX", uid, tt.flags...)
			c := s.Dial(t)
			if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sortedFlags(tt.flags), sortedFlags(fetch(t, c, uid).flags)); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetUIDValidityChangesSelect(t *testing.T) {
	t.Parallel()
	s := Start(t, testUser, testPassword)
	s.CreateMailbox(t, "Archive")
	s.Append(t, "Archive", Message{Subject: "m", Text: "x"}.Bytes())
	tests := []struct {
		mailbox string
		v       uint32
	}{
		{"INBOX", 12345},
		{"Archive", 4000000000},
	}
	for _, tt := range tests {
		t.Run(tt.mailbox, func(t *testing.T) {
			before := s.UIDValidity(t, tt.mailbox)
			if before == tt.v {
				t.Fatalf("UIDVALIDITY is already %d", tt.v)
			}
			s.SetUIDValidity(t, tt.mailbox, tt.v)
			if got := s.UIDValidity(t, tt.mailbox); got != tt.v {
				t.Errorf("UIDValidity = %d, want %d", got, tt.v)
			}
			c := s.Dial(t)
			data, err := c.Select(tt.mailbox, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if data.UIDValidity != tt.v {
				t.Errorf("SELECT reports UIDVALIDITY %d, want %d", data.UIDValidity, tt.v)
			}
		})
	}
}

func TestSetPasswordTakesEffectWithoutRestart(t *testing.T) {
	t.Parallel()
	s := Start(t, testUser, testPassword)
	pid := s.cmd.Process.Pid
	// The second change has the length of the first and follows it within
	// the same second: passwd-file's mtime+size check must still notice.
	passwords := []string{testPassword, "n3w-canary-22", "n4w-canary-22"}
	for i := 1; i < len(passwords); i++ {
		old, next := passwords[i-1], passwords[i]
		t.Run(next[:3], func(t *testing.T) {
			s.SetPassword(t, next)
			if s.Password != next {
				t.Fatalf("Password field not updated")
			}
			err := loginWith(s, old)
			var imapErr *imap.Error
			if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo ||
				imapErr.Code != imap.ResponseCodeAuthenticationFailed {
				t.Errorf("login with the old password: %v; want NO [AUTHENTICATIONFAILED]", err)
			}
			if err := loginWith(s, next); err != nil {
				t.Errorf("login with the new password: %v", err)
			}
			s.Dial(t)
		})
	}
	if s.cmd.Process.Pid != pid {
		t.Errorf("Dovecot was restarted")
	}
	for _, p := range passwords {
		if strings.Contains(s.Log(), p) {
			t.Errorf("a password appears in dovecot.log")
		}
	}
}

func TestCleanupLeavesNothing(t *testing.T) {
	t.Parallel()
	var pgid int
	var dir string
	t.Run("server", func(t *testing.T) {
		s := Start(t, testUser, testPassword)
		pgid, dir = s.cmd.Process.Pid, s.dir
		// An open session keeps an imap process running at cleanup.
		c := s.Dial(t)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	})
	if pgid == 0 {
		t.Skip("no server was started")
	}
	if !groupGone(pgid, 0) {
		t.Errorf("process group %d still has live members after cleanup", pgid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after cleanup (stat: %v)", dir, err)
	}
}

func TestCheckCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, password string
		ok                   bool
	}{
		{"plain", "alice", "s3cret", true},
		{"password with spaces and quotes", "alice", `a "b" \c`, true},
		{"empty user", "", "s3cret", false},
		{"colon in user", "al:ice", "s3cret", false},
		{"slash in user", "../alice", "s3cret", false},
		{"empty password", "alice", "", false},
		{"colon in password", "alice", "s3:cret", false},
		{"line break in password", "alice", "s3\ncret", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkCredentials(tt.user, tt.password)
			if (err == nil) != tt.ok {
				t.Fatalf("checkCredentials = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && tt.password != "" && strings.Contains(err.Error(), tt.password) {
				t.Errorf("the error shows the password")
			}
		})
	}
}

func TestMessageBytesParses(t *testing.T) {
	t.Parallel()
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600))
	attachment := bytes.Repeat([]byte{0x00, 0xff, 0x10, '=', '_', '\n'}, 40)
	head := Message{
		From:      []string{"Bob Example <bob@example.org>"},
		To:        []string{"alice@example.org", "Zoë <zoe@example.org>"},
		Cc:        []string{"carol@example.org"},
		Subject:   "Grüße = hello",
		MessageID: "<m1@example.org>",
		InReplyTo: "<m0@example.org>",
		Date:      date,
	}
	with := func(f func(*Message)) Message { m := head; f(&m); return m }
	tests := []struct {
		name      string
		msg       Message
		wantType  string
		wantParts []leaf
	}{
		{"plain", with(func(m *Message) { m.Text = "Hello = world\nline two, café\n" }),
			"text/plain", []leaf{{"text/plain", "utf-8", "Hello = world\r\nline two, café\r\n"}}},
		{"html only", with(func(m *Message) { m.HTML = "<p>Hi</p>" }),
			"text/html", []leaf{{"text/html", "utf-8", "<p>Hi</p>"}}},
		{"alternative", with(func(m *Message) { m.Text = "Hi"; m.HTML = "<p>Hi</p>" }),
			"multipart/alternative", []leaf{{"text/plain", "utf-8", "Hi"}, {"text/html", "utf-8", "<p>Hi</p>"}}},
		{"mixed with attachment", with(func(m *Message) { m.Text = "see attached"; m.Attachment = attachment }),
			"multipart/mixed", []leaf{{"text/plain", "utf-8", "see attached"}, {"application/octet-stream", "", string(attachment)}}},
		{"mixed around alternative", with(func(m *Message) { m.Text = "Hi"; m.HTML = "<b>Hi</b>"; m.Attachment = []byte("x") }),
			"multipart/mixed", []leaf{{"text/plain", "utf-8", "Hi"}, {"text/html", "utf-8", "<b>Hi</b>"}, {"application/octet-stream", "", "x"}}},
		{"iso-8859-1", with(func(m *Message) { m.Text = "café déjà vu"; m.TextCharset = "iso-8859-1" }),
			"text/plain", []leaf{{"text/plain", "iso-8859-1", "caf\xe9 d\xe9j\xe0 vu"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			raw := tt.msg.Bytes()
			if !bytes.Equal(raw, tt.msg.Bytes()) {
				t.Errorf("Bytes is not deterministic")
			}
			if bad := bytes.Count(raw, []byte("\n")) - bytes.Count(raw, []byte("\r\n")); bad != 0 {
				t.Errorf("%d bare LF line endings", bad)
			}
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("net/mail: %v\n%s", err, raw)
			}
			checkHeader(t, m.Header, head)
			mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
			if err != nil {
				t.Fatal(err)
			}
			if mediaType != tt.wantType {
				t.Errorf("Content-Type %s, want %s", mediaType, tt.wantType)
			}
			got := leaves(t, mediaType, params, m.Header.Get("Content-Transfer-Encoding"), m.Body)
			if diff := cmp.Diff(tt.wantParts, got, cmp.AllowUnexported(leaf{})); diff != "" {
				t.Errorf("parts (-want +got):\n%s\n%s", diff, raw)
			}
		})
	}
}

func TestMessageBytesRejectsUnknownCharset(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("Bytes did not panic")
		}
	}()
	Message{Text: "x", TextCharset: "no-such-charset"}.Bytes()
}

// checkLogClean fails t if Dovecot logged errors or warnings, which
// would point at a broken throwaway configuration.
func checkLogClean(t *testing.T, s *Server) {
	t.Helper()
	for _, line := range strings.Split(s.Log(), "\n") {
		if strings.Contains(line, " Error: ") || strings.Contains(line, " Warning: ") || strings.Contains(line, " Fatal: ") {
			t.Errorf("dovecot.log: %s", line)
		}
	}
}

// checkHeader compares the header fields net/mail parses with want's.
func checkHeader(t *testing.T, h mail.Header, want Message) {
	t.Helper()
	date, err := h.Date()
	if err != nil || !date.Equal(want.Date) {
		t.Errorf("Date = %v (%v), want %v", date, err, want.Date)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != want.Subject {
		t.Errorf("Subject = %q (%v), want %q", subject, err, want.Subject)
	}
	for name, list := range map[string][]string{"From": want.From, "To": want.To, "Cc": want.Cc} {
		addrs, err := h.AddressList(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var got []string
		for _, a := range addrs {
			if a.Name == "" {
				got = append(got, a.Address)
			} else {
				got = append(got, a.Name+" <"+a.Address+">")
			}
		}
		if diff := cmp.Diff(list, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	for name, v := range map[string]string{"Message-Id": want.MessageID, "In-Reply-To": want.InReplyTo, "Mime-Version": "1.0"} {
		if got := h.Get(name); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

// leaf is one non-multipart part, its body decoded from its transfer
// encoding but left in its charset.
type leaf struct {
	mediaType, charset, content string
}

// leaves walks a MIME entity depth first with mime/multipart.
func leaves(t *testing.T, mediaType string, params map[string]string, cte string, body io.Reader) []leaf {
	t.Helper()
	if !strings.HasPrefix(mediaType, "multipart/") {
		switch strings.ToLower(cte) {
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("decode %s %s: %v", mediaType, cte, err)
		}
		return []leaf{{mediaType, params["charset"], string(b)}}
	}
	var out []leaf
	r := multipart.NewReader(body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", mediaType, err)
		}
		mt, ps, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, leaves(t, mt, ps, p.Header.Get("Content-Transfer-Encoding"), p)...)
	}
}

// fetched is what FETCH returns of one message.
type fetched struct {
	body  []byte
	flags []imap.Flag
}

func fetch(t *testing.T, c *imapclient.Client, uid imap.UID) fetched {
	t.Helper()
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
		Flags: true, UID: true, BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("FETCH UID %d returned %d messages", uid, len(msgs))
	}
	return fetched{body: msgs[0].FindBodySection(section), flags: msgs[0].Flags}
}

// flagRecent is IMAP4rev1's \Recent, which the server adds on its own.
const flagRecent imap.Flag = "\\Recent"

// sortedFlags returns flags sorted, without \Recent, and nil when empty.
func sortedFlags(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range flags {
		if f != flagRecent {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out
}

// loginWith logs in as s.User with password over implicit TLS.
func loginWith(s *Server, password string) error {
	c, err := imapclient.DialTLS(s.TLSAddr(), &imapclient.Options{TLSConfig: s.TLSConfig()})
	if err != nil {
		return err
	}
	defer closeClient(c)
	return c.Login(s.User, password).Wait()
}
