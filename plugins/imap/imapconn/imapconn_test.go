package imapconn_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/connhost/connhost/plugins/imap/dovecottest"
	"github.com/connhost/connhost/plugins/imap/imapconn"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/emersion/go-imap/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The account every test logs in to. Each password is a canary: it must
// reach Dovecot in LOGIN and appear nowhere else (log output, record,
// checkpoint, progress, failure).
const (
	user          = "alice"
	password      = "pw-CANARY-imapconn-7f3a9c"
	wrongPassword = "pw-CANARY-wrong-2b81de"
	newPassword   = "pw-CANARY-rotated-c40e57"
)

var canaries = []string{password, wrongPassword, newPassword}

// t0 is the Date header of the seeded messages.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))

// harness is one Dovecot and a connector pointed at it, with the log
// output of every run and check captured for the canary.
type harness struct {
	t    *testing.T
	srv  *dovecottest.Server
	c    *imapconn.Connector
	logs *sdktest.LogBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, srv: dovecottest.Start(t, user, password), c: imapconn.New(), logs: &sdktest.LogBuffer{}}
	t.Cleanup(func() {
		for _, c := range canaries {
			if strings.Contains(h.logs.String(), c) {
				t.Errorf("the connector's log output holds a password")
			}
			if strings.Contains(h.srv.Log(), c) {
				t.Errorf("dovecot.log holds a password")
			}
		}
	})
	return h
}

// sub returns the harness for subtest t: same server, connector and log.
func (h *harness) sub(t *testing.T) *harness {
	return &harness{t: t, srv: h.srv, c: h.c, logs: h.logs}
}

// config is implicit TLS to the server, trusting its CA, reading INBOX.
func (h *harness) config() imapconn.Config {
	return imapconn.Config{Host: h.srv.Host, Port: h.srv.TLSPort, CAFile: h.srv.CAFile}
}

func (h *harness) env() map[string]string {
	return map[string]string{imapconn.UsernameEnv: h.srv.User, imapconn.PasswordEnv: h.srv.Password}
}

// run runs the connector in-process from checkpoint and checks the
// canaries in everything it sent.
func (h *harness) run(cfg imapconn.Config, checkpoint []byte) *sdktest.Result {
	h.t.Helper()
	return h.runEnv(cfg, checkpoint, h.env())
}

func (h *harness) runEnv(cfg imapconn.Config, checkpoint []byte, env map[string]string) *sdktest.Result {
	h.t.Helper()
	res := sdktest.Run(h.t, h.c, sdktest.Options{Config: cfg, Checkpoint: checkpoint, Env: env, LogOutput: h.logs})
	checkResult(h.t, res)
	return res
}

// runOK is run for a run that must succeed.
func (h *harness) runOK(cfg imapconn.Config, checkpoint []byte) *sdktest.Result {
	h.t.Helper()
	res := h.run(cfg, checkpoint)
	if res.Err != nil {
		h.t.Fatalf("run: %v", res.Err)
	}
	return res
}

func (h *harness) check(cfg imapconn.Config, env map[string]string) wire.CheckResult {
	h.t.Helper()
	res, err := sdktest.Check(h.t, h.c, sdktest.Options{Config: cfg, Env: env, LogOutput: h.logs})
	if err != nil {
		h.t.Fatalf("check: %v", err)
	}
	text := res.Identity
	if res.Failure != nil {
		text += res.Failure.Error()
	}
	for _, c := range canaries {
		if strings.Contains(text, c) {
			h.t.Errorf("the check result holds a password: %+v", res)
		}
	}
	return res
}

// append appends msg to mailbox with flags.
func (h *harness) append(mailbox string, msg dovecottest.Message, flags ...imap.Flag) uint32 {
	h.t.Helper()
	return uint32(h.srv.Append(h.t, mailbox, msg.Bytes(), flags...))
}

// checkResult fails the test if a password appears in a record, a
// checkpoint, a progress message or the failure.
func checkResult(t *testing.T, res *sdktest.Result) {
	t.Helper()
	sent := res.Sent()
	for _, c := range canaries {
		if strings.Contains(sent, c) {
			t.Errorf("a record, checkpoint, progress message or failure holds a password")
		}
	}
}

// messages decodes the message records of res by key, checking each key
// is MessageKey of the record and appears once.
func messages(t *testing.T, res *sdktest.Result) map[string]imapconn.Message {
	t.Helper()
	out := map[string]imapconn.Message{}
	for _, r := range res.RecordsOf(imapconn.StreamMessages) {
		var m imapconn.Message
		if err := json.Unmarshal(r.Data, &m); err != nil {
			t.Fatalf("message %s: %v", r.Key, err)
		}
		if want := imapconn.MessageKey(m.Mailbox, m.UIDValidity, m.UID); r.Key != want {
			t.Errorf("message key %q, want %q", r.Key, want)
		}
		if _, dup := out[r.Key]; dup {
			t.Errorf("message %s sent twice in one run", r.Key)
		}
		out[r.Key] = m
	}
	return out
}

// mailboxes decodes the mailbox records of res, in order.
func mailboxes(t *testing.T, res *sdktest.Result) []imapconn.Mailbox {
	t.Helper()
	var out []imapconn.Mailbox
	for _, r := range res.RecordsOf(imapconn.StreamMailboxes) {
		var m imapconn.Mailbox
		if err := json.Unmarshal(r.Data, &m); err != nil {
			t.Fatalf("mailbox %s: %v", r.Key, err)
		}
		if r.Key != m.Name {
			t.Errorf("mailbox key %q, name %q", r.Key, m.Name)
		}
		out = append(out, m)
	}
	return out
}

func decodeState(t *testing.T, b []byte) imapconn.State {
	t.Helper()
	var s imapconn.State
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("checkpoint %s: %v", b, err)
	}
	return s
}

// lastState decodes the last checkpoint of res.
func lastState(t *testing.T, res *sdktest.Result) imapconn.State {
	t.Helper()
	b := res.LastCheckpoint()
	if b == nil {
		t.Fatal("the run sent no checkpoint")
	}
	return decodeState(t, b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func progressMessages(res *sdktest.Result) []string {
	var out []string
	for _, p := range res.Progress {
		out = append(out, p.Message)
	}
	return out
}

// serverFlags returns the flags the server holds for every message of
// mailbox, by UID, without \Recent, read through a client of its own
// (EXAMINE, so reading them changes nothing).
func serverFlags(t *testing.T, srv *dovecottest.Server, mailbox string) map[uint32][]string {
	t.Helper()
	c := srv.Dial(t)
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("EXAMINE %s: %v", mailbox, err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatalf("FETCH FLAGS: %v", err)
	}
	out := map[uint32][]string{}
	for _, m := range msgs {
		out[uint32(m.UID)] = flagStrings(m.Flags)
	}
	return out
}

// flagStrings returns flags as sorted strings without \Recent.
func flagStrings(flags []imap.Flag) []string {
	out := []string{}
	for _, f := range flags {
		if !strings.EqualFold(string(f), `\Recent`) {
			out = append(out, string(f))
		}
	}
	slices.Sort(out)
	return out
}

// wantFailure asserts f has code and retryable, its message holding
// every one of parts.
func wantFailure(t *testing.T, f *wire.Failure, code string, retryable bool, parts ...string) {
	t.Helper()
	if f == nil {
		t.Fatalf("no failure, want %s", code)
	}
	if f.Code != code || f.Retryable != retryable {
		t.Errorf("failure %q (retryable %v), want code %s, retryable %v", f.Error(), f.Retryable, code, retryable)
	}
	for _, p := range parts {
		if !strings.Contains(f.Message, p) {
			t.Errorf("failure message %q does not say %q", f.Message, p)
		}
	}
}

// seedMessages are three messages with every envelope field, the flags
// they are appended with, and the record fields the connector must make
// of them.
var seedMessages = []struct {
	msg   dovecottest.Message
	flags []imap.Flag
	want  imapconn.Message
}{
	{
		msg: dovecottest.Message{
			From:      []string{"Bob Example <bob@example.org>"},
			To:        []string{"alice@example.org"},
			Cc:        []string{"Carol Q. Example <carol@example.org>", "dave@example.org"},
			Subject:   "Quarterly report",
			MessageID: "<q1@example.org>",
			Date:      t0,
			Text:      "The report is attached.\nBob\n",
		},
		flags: []imap.Flag{imap.FlagSeen},
		want: imapconn.Message{
			Subject: "Quarterly report", MessageID: "q1@example.org", Date: t0,
			From:  []imapconn.Address{{Name: "Bob Example", Address: "bob@example.org"}},
			To:    []imapconn.Address{{Address: "alice@example.org"}},
			Cc:    []imapconn.Address{{Name: "Carol Q. Example", Address: "carol@example.org"}, {Address: "dave@example.org"}},
			Flags: []string{`\Seen`},
			Text:  new("The report is attached.\nBob\n"),
		},
	},
	{
		msg: dovecottest.Message{
			From:      []string{"alice@example.org"},
			To:        []string{"Bob Example <bob@example.org>"},
			Subject:   "Re: Quarterly report",
			MessageID: "<r1@example.org>",
			InReplyTo: "<q1@example.org>",
			Date:      t0.Add(time.Hour),
			Text:      "Thanks!\n",
		},
		want: imapconn.Message{
			Subject: "Re: Quarterly report", MessageID: "r1@example.org", InReplyTo: []string{"q1@example.org"}, Date: t0.Add(time.Hour),
			From:  []imapconn.Address{{Address: "alice@example.org"}},
			To:    []imapconn.Address{{Name: "Bob Example", Address: "bob@example.org"}},
			Cc:    []imapconn.Address{},
			Flags: []string{},
			Text:  new("Thanks!\n"),
		},
	},
	{
		msg: dovecottest.Message{
			From:      []string{"Jürgen Müller <juergen@example.de>"},
			To:        []string{"alice@example.org", "team@example.org"},
			Subject:   "Grüße aus Köln",
			MessageID: "<g1@example.de>",
			Date:      t0.Add(2 * time.Hour),
			Text:      "Schöne Grüße\n",
		},
		flags: []imap.Flag{imap.FlagFlagged, imap.FlagAnswered, "$Label1"},
		want: imapconn.Message{
			Subject: "Grüße aus Köln", MessageID: "g1@example.de", Date: t0.Add(2 * time.Hour),
			From:  []imapconn.Address{{Name: "Jürgen Müller", Address: "juergen@example.de"}},
			To:    []imapconn.Address{{Address: "alice@example.org"}, {Address: "team@example.org"}},
			Cc:    []imapconn.Address{},
			Flags: []string{"$Label1", `\Answered`, `\Flagged`},
			Text:  new("Schöne Grüße\n"),
		},
	},
}

// seed appends seedMessages to INBOX and returns their UIDs.
func (h *harness) seed() []uint32 {
	h.t.Helper()
	var uids []uint32
	for _, s := range seedMessages {
		uids = append(uids, h.append("INBOX", s.msg, s.flags...))
	}
	return uids
}

// note appends a small unflagged message to mailbox.
func (h *harness) note(mailbox, subject string) uint32 {
	h.t.Helper()
	return h.append(mailbox, dovecottest.Message{From: []string{"bob@example.org"}, To: []string{"alice@example.org"},
		Subject: subject, MessageID: "<" + subject + "@example.org>", Date: t0, Text: subject + "\n"})
}

// TestFirstRunCollectsEverything: a first run sends the mailbox record
// and every message with its envelope, flags (never \Recent), size and
// text; checkpoints after each fetch batch, each covering exactly the
// messages sent before it; leaves every flag on the server as it was
// (EXAMINE and BODY.PEEK: no \Seen); and Check reports the masked login.
func TestFirstRunCollectsEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.c.FetchBatch = 2
	uids := h.seed()
	before := serverFlags(t, h.srv, "INBOX")
	uidValidity := h.srv.UIDValidity(t, "INBOX")

	cfg := h.config()
	cfg.Bodies = imapconn.BodiesText
	res := h.runOK(cfg, nil)

	boxes := mailboxes(t, res)
	if len(boxes) != 1 {
		t.Fatalf("%d mailbox records, want 1: %+v", len(boxes), boxes)
	}
	box := boxes[0]
	if box.HighestModSeq == 0 {
		t.Errorf("mailbox record without HIGHESTMODSEQ: Dovecot offers CONDSTORE")
	}
	inbox := listed(t, h.srv)["INBOX"]
	box.Attributes = stableAttrs(box.Attributes)
	wantBox := imapconn.Mailbox{Name: "INBOX", Delimiter: string(inbox.Delim), Attributes: []string{`\HasNoChildren`},
		UIDValidity: uidValidity, Messages: 3, UIDNext: uids[2] + 1, HighestModSeq: box.HighestModSeq}
	if diff := cmp.Diff(wantBox, box); diff != "" {
		t.Errorf("mailbox record (-want +got):\n%s", diff)
	}

	got := messages(t, res)
	want := map[string]imapconn.Message{}
	for i, s := range seedMessages {
		w := s.want
		w.Mailbox, w.UIDValidity, w.UID = "INBOX", uidValidity, uids[i]
		w.Size = int64(len(s.msg.Bytes()))
		want[imapconn.MessageKey("INBOX", uidValidity, uids[i])] = w
	}
	for k, m := range got {
		if m.InternalDate.IsZero() || m.InternalDate.Location() != time.UTC {
			t.Errorf("%s: internal date %v, want a UTC time", k, m.InternalDate)
		}
		if m.ModSeq == 0 || m.ModSeq > box.HighestModSeq {
			t.Errorf("%s: modseq %d, want 1 to HIGHESTMODSEQ %d", k, m.ModSeq, box.HighestModSeq)
		}
		if slices.ContainsFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, `\Recent`) }) {
			t.Errorf(`%s: flags %q hold \Recent`, k, m.Flags)
		}
		slices.Sort(m.Flags)
		got[k] = m
	}
	opt := cmpopts.IgnoreFields(imapconn.Message{}, "InternalDate", "ModSeq")
	if diff := cmp.Diff(want, got, opt); diff != "" {
		t.Errorf("message records (-want +got):\n%s", diff)
	}

	// A checkpoint after the flag position, then after each batch of 2.
	var cpUIDs []uint32
	for _, cp := range res.Checkpoints {
		cpUIDs = append(cpUIDs, decodeState(t, cp).Mailboxes["INBOX"].UID)
	}
	if diff := cmp.Diff([]uint32{0, uids[1], uids[2]}, cpUIDs); diff != "" {
		t.Errorf("checkpoint UIDs (-want +got):\n%s", diff)
	}
	// Each checkpoint covers exactly the messages sent before it.
	var sent []uint32
	for _, m := range res.Messages {
		switch m.Kind {
		case wire.KindRecords:
			for _, r := range m.Records {
				if r.Stream == imapconn.StreamMessages {
					sent = append(sent, got[r.Key].UID)
				}
			}
		case wire.KindCheckpoint:
			at := decodeState(t, m.Checkpoint).Mailboxes["INBOX"].UID
			var covered []uint32
			for _, u := range uids {
				if u <= at {
					covered = append(covered, u)
				}
			}
			if !slices.Equal(sent, covered) {
				t.Errorf("checkpoint at UID %d follows messages %v, want %v", at, sent, covered)
			}
		}
	}

	wantState := imapconn.State{V: imapconn.StateVersion, Account: imapconn.AccountID(h.srv.Host, h.srv.User), Bodies: imapconn.BodiesText,
		Mailboxes: map[string]*imapconn.MailboxState{"INBOX": {UIDValidity: uidValidity, UID: uids[2], ModSeq: box.HighestModSeq}}}
	if diff := cmp.Diff(wantState, lastState(t, res)); diff != "" {
		t.Errorf("checkpoint (-want +got):\n%s", diff)
	}
	wantProgress := []wire.Progress{
		{Stream: imapconn.StreamMessages, Done: 2, Total: 3, Message: "INBOX (mailbox 1 of 1): 2 of 3 new messages"},
		{Stream: imapconn.StreamMessages, Done: 3, Total: 3, Message: "INBOX (mailbox 1 of 1): 3 of 3 new messages"},
	}
	if diff := cmp.Diff(wantProgress, res.Progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff(before, serverFlags(t, h.srv, "INBOX")); diff != "" {
		t.Errorf("the run changed flags on the server (-before +after):\n%s", diff)
	}
	if got := before[uids[1]]; len(got) != 0 {
		t.Errorf("the unread message had flags %q before the run", got)
	}

	// The identity masks the login (the host redacts credential values).
	chk := h.check(h.config(), h.env())
	if diff := cmp.Diff(wire.CheckResult{Valid: true, Identity: "a…e on 127.0.0.1"}, chk); diff != "" {
		t.Errorf("check (-want +got):\n%s", diff)
	}

	// The canary is only as good as the capture.
	if !strings.Contains(h.logs.String(), "run done") {
		t.Errorf("the log output lacks the connector's lines:\n%s", h.logs.String())
	}

	// Without bodies, no text at all.
	res = h.runOK(h.config(), nil)
	for k, m := range messages(t, res) {
		if m.Text != nil || m.TextTruncated {
			t.Errorf("%s: bodies none sent a text (truncated %v)", k, m.TextTruncated)
		}
	}
}

// TestResumedRunCollectsOnlyNewMessages: from the first run's checkpoint,
// a run sends the mailbox record and the two messages appended since,
// nothing else; a third run sends no message and the same checkpoint.
func TestResumedRunCollectsOnlyNewMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	first := h.runOK(h.config(), nil)
	if n := len(first.RecordsOf(imapconn.StreamMessages)); n != 3 {
		t.Fatalf("first run: %d messages, want 3", n)
	}

	u4, u5 := h.note("INBOX", "fourth"), h.note("INBOX", "fifth")
	second := h.runOK(h.config(), first.LastCheckpoint())
	wantKeys := []string{imapconn.MessageKey("INBOX", uidValidity, u4), imapconn.MessageKey("INBOX", uidValidity, u5)}
	slices.Sort(wantKeys)
	got := messages(t, second)
	if diff := cmp.Diff(wantKeys, sortedKeys(got)); diff != "" {
		t.Errorf("second run's messages (-want +got):\n%s", diff)
	}
	if got[wantKeys[0]].Subject == "" || len(second.RecordsOf(imapconn.StreamMailboxes)) != 1 {
		t.Errorf("second run: %d mailbox records, messages %+v", len(second.RecordsOf(imapconn.StreamMailboxes)), got)
	}
	st := lastState(t, second)
	if ms := st.Mailboxes["INBOX"]; ms == nil || ms.UID != u5 || ms.UIDValidity != uidValidity {
		t.Errorf("second checkpoint %+v, want INBOX at UID %d", st, u5)
	}

	third := h.runOK(h.config(), second.LastCheckpoint())
	if n := len(third.RecordsOf(imapconn.StreamMessages)); n != 0 {
		t.Errorf("third run: %d messages, want none", n)
	}
	if diff := cmp.Diff(st, lastState(t, third)); diff != "" {
		t.Errorf("third run's checkpoint (-second +third):\n%s", diff)
	}
}

// TestUIDValidityChangeRereadsMailbox: when the server reports another
// UIDVALIDITY, the run reads the mailbox again under keys of the new
// one, says so in its progress, and checkpoints the new UIDVALIDITY.
func TestUIDValidityChangeRereadsMailbox(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	uids := h.seed()
	old := h.srv.UIDValidity(t, "INBOX")
	first := h.runOK(h.config(), nil)

	h.srv.SetUIDValidity(t, "INBOX", old+7)
	res := h.runOK(h.config(), first.LastCheckpoint())
	var want []string
	for _, u := range uids {
		want = append(want, imapconn.MessageKey("INBOX", old+7, u))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, sortedKeys(messages(t, res))); diff != "" {
		t.Errorf("messages after the UIDVALIDITY change (-want +got):\n%s", diff)
	}
	wantMsg := fmt.Sprintf("INBOX: UIDVALIDITY changed from %d to %d", old, old+7)
	if !slices.ContainsFunc(progressMessages(res), func(m string) bool { return strings.HasPrefix(m, wantMsg) }) {
		t.Errorf("progress %q: none says %q", progressMessages(res), wantMsg)
	}
	if ms := lastState(t, res).Mailboxes["INBOX"]; ms == nil || ms.UIDValidity != old+7 || ms.UID != uids[2] {
		t.Errorf("checkpoint INBOX %+v, want UIDVALIDITY %d at UID %d", ms, old+7, uids[2])
	}
}

// TestCredentialRejected: a LOGIN the server refuses fails Run and Check
// with credential_rejected, not retryable; after a password change, the
// old password is refused and the new one accepted. A password holding a
// line break is refused without reaching the server.
func TestCredentialRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	addr := net.JoinHostPort(h.srv.Host, strconv.Itoa(h.srv.TLSPort))
	envWith := func(pw string) map[string]string {
		return map[string]string{imapconn.UsernameEnv: user, imapconn.PasswordEnv: pw}
	}
	refused := addr + " refused the login: NO [AUTHENTICATIONFAILED]"

	// Steps run in order: the password change is in the middle.
	steps := []struct {
		name    string
		before  func(t *testing.T)
		env     map[string]string
		wantErr string // a credential_rejected message part, or "" for success
	}{
		{name: "wrong password", env: envWith(wrongPassword), wantErr: refused},
		{name: "right password", env: envWith(password)},
		{name: "unknown user", env: map[string]string{imapconn.UsernameEnv: "mallory", imapconn.PasswordEnv: password}, wantErr: refused},
		{name: "line break in the password", env: envWith(password + "\r\nA1 LOGOUT"), wantErr: "control character"},
		{name: "old password after a change", before: func(t *testing.T) { h.srv.SetPassword(t, newPassword) }, env: envWith(password), wantErr: refused},
		{name: "new password after a change", env: envWith(newPassword)},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h := h.sub(t)
			if s.before != nil {
				s.before(t)
			}
			res := h.runEnv(h.config(), nil, s.env)
			chk := h.check(h.config(), s.env)
			if s.wantErr == "" {
				if res.Err != nil || !chk.Valid {
					t.Fatalf("run: %v; check: %+v", res.Err, chk)
				}
				if n := len(res.RecordsOf(imapconn.StreamMessages)); n != 3 {
					t.Errorf("%d messages, want 3", n)
				}
				return
			}
			wantFailure(t, res.Failure(), wire.CodeCredentialRejected, false, s.wantErr)
			if chk.Valid {
				t.Fatalf("check valid, want credential_rejected")
			}
			wantFailure(t, chk.Failure, wire.CodeCredentialRejected, false, s.wantErr)
			if len(res.Records)+len(res.Checkpoints) != 0 {
				t.Errorf("a refused login sent %d records, %d checkpoints", len(res.Records), len(res.Checkpoints))
			}
		})
	}
}

// TestTransport: implicit TLS and STARTTLS with the server's CA, by IP
// and by name, and plaintext on loopback all log in; an untrusted
// certificate, TLS to a plaintext port and a closed port are retryable
// failures that say which; plaintext to a remote host, and a missing
// ca_file, are config errors found without dialing.
func TestTransport(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.note("INBOX", "hello")
	srv := h.srv
	closed := closedPort(t)
	tests := []struct {
		name          string
		cfg           imapconn.Config
		wantCode      string // "" for success
		wantRetryable bool
		wantMsg       []string
	}{
		{name: "implicit TLS by IP", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.TLSPort, CAFile: srv.CAFile}},
		{name: "implicit TLS by name", cfg: imapconn.Config{Host: "localhost", Port: srv.TLSPort, CAFile: srv.CAFile, TLS: imapconn.TLSImplicit}},
		{name: "STARTTLS by IP", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.Port, CAFile: srv.CAFile, TLS: imapconn.TLSStartTLS}},
		{name: "STARTTLS by name", cfg: imapconn.Config{Host: "localhost", Port: srv.Port, CAFile: srv.CAFile, TLS: imapconn.TLSStartTLS}},
		{name: "plaintext on loopback", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.Port, InsecurePlaintext: true}},
		{name: "plaintext on localhost", cfg: imapconn.Config{Host: "localhost", Port: srv.Port, InsecurePlaintext: true}},
		{
			name: "implicit TLS, untrusted CA", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.TLSPort},
			wantCode: wire.CodeConnectorFailed, wantRetryable: true, wantMsg: []string{"TLS", "not trust"},
		},
		{
			name: "STARTTLS, untrusted CA", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.Port, TLS: imapconn.TLSStartTLS},
			wantCode: wire.CodeConnectorFailed, wantRetryable: true, wantMsg: []string{"TLS", "(STARTTLS)", "not trust"},
		},
		{
			name: "implicit TLS to the plaintext port", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.Port, CAFile: srv.CAFile},
			wantCode: wire.CodeConnectorFailed, wantRetryable: true, wantMsg: []string{"TLS", "did not answer in TLS"},
		},
		{
			name: "closed port", cfg: imapconn.Config{Host: "127.0.0.1", Port: closed, CAFile: srv.CAFile},
			wantCode: wire.CodeConnectorFailed, wantRetryable: true, wantMsg: []string{"network", "connection refused"},
		},
		{
			name: "plaintext to a remote host", cfg: imapconn.Config{Host: "example.org", Port: srv.Port, InsecurePlaintext: true},
			wantCode: wire.CodeInvalidConfig, wantMsg: []string{"insecure_plaintext", "example.org"},
		},
		{
			name: "missing ca_file", cfg: imapconn.Config{Host: "127.0.0.1", Port: srv.TLSPort, CAFile: "/nonexistent/ca.pem"},
			wantCode: wire.CodeInvalidConfig, wantMsg: []string{"ca_file", "/nonexistent/ca.pem"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			res := h.run(tt.cfg, nil)
			chk := h.check(tt.cfg, h.env())
			if tt.wantCode == "" {
				if res.Err != nil {
					t.Fatalf("run: %v", res.Err)
				}
				if m, b := len(res.RecordsOf(imapconn.StreamMessages)), len(res.RecordsOf(imapconn.StreamMailboxes)); m != 1 || b != 1 {
					t.Errorf("%d messages and %d mailboxes, want 1 and 1", m, b)
				}
				if diff := cmp.Diff(wire.CheckResult{Valid: true, Identity: "a…e on " + tt.cfg.Host}, chk); diff != "" {
					t.Errorf("check (-want +got):\n%s", diff)
				}
				return
			}
			wantFailure(t, res.Failure(), tt.wantCode, tt.wantRetryable, tt.wantMsg...)
			wantFailure(t, chk.Failure, tt.wantCode, tt.wantRetryable, tt.wantMsg...)
			if len(res.Records) != 0 {
				t.Errorf("a failed connection sent %d records", len(res.Records))
			}
		})
	}
}

// closedPort returns a loopback port nothing listens on (a moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestFlagChangesReemitted: with CONDSTORE, a run after a flag change
// sends exactly the changed message again, with its new flags, and the
// checkpoint's mod-sequence advances.
func TestFlagChangesReemitted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	uids := h.seed()
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	first := h.runOK(h.config(), nil)
	firstState := lastState(t, first)

	h.srv.SetFlags(t, "INBOX", imap.UID(uids[1]), imap.FlagSeen, imap.FlagFlagged)
	res := h.runOK(h.config(), first.LastCheckpoint())
	got := messages(t, res)
	key := imapconn.MessageKey("INBOX", uidValidity, uids[1])
	if diff := cmp.Diff([]string{key}, sortedKeys(got)); diff != "" {
		t.Fatalf("messages after a flag change (-want +got):\n%s", diff)
	}
	m := got[key]
	slices.Sort(m.Flags)
	if diff := cmp.Diff([]string{`\Flagged`, `\Seen`}, m.Flags); diff != "" {
		t.Errorf("flags (-want +got):\n%s", diff)
	}
	if m.Subject != seedMessages[1].want.Subject || m.ModSeq <= firstState.Mailboxes["INBOX"].ModSeq {
		t.Errorf("re-emitted record %+v: want the full record with a newer modseq than %d", m, firstState.Mailboxes["INBOX"].ModSeq)
	}
	if diff := cmp.Diff([]string{"INBOX: flags changed on 1 of 1 messages"}, progressMessages(res)); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	st := lastState(t, res)
	box := mailboxes(t, res)[0]
	if ms := st.Mailboxes["INBOX"]; ms.ModSeq <= firstState.Mailboxes["INBOX"].ModSeq || ms.ModSeq != box.HighestModSeq || ms.UID != uids[2] {
		t.Errorf("checkpoint INBOX %+v: want modseq %d (was %d), UID %d", ms, box.HighestModSeq, firstState.Mailboxes["INBOX"].ModSeq, uids[2])
	}

	// Nothing changed since: nothing is sent again.
	again := h.runOK(h.config(), res.LastCheckpoint())
	if n := len(again.RecordsOf(imapconn.StreamMessages)); n != 0 {
		t.Errorf("a run without changes sent %d messages", n)
	}
}

// TestFlagChangesWithinTheBudget: a flag pass larger than
// max_messages_per_run is spread over runs, a checkpoint after each
// batch, each run going on above the last; new mail waits for the pass,
// then comes; no change is lost and the pass's end moves the position.
func TestFlagChangesWithinTheBudget(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	var uids []uint32
	for i := range 5 {
		uids = append(uids, h.note("INBOX", fmt.Sprintf("m%d", i)))
	}
	cfg := h.config()
	cfg.MaxMessagesPerRun = 2
	var cp []byte
	for range 3 {
		cp = h.runOK(cfg, cp).LastCheckpoint()
	}
	before := decodeState(t, cp).Mailboxes["INBOX"]
	if before.UID != uids[4] || before.FlagsTo != 0 {
		t.Fatalf("after collecting: %+v", before)
	}
	for _, u := range uids {
		h.srv.SetFlags(t, "INBOX", imap.UID(u), imap.FlagFlagged)
	}
	late := h.note("INBOX", "late")
	var seen []string
	wantRuns := [][]uint32{{uids[0], uids[1]}, {uids[2], uids[3]}, {uids[4], late}}
	for i, want := range wantRuns {
		res := h.runOK(cfg, cp)
		cp = res.LastCheckpoint()
		var keys []string
		for _, u := range want {
			keys = append(keys, imapconn.MessageKey("INBOX", uidValidity, u))
		}
		slices.Sort(keys)
		got := messages(t, res)
		if diff := cmp.Diff(keys, sortedKeys(got)); diff != "" {
			t.Fatalf("run %d: messages (-want +got):\n%s", i+1, diff)
		}
		for k, m := range got {
			seen = append(seen, k)
			if k != imapconn.MessageKey("INBOX", uidValidity, late) && !slices.Contains(m.Flags, `\Flagged`) {
				t.Errorf("run %d: %s flags %v, want \\Flagged", i+1, k, m.Flags)
			}
		}
		ms := decodeState(t, cp).Mailboxes["INBOX"]
		switch i {
		case 0, 1:
			if ms.FlagsTo == 0 || ms.FlagsUID != want[1] || ms.ModSeq != before.ModSeq || ms.UID != uids[4] {
				t.Errorf("run %d: checkpoint %+v, want an unfinished pass at UID %d from modseq %d", i+1, ms, want[1], before.ModSeq)
			}
		case 2:
			if ms.FlagsTo != 0 || ms.FlagsUID != 0 || ms.ModSeq <= before.ModSeq || ms.UID != late {
				t.Errorf("run 3: checkpoint %+v, want the pass done (modseq past %d) and UID %d", ms, before.ModSeq, late)
			}
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d records over the three runs, want 6: %v", len(seen), seen)
	}
}

// TestMaxMessagesPerRun: five messages at two per run are collected as
// 2, 2, 1 with no key sent twice; a run that stops says the limit was
// reached.
func TestMaxMessagesPerRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	var all []string
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	for i := range 5 {
		u := h.note("INBOX", fmt.Sprintf("m%d", i))
		all = append(all, imapconn.MessageKey("INBOX", uidValidity, u))
	}
	slices.Sort(all)
	cfg := h.config()
	cfg.MaxMessagesPerRun = 2
	tests := []struct {
		wantMessages int
		wantProgress []string
	}{
		{2, []string{"INBOX (mailbox 1 of 1): 2 of 5 new messages", "INBOX: max_messages_per_run (2) reached with 3 new messages left; the next run goes on"}},
		{2, []string{"INBOX (mailbox 1 of 1): 2 of 3 new messages", "INBOX: max_messages_per_run (2) reached with 1 new messages left; the next run goes on"}},
		{1, []string{"INBOX (mailbox 1 of 1): 1 of 1 new messages"}},
		{0, nil},
	}
	var checkpoint []byte
	seen := map[string]int{}
	for i, tt := range tests {
		res := h.runOK(cfg, checkpoint)
		got := messages(t, res)
		if len(got) != tt.wantMessages {
			t.Errorf("run %d: %d messages, want %d", i+1, len(got), tt.wantMessages)
		}
		for k := range got {
			if prev, ok := seen[k]; ok {
				t.Errorf("run %d: %s already sent by run %d", i+1, k, prev)
			}
			seen[k] = i + 1
		}
		if diff := cmp.Diff(tt.wantProgress, progressMessages(res)); diff != "" {
			t.Errorf("run %d: progress (-want +got):\n%s", i+1, diff)
		}
		checkpoint = res.LastCheckpoint()
	}
	if diff := cmp.Diff(all, sortedKeys(seen)); diff != "" {
		t.Errorf("keys over all runs (-want +got):\n%s", diff)
	}
}

// TestMaxMessagesAcrossMailboxes: the limit holds across mailboxes; a
// mailbox the run has no budget left for is skipped with a progress
// message and read by the next run.
func TestMaxMessagesAcrossMailboxes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.srv.CreateMailbox(t, "Archive")
	key := map[string][]string{}
	for _, box := range []string{"INBOX", "Archive"} {
		v := h.srv.UIDValidity(t, box)
		for i := range 2 {
			u := h.note(box, fmt.Sprintf("%s%d", box, i))
			key[box] = append(key[box], imapconn.MessageKey(box, v, u))
		}
	}
	type run struct {
		wantKeys     []string
		wantProgress []string
	}
	tests := []struct {
		limit int
		runs  []run
	}{
		{3, []run{
			{append(slices.Clone(key["INBOX"]), key["Archive"][0]), []string{
				"INBOX (mailbox 1 of 2): 2 of 2 new messages",
				"Archive (mailbox 2 of 2): 1 of 2 new messages",
				"Archive: max_messages_per_run (3) reached with 1 new messages left; the next run goes on",
			}},
			{key["Archive"][1:], []string{"Archive (mailbox 2 of 2): 1 of 1 new messages"}},
		}},
		{2, []run{
			{key["INBOX"], []string{
				"INBOX (mailbox 1 of 2): 2 of 2 new messages",
				"Archive: skipped: max_messages_per_run (2) reached; the next run goes on",
			}},
			{key["Archive"], []string{"Archive (mailbox 2 of 2): 2 of 2 new messages"}},
			{nil, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("limit ", tt.limit), func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			cfg := h.config()
			cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"INBOX", "Archive"}}
			cfg.MaxMessagesPerRun = tt.limit
			var checkpoint []byte
			for i, r := range tt.runs {
				res := h.runOK(cfg, checkpoint)
				want := slices.Clone(r.wantKeys)
				slices.Sort(want)
				if diff := cmp.Diff(want, sortedKeys(messages(t, res)), cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("run %d: messages (-want +got):\n%s", i+1, diff)
				}
				if diff := cmp.Diff(r.wantProgress, progressMessages(res)); diff != "" {
					t.Errorf("run %d: progress (-want +got):\n%s", i+1, diff)
				}
				checkpoint = res.LastCheckpoint()
			}
		})
	}
}

// appendAt appends msg to mailbox with the INTERNALDATE at, through a
// client of its own (dovecottest.Append takes the server's clock).
func appendAt(t *testing.T, srv *dovecottest.Server, mailbox string, msg []byte, at time.Time) uint32 {
	t.Helper()
	c := srv.Dial(t)
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Time: at})
	if _, err := cmd.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	return uint32(data.UID)
}

// TestSince: since skips the messages received before it. A date past
// every message collects none and still moves the checkpoint to the
// last UID, so the next run does not search them again; an old date
// collects all; a date between old and new INTERNALDATEs collects the
// new ones only.
func TestSince(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old := time.Date(2015, 6, 1, 12, 0, 0, 0, time.UTC)
	oldUID := appendAt(t, h.srv, "INBOX", dovecottest.Message{From: []string{"bob@example.org"}, Subject: "old", Date: old, Text: "old\n"}.Bytes(), old)
	newUIDs := []uint32{h.note("INBOX", "new1"), h.note("INBOX", "new2")}
	last := newUIDs[1]
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	keys := func(uids ...uint32) []string {
		var out []string
		for _, u := range uids {
			out = append(out, imapconn.MessageKey("INBOX", uidValidity, u))
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		since string
		want  []string
	}{
		{"2099-01-01", nil},
		{"2000-01-01", keys(oldUID, newUIDs[0], newUIDs[1])},
		{"2020-01-01", keys(newUIDs...)},
	}
	for _, tt := range tests {
		t.Run(tt.since, func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			cfg := h.config()
			cfg.Since = tt.since
			res := h.runOK(cfg, nil)
			got := sortedKeys(messages(t, res))
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			st := lastState(t, res)
			if st.Since != tt.since {
				t.Errorf("checkpoint since %q, want %q", st.Since, tt.since)
			}
			if ms := st.Mailboxes["INBOX"]; ms == nil || ms.UID != last {
				t.Errorf("checkpoint INBOX %+v, want UID %d (UIDNEXT-1)", ms, last)
			}
			if len(res.RecordsOf(imapconn.StreamMailboxes)) != 1 {
				t.Errorf("no mailbox record")
			}
		})
	}
}

// TestMailboxes: "*" reads every selectable mailbox (non-ASCII names,
// spaces, an empty one, a nested one) but not a hierarchy parent that
// cannot be selected; named mailboxes are read by their names; a named
// mailbox the server lacks fails Run and Check with invalid_config naming
// it; a checkpoint's position for a mailbox no longer read is dropped.
func TestMailboxes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	delim := listed(t, h.srv)["INBOX"].Delim
	nested := "Work" + string(delim) + "Projects"
	for _, name := range []string{"Archive", nested, "Entwürfe", "Sent Items"} {
		h.srv.CreateMailbox(t, name)
	}
	h.note("INBOX", "in-inbox")
	h.note("Archive", "archived1")
	h.note("Archive", "archived2")
	h.note(nested, "project")
	h.note("Entwürfe", "draft")
	count := map[string]int{"INBOX": 1, "Archive": 2, nested: 1, "Entwürfe": 1, "Sent Items": 0}
	list := listed(t, h.srv)
	if parent := list["Work"]; parent == nil || !slices.Contains(parent.Attrs, imap.MailboxAttrNoSelect) {
		t.Fatalf(`the server lists "Work" as %+v; the test needs a \Noselect parent`, parent)
	}

	// wantBoxes checks the mailbox records of res against the server's
	// LIST and count.
	wantBoxes := func(t *testing.T, res *sdktest.Result, names ...string) {
		t.Helper()
		var got []string
		for _, b := range mailboxes(t, res) {
			got = append(got, b.Name)
			l := list[b.Name]
			if l == nil {
				t.Errorf("mailbox record %q: not listed by the server", b.Name)
				continue
			}
			var attrs []string
			for _, a := range l.Attrs {
				attrs = append(attrs, string(a))
			}
			attrs = stableAttrs(attrs)
			b.Attributes = stableAttrs(b.Attributes)
			want := imapconn.Mailbox{Name: b.Name, Delimiter: string(delim), Attributes: attrs,
				UIDValidity: h.srv.UIDValidity(t, b.Name), Messages: uint32(count[b.Name]), UIDNext: uint32(count[b.Name]) + 1,
				HighestModSeq: b.HighestModSeq}
			if diff := cmp.Diff(want, b); diff != "" {
				t.Errorf("mailbox record %q (-want +got):\n%s", b.Name, diff)
			}
		}
		slices.Sort(got)
		slices.Sort(names)
		if diff := cmp.Diff(names, got); diff != "" {
			t.Errorf("mailboxes read (-want +got):\n%s", diff)
		}
		perBox := map[string]int{}
		for _, m := range messages(t, res) {
			perBox[m.Mailbox]++
		}
		for _, n := range names {
			if perBox[n] != count[n] {
				t.Errorf("%q: %d messages, want %d", n, perBox[n], count[n])
			}
		}
		if diff := cmp.Diff(names, sortedKeys(lastState(t, res).Mailboxes)); diff != "" {
			t.Errorf("checkpoint mailboxes (-want +got):\n%s", diff)
		}
	}

	t.Run("all", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		cfg := h.config()
		cfg.Mailboxes = imapconn.Mailboxes{All: true}
		wantBoxes(t, h.runOK(cfg, nil), sortedKeys(count)...)
		if chk := h.check(cfg, h.env()); !chk.Valid {
			t.Errorf("check: %+v", chk.Failure)
		}
	})
	t.Run("named", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		cfg := h.config()
		cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"Entwürfe", "Sent Items", nested}}
		wantBoxes(t, h.runOK(cfg, nil), "Entwürfe", "Sent Items", nested)
		if chk := h.check(cfg, h.env()); !chk.Valid {
			t.Errorf("check: %+v", chk.Failure)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		cfg := h.config()
		cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"INBOX", "Nope"}}
		res := h.run(cfg, nil)
		wantFailure(t, res.Failure(), wire.CodeInvalidConfig, false, `"Nope" is not on the server`)
		if n := len(res.Records); n != 0 {
			t.Errorf("%d records sent before failing", n)
		}
		cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"Nope"}}
		wantFailure(t, h.check(cfg, h.env()).Failure, wire.CodeInvalidConfig, false, `"Nope"`)
	})
	t.Run("parent that cannot be selected", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		cfg := h.config()
		cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"Work"}}
		wantFailure(t, h.run(cfg, nil).Failure(), wire.CodeInvalidConfig, false, `"Work" cannot be selected`)
	})
	t.Run("dropped", func(t *testing.T) {
		t.Parallel()
		h := h.sub(t)
		cfg := h.config()
		cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"inbox", "Archive"}}
		first := h.runOK(cfg, nil)
		if diff := cmp.Diff([]string{"Archive", "INBOX"}, sortedKeys(lastState(t, first).Mailboxes)); diff != "" {
			t.Fatalf("first checkpoint's mailboxes (-want +got):\n%s", diff)
		}
		cfg.Mailboxes = imapconn.Mailboxes{Names: []string{"INBOX"}}
		second := h.runOK(cfg, first.LastCheckpoint())
		if n := len(second.RecordsOf(imapconn.StreamMessages)); n != 0 {
			t.Errorf("INBOX read again: %d messages", n)
		}
		st := lastState(t, second)
		if diff := cmp.Diff([]string{"INBOX"}, sortedKeys(st.Mailboxes)); diff != "" {
			t.Errorf("second checkpoint's mailboxes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(lastState(t, first).Mailboxes["INBOX"], st.Mailboxes["INBOX"]); diff != "" {
			t.Errorf("INBOX position (-first +second):\n%s", diff)
		}
	})
}

// stableAttrs returns attrs without \Marked and \Unmarked, which Dovecot
// sets from the maildir's timestamps: they change from one LIST to the
// next.
func stableAttrs(attrs []string) []string {
	out := []string{}
	for _, a := range attrs {
		if !strings.EqualFold(a, `\Marked`) && !strings.EqualFold(a, `\Unmarked`) {
			out = append(out, a)
		}
	}
	return out
}

// listed returns the server's mailboxes (LIST "" *) by name.
func listed(t *testing.T, srv *dovecottest.Server) map[string]*imap.ListData {
	t.Helper()
	list, err := srv.Dial(t).List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	out := map[string]*imap.ListData{}
	for _, l := range list {
		out[l.Mailbox] = l
	}
	return out
}

// TestCheckpointNotUsable: a checkpoint that is unreadable, of another
// version, or taken for another server address or other since or bodies
// settings is discarded: the run reads the mailbox from the start and
// checkpoints under its own settings.
func TestCheckpointNotUsable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	uids := h.seed()
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	good := lastState(t, h.runOK(h.config(), nil))
	with := func(edit func(s *imapconn.State)) []byte {
		s := good
		s.Mailboxes = map[string]*imapconn.MailboxState{"INBOX": new(*good.Mailboxes["INBOX"])}
		edit(&s)
		return mustJSON(t, s)
	}
	tests := []struct {
		name       string
		checkpoint []byte
	}{
		{"unreadable", []byte(`{"v":1,"mailboxes":`)},
		{"another version", with(func(s *imapconn.State) { s.V = imapconn.StateVersion + 1 })},
		{"another since", with(func(s *imapconn.State) { s.Since = "2000-01-01" })},
		{"another bodies", with(func(s *imapconn.State) { s.Bodies = imapconn.BodiesText })},
		{"UIDVALIDITY zero", with(func(s *imapconn.State) { s.Mailboxes["INBOX"].UIDValidity = 0 })},
	}
	var want []string
	for _, u := range uids {
		want = append(want, imapconn.MessageKey("INBOX", uidValidity, u))
	}
	slices.Sort(want)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := h.sub(t)
			res := h.runOK(h.config(), tt.checkpoint)
			if diff := cmp.Diff(want, sortedKeys(messages(t, res))); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(good, lastState(t, res)); diff != "" {
				t.Errorf("checkpoint (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckpointOfAnotherAccount: a checkpoint collected from another
// login (or server) refuses the run, typed invalid_config, before any
// record: message keys hold no account, so going on would overwrite the
// other account's records. Clearing the checkpoint (no checkpoint) lets
// it collect this account from the start.
func TestCheckpointOfAnotherAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.seed()
	good := lastState(t, h.runOK(h.config(), nil))
	other := good
	other.Account = imapconn.AccountID(h.srv.Host, "someone-else@example.org")
	res := h.run(h.config(), mustJSON(t, other))
	f := res.Failure()
	if f == nil || f.Code != wire.CodeInvalidConfig || f.Retryable || !strings.Contains(f.Message, "reset-state") {
		t.Fatalf("run from another account's checkpoint: %v, want invalid_config naming reset-state", res.Err)
	}
	if len(res.Records) != 0 || len(res.Checkpoints) != 0 {
		t.Errorf("the refused run sent %d records and %d checkpoints", len(res.Records), len(res.Checkpoints))
	}
	// Another port of the same host is the same account.
	cfg := h.config()
	cfg.Port = h.srv.Port
	cfg.TLS = imapconn.TLSStartTLS
	if res := h.runOK(cfg, mustJSON(t, good)); len(messages(t, res)) != 0 {
		t.Errorf("the same account on another port read %d messages again", len(messages(t, res)))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBodiesText: bodies text keeps the first text/plain part, decoded
// to UTF-8: from quoted-printable, from ISO-8859-1, the text of
// multipart/alternative (not the HTML), the text beside an attachment,
// nothing for HTML alone; a long text is cut at max_body_bytes on a
// character boundary and marked truncated. Reading the texts sets no
// \Seen.
func TestBodiesText(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const max = imapconn.MinMaxBodyBytes
	ascii := strings.Repeat("0123456789", 300)
	wide := "a" + strings.Repeat("é", 2000)
	tests := []struct {
		name          string
		msg           dovecottest.Message
		wantText      string
		wantTruncated bool
	}{
		{name: "plain UTF-8", msg: dovecottest.Message{Text: "Grüße aus Köln — naïve café ☕\nZweite Zeile\n"}, wantText: "Grüße aus Köln — naïve café ☕\nZweite Zeile\n"},
		{name: "alternative", msg: dovecottest.Message{Text: "plain version\n", HTML: "<p>html version</p>"}, wantText: "plain version\n"},
		{name: "HTML only", msg: dovecottest.Message{HTML: "<p>only html</p>"}, wantText: ""},
		{name: "attachment", msg: dovecottest.Message{Text: "see attached\n", Attachment: []byte("not the text\x00\x01")}, wantText: "see attached\n"},
		{name: "alternative with attachment", msg: dovecottest.Message{Text: "both\n", HTML: "<b>both</b>", Attachment: []byte{1, 2, 3}}, wantText: "both\n"},
		{name: "ISO-8859-1", msg: dovecottest.Message{Text: "Café crème, àçéèù ÿ\n", TextCharset: "iso-8859-1"}, wantText: "Café crème, àçéèù ÿ\n"},
		{name: "long ASCII", msg: dovecottest.Message{Text: ascii}, wantText: ascii[:max], wantTruncated: true},
		// 1 + 2×511 = 1023 bytes: the 512th "é" would end past 1024.
		{name: "long two-byte characters", msg: dovecottest.Message{Text: wide}, wantText: "a" + strings.Repeat("é", 511), wantTruncated: true},
	}
	uids := map[string]uint32{}
	for _, tt := range tests {
		tt.msg.From = []string{"bob@example.org"}
		tt.msg.Subject = tt.name
		uids[tt.name] = h.append("INBOX", tt.msg)
	}
	before := serverFlags(t, h.srv, "INBOX")
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	cfg := h.config()
	cfg.Bodies = imapconn.BodiesText
	cfg.MaxBodyBytes = max
	got := messages(t, h.runOK(cfg, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := got[imapconn.MessageKey("INBOX", uidValidity, uids[tt.name])]
			if !ok {
				t.Fatal("not collected")
			}
			if m.Text == nil {
				t.Fatal("no text field with bodies text")
			}
			if !utf8.ValidString(*m.Text) || len(*m.Text) > max {
				t.Errorf("text of %d bytes, valid UTF-8 %v", len(*m.Text), utf8.ValidString(*m.Text))
			}
			if *m.Text != tt.wantText || m.TextTruncated != tt.wantTruncated {
				t.Errorf("text %q (%d bytes, truncated %v),\nwant %q (%d bytes, truncated %v)",
					*m.Text, len(*m.Text), m.TextTruncated, tt.wantText, len(tt.wantText), tt.wantTruncated)
			}
		})
	}
	if diff := cmp.Diff(before, serverFlags(t, h.srv, "INBOX")); diff != "" {
		t.Errorf("fetching texts changed flags (-before +after):\n%s", diff)
	}
}

// raw joins header lines and a body into a message with CRLF endings.
func raw(headers []string, body string) []byte {
	return []byte(strings.Join(headers, "\r\n") + "\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n"))
}

// TestUnusualMessages: messages dovecottest.Message does not build, as
// mail servers hold them: raw 8-bit and undecodable header words, no
// Date or Message-ID, group syntax, base64 and 8bit text parts, a
// windows-1252 or unknown charset, no Content-Type at all. Each is
// collected, its record valid UTF-8 with what can be decoded decoded.
func TestUnusualMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const max = imapconn.MinMaxBodyBytes
	b64 := func(s string) string {
		enc := base64.StdEncoding.EncodeToString([]byte(s))
		var lines []string
		for len(enc) > 76 {
			lines = append(lines, enc[:76])
			enc = enc[76:]
		}
		return strings.Join(append(lines, enc), "\n")
	}
	ascii := strings.Repeat("0123456789", 300)
	wide := "a" + strings.Repeat("é", 2000)
	textHeaders := func(ct, cte string) []string {
		return []string{"From: bob@example.org", "Subject: body", "MIME-Version: 1.0", "Content-Type: " + ct, "Content-Transfer-Encoding: " + cte}
	}
	tests := []struct {
		name  string
		msg   []byte
		check func(t *testing.T, m imapconn.Message)
	}{
		{"raw 8-bit subject", raw([]string{"From: bob@example.org", "Subject: Caf\xe9 cr\xe8me"}, "x\n"), func(t *testing.T, m imapconn.Message) {
			if !utf8.ValidString(m.Subject) || !strings.HasPrefix(m.Subject, "Caf") {
				t.Errorf("subject %q, want valid UTF-8 beginning Caf", m.Subject)
			}
		}},
		{"unknown charset in an encoded word", raw([]string{"From: =?x-unknown?q?B=F6b?= <bob@example.org>", "Subject: =?x-unknown?q?abc?="}, "x\n"), func(t *testing.T, m imapconn.Message) {
			if m.Subject != "=?x-unknown?q?abc?=" || len(m.From) != 1 || m.From[0].Address != "bob@example.org" {
				t.Errorf("subject %q, from %+v: want the encoded word kept as it is", m.Subject, m.From)
			}
		}},
		{"no Date, Message-ID or From", raw([]string{"Subject: bare"}, "x\n"), func(t *testing.T, m imapconn.Message) {
			want := imapconn.Message{Subject: "bare", From: []imapconn.Address{}, To: []imapconn.Address{}, Cc: []imapconn.Address{}}
			got := imapconn.Message{Subject: m.Subject, Date: m.Date, MessageID: m.MessageID, From: m.From, To: m.To, Cc: m.Cc, InReplyTo: m.InReplyTo}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("envelope (-want +got):\n%s", diff)
			}
		}},
		{"groups", raw([]string{"From: bob@example.org", "To: Team: a@example.org, \"B\" <b@example.org>;", "Cc: undisclosed-recipients:;", "Subject: groups"}, "x\n"), func(t *testing.T, m imapconn.Message) {
			if diff := cmp.Diff([]imapconn.Address{{Address: "a@example.org"}, {Name: "B", Address: "b@example.org"}}, m.To); diff != "" {
				t.Errorf("to (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]imapconn.Address{}, m.Cc); diff != "" {
				t.Errorf("cc (-want +got):\n%s", diff)
			}
		}},
		{"empty addresses", raw([]string{"From: bob@example.org", "To: <>", "Cc: <>, carol@example.org", "Subject: empty"}, "x\n"), func(t *testing.T, m imapconn.Message) {
			if diff := cmp.Diff([]imapconn.Address{}, m.To); diff != "" {
				t.Errorf("to (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]imapconn.Address{{Address: "carol@example.org"}}, m.Cc); diff != "" {
				t.Errorf("cc (-want +got):\n%s", diff)
			}
		}},
		// The first text/plain part is an attachment: the text is the
		// inline part after it (BODYSTRUCTURE carries the disposition).
		{"text attachment before the inline text", raw([]string{"From: bob@example.org", "Subject: att", "MIME-Version: 1.0",
			"Content-Type: multipart/mixed; boundary=b"},
			"--b\nContent-Type: text/plain; name=a.txt\nContent-Disposition: attachment; filename=a.txt\n\nATTACHMENT TEXT\n"+
				"--b\nContent-Type: text/plain; charset=utf-8\n\nINLINE TEXT\n--b--\n"), wantText("INLINE TEXT", false)},
		{"no Content-Type", raw([]string{"From: bob@example.org", "Subject: plain"}, "plain body\n"), wantText("plain body\n", false)},
		{"base64 UTF-8", raw(textHeaders("text/plain; charset=utf-8", "base64"), b64("Grüße\nzweite Zeile\n")), wantText("Grüße\nzweite Zeile\n", false)},
		{"8bit windows-1252", raw(textHeaders("text/plain; charset=windows-1252", "8bit"), "price: 5\x80\n"), wantText("price: 5€\n", false)},
		{"unknown charset", raw(textHeaders("text/plain; charset=x-unknown", "7bit"), "hello\n"), wantText("hello\n", true)},
		{"long base64 ASCII", raw(textHeaders("text/plain; charset=utf-8", "base64"), b64(ascii)), wantText(ascii[:max], true)},
		{"long base64 two-byte characters", raw(textHeaders("text/plain; charset=utf-8", "base64"), b64(wide)), wantText("a"+strings.Repeat("é", 511), true)},
	}
	uids := map[string]uint32{}
	for _, tt := range tests {
		uids[tt.name] = uint32(h.srv.Append(t, "INBOX", tt.msg))
	}
	uidValidity := h.srv.UIDValidity(t, "INBOX")
	cfg := h.config()
	cfg.Bodies = imapconn.BodiesText
	cfg.MaxBodyBytes = max
	res := h.runOK(cfg, nil)
	for _, r := range res.Records {
		if !utf8.Valid(r.Data) || !json.Valid(r.Data) {
			t.Errorf("record %s is not valid UTF-8 JSON", r.Key)
		}
	}
	got := messages(t, res)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := got[imapconn.MessageKey("INBOX", uidValidity, uids[tt.name])]
			if !ok {
				t.Fatal("not collected")
			}
			tt.check(t, m)
		})
	}
}

// wantText checks a record's text and truncation.
func wantText(text string, truncated bool) func(t *testing.T, m imapconn.Message) {
	return func(t *testing.T, m imapconn.Message) {
		t.Helper()
		if m.Text == nil {
			t.Fatal("no text with bodies text")
		}
		if *m.Text != text || m.TextTruncated != truncated {
			t.Errorf("text %q (%d bytes, truncated %v),\nwant %q (%d bytes, truncated %v)", *m.Text, len(*m.Text), m.TextTruncated, text, len(text), truncated)
		}
	}
}

// TestCancelledRunReturns: a run cancelled while the server stays silent
// (no greeting, no TLS handshake) returns the context's error at once,
// not after the dial or idle timeouts.
func TestCancelledRunReturns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  func(port int) imapconn.Config
	}{
		{"implicit TLS handshake", func(port int) imapconn.Config {
			return imapconn.Config{Host: "127.0.0.1", Port: port}
		}},
		{"STARTTLS greeting", func(port int) imapconn.Config {
			return imapconn.Config{Host: "127.0.0.1", Port: port, TLS: imapconn.TLSStartTLS}
		}},
		{"plaintext greeting", func(port int) imapconn.Config {
			return imapconn.Config{Host: "127.0.0.1", Port: port, InsecurePlaintext: true}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port, accepted := silentServer(t)
			// Timeouts far beyond the test's own: only the cancellation
			// can end the run.
			c := &imapconn.Connector{DialTimeout: time.Hour, IdleTimeout: time.Hour}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan *sdktest.Result, 1)
			var logs sdktest.LogBuffer
			go func() {
				res, err := sdktest.RunContext(ctx, c, sdktest.Options{Config: tt.cfg(port), Timeout: time.Hour,
					Env: map[string]string{imapconn.UsernameEnv: user, imapconn.PasswordEnv: password}, LogOutput: &logs})
				if err != nil {
					res = &sdktest.Result{Err: err}
				}
				done <- res
			}()
			<-accepted
			cancel()
			select {
			case res := <-done:
				if !errors.Is(res.Err, context.Canceled) {
					t.Errorf("run ended with %v, want context.Canceled", res.Err)
				}
				checkResult(t, res)
			case <-time.After(time.Minute):
				// A hang guard, not a timing assertion.
				t.Fatal("the run did not return a minute after its cancellation")
			}
			if strings.Contains(logs.String(), password) {
				t.Error("the log output holds the password")
			}
		})
	}
}

// TestServerGoesAway: a server that stops answering fails the run after
// IdleTimeout, and one that hangs up fails it at once, as retryable
// network failures that say which, before and after the greeting.
func TestServerGoesAway(t *testing.T) {
	t.Parallel()
	const greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"
	tests := []struct {
		name     string
		greeting string
		hangUp   bool
		wantMsg  []string
	}{
		{"no greeting", "", false, []string{"(greeting)", "timed out"}},
		{"no answer to LOGIN", greeting, false, []string{"(login)", "timed out"}},
		{"hangs up before the greeting", "", true, []string{"(greeting)", "the server closed the connection"}},
		{"hangs up at LOGIN", greeting, true, []string{"(login)", "the server closed the connection"}},
		// A byte at a time never ends the greeting: the dial phase's
		// deadline does not move with bytes received.
		{"drips a greeting that never ends", "drip", false, []string{"(greeting)", "timed out"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port, _ := fakeServer(t, func(c net.Conn) {
				if tt.greeting == "drip" {
					_, _ = c.Write([]byte("* OK "))
					for {
						time.Sleep(50 * time.Millisecond)
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
				if tt.greeting != "" {
					_, _ = c.Write([]byte(tt.greeting))
				}
				if tt.hangUp {
					if tt.greeting != "" {
						_, _ = bufio.NewReader(c).ReadString('\n')
					}
					c.Close()
				}
			})
			res := runScripted(t, &imapconn.Connector{DialTimeout: 500 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}, port)
			wantFailure(t, res.Failure(), wire.CodeConnectorFailed, true, append([]string{"network failure"}, tt.wantMsg...)...)
		})
	}
}

// TestLoginAnswers: how the connector takes what a server answers to
// the greeting and to LOGIN, from a scripted server. A server echoing
// the password in its answer does not get it into the failure.
func TestLoginAnswers(t *testing.T) {
	t.Parallel()
	const greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"
	tests := []struct {
		name          string
		greeting      string
		login         string
		wantCode      string
		wantRetryable bool
		wantMsg       []string
	}{
		{name: "refused, echoing the password", greeting: greeting, login: "NO [AUTHENTICATIONFAILED] no user alice with password " + password,
			wantCode: wire.CodeCredentialRejected, wantMsg: []string{"refused the login", "AUTHENTICATIONFAILED"}},
		{name: "refused without a code", greeting: greeting, login: "NO Login failed",
			wantCode: wire.CodeCredentialRejected, wantMsg: []string{"refused the login", "Login failed"}},
		{name: "unavailable", greeting: greeting, login: "NO [UNAVAILABLE] maintenance",
			wantCode: wire.CodeConnectorFailed, wantRetryable: true, wantMsg: []string{"unavailable", "maintenance"}},
		{name: "privacy required", greeting: greeting, login: "NO [PRIVACYREQUIRED] use TLS",
			wantCode: wire.CodeInvalidConfig, wantMsg: []string{"refuses a login without TLS"}},
		{name: "LOGINDISABLED", greeting: "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n", login: "OK welcome",
			wantCode: wire.CodeInvalidConfig, wantMsg: []string{"LOGINDISABLED"}},
		{name: "BYE greeting", greeting: "* BYE too many connections\r\n",
			wantCode: wire.CodeConnectorFailed, wantRetryable: true, wantMsg: []string{"too many connections"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port, _ := fakeServer(t, imapScript(tt.greeting, tt.login))
			res := runScripted(t, imapconn.New(), port)
			wantFailure(t, res.Failure(), tt.wantCode, tt.wantRetryable, tt.wantMsg...)
		})
	}
}

// runScripted runs c against a scripted server on a loopback port, in
// plaintext, and checks that the password reached neither what the run
// sent nor its log output.
func runScripted(t *testing.T, c *imapconn.Connector, port int) *sdktest.Result {
	t.Helper()
	var logs sdktest.LogBuffer
	res := sdktest.Run(t, c, sdktest.Options{Timeout: time.Minute,
		Config: imapconn.Config{Host: "127.0.0.1", Port: port, InsecurePlaintext: true},
		Env:    map[string]string{imapconn.UsernameEnv: user, imapconn.PasswordEnv: password}, LogOutput: &logs})
	checkResult(t, res)
	if strings.Contains(logs.String(), password) {
		t.Error("the log output holds the password")
	}
	return res
}

// silentServer accepts connections on a loopback port and never says a
// word; accepted is closed once the first connection is in.
func silentServer(t *testing.T) (int, <-chan struct{}) {
	t.Helper()
	return fakeServer(t, func(net.Conn) {})
}

// fakeServer accepts connections on a loopback port and hands each to
// serve in a goroutine of its own; connections still open when the test
// ends are closed. accepted is closed once the first connection is in.
func fakeServer(t *testing.T, serve func(c net.Conn)) (int, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{})
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		var once sync.Once
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(accepted) })
			wg.Go(func() { serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port, accepted
}

// imapScript serves a greeting, then answers each command: LOGIN with
// login (after the tag), anything else with OK. An empty login hangs up
// at LOGIN.
func imapScript(greeting, login string) func(c net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write([]byte(greeting)); err != nil {
			return
		}
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				return
			}
			var answer string
			switch strings.ToUpper(f[1]) {
			case "LOGIN":
				if login == "" {
					c.Close()
					return
				}
				answer = f[0] + " " + login + "\r\n"
			case "LOGOUT":
				answer = "* BYE bye\r\n" + f[0] + " OK done\r\n"
			default:
				answer = f[0] + " OK done\r\n"
			}
			if _, err := c.Write([]byte(answer)); err != nil {
				return
			}
		}
	}
}

// TestUnsolicitedFetchAnswer: a server that answers a UID FETCH with a
// flags-only FETCH for the UID (an unsolicited flag update), before or
// instead of the data asked for, still yields the full record: the
// connector asks again for what came back without its envelope, and
// never writes a record without one.
func TestUnsolicitedFetchAnswer(t *testing.T) {
	t.Parallel()
	const full = `* 1 FETCH (UID 1 FLAGS (\Seen) INTERNALDATE "02-Jan-2026 15:04:05 +0000" RFC822.SIZE 42 ` +
		`ENVELOPE ("Fri, 02 Jan 2026 15:04:05 +0000" "the subject" (("Bob" NIL "bob" "example.org")) NIL NIL ` +
		`((NIL NIL "alice" "example.org")) NIL NIL NIL "<m1@example.org>"))` + "\r\n"
	const flagsOnly = `* 1 FETCH (UID 1 FLAGS (\Seen \Flagged))` + "\r\n"
	tests := map[string]struct {
		fetches []string
		want    int
	}{
		// The first UID FETCH gets only the flag update; the second the data.
		"instead of the data": {[]string{flagsOnly, full}, 1},
		// The flag update comes first, the data after it, in one answer
		// (go-imap v2 beta.8 keeps the first); the second is plain.
		"before the data": {[]string{flagsOnly + full, full}, 1},
		// Never the data: no record rather than an empty one.
		"never the data": {[]string{flagsOnly}, 0},
	}
	for name, tt := range tests {
		fetches := tt.fetches
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			port, _ := fakeServer(t, mailboxScript(fetches))
			res := runScripted(t, imapconn.New(), port)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			got := res.RecordsOf(imapconn.StreamMessages)
			if len(got) != tt.want {
				t.Fatalf("%d message records, want %d", len(got), tt.want)
			}
			for _, r := range got {
				var m imapconn.Message
				if err := json.Unmarshal(r.Data, &m); err != nil {
					t.Fatal(err)
				}
				if r.Key != imapconn.MessageKey("INBOX", 7, 1) || m.Subject != "the subject" || m.MessageID != "m1@example.org" {
					t.Errorf("record %s %s: want INBOX/7/1 with the envelope", r.Key, r.Data)
				}
			}
		})
	}
}

// mailboxScript serves one INBOX of one message (UIDVALIDITY 7, UID 1):
// the n-th UID FETCH is answered with fetches[n] (the last one after
// that), then OK.
func mailboxScript(fetches []string) func(c net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")); err != nil {
			return
		}
		r := bufio.NewReader(c)
		n := 0
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) < 2 {
				return
			}
			tag, cmd := f[0], strings.ToUpper(f[1])
			if cmd == "UID" && len(f) > 2 {
				cmd += " " + strings.ToUpper(f[2])
			}
			var answer string
			switch cmd {
			case "LIST":
				answer = `* LIST (\HasNoChildren) "/" INBOX` + "\r\n"
			case "EXAMINE", "SELECT":
				answer = "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 2] ok\r\n"
			case "UID SEARCH":
				answer = "* SEARCH 1\r\n"
			case "UID FETCH":
				answer = fetches[min(n, len(fetches)-1)]
				n++
			case "LOGOUT":
				answer = "* BYE bye\r\n"
			}
			if _, err := c.Write([]byte(answer + tag + " OK done\r\n")); err != nil {
				return
			}
		}
	}
}
