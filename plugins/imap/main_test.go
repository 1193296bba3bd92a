package main

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/plugins/imap/dovecottest"
	"github.com/connhost/connhost/plugins/imap/imapconn"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/emersion/go-imap/v2"
	"github.com/google/go-cmp/cmp"
)

// The passwords are canaries: they must reach Dovecot in LOGIN and appear
// nowhere in what the plugin sends or logs.
const (
	user          = "alice"
	password      = "pw-CANARY-plugin-91d4e2"
	wrongPassword = "pw-CANARY-plugin-wrong-0a7c3b"
)

// seeded starts Dovecot with three messages in INBOX (one of them with
// an attachment) and one in Archive, and returns it with the config of
// an implicit TLS connection trusting its CA.
func seeded(t *testing.T) (*dovecottest.Server, imapconn.Config) {
	t.Helper()
	srv := dovecottest.Start(t, user, password)
	srv.CreateMailbox(t, "Archive")
	date := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for i, m := range []dovecottest.Message{
		{From: []string{"Bob <bob@example.org>"}, To: []string{"alice@example.org"}, Subject: "one", MessageID: "<1@example.org>", Date: date, Text: "first\n"},
		{From: []string{"bob@example.org"}, To: []string{"alice@example.org"}, Subject: "two", MessageID: "<2@example.org>", InReplyTo: "<1@example.org>", Date: date, Text: "second\n", HTML: "<p>second</p>"},
		{From: []string{"bob@example.org"}, To: []string{"alice@example.org"}, Subject: "three", Date: date, Text: "third\n", Attachment: []byte("attached")},
	} {
		var flags []imap.Flag
		if i == 0 {
			flags = []imap.Flag{imap.FlagSeen}
		}
		srv.Append(t, "INBOX", m.Bytes(), flags...)
	}
	srv.Append(t, "Archive", dovecottest.Message{From: []string{"bob@example.org"}, Subject: "old", Date: date, Text: "archived\n"}.Bytes())
	return srv, imapconn.Config{Host: srv.Host, Port: srv.TLSPort, CAFile: srv.CAFile,
		Mailboxes: imapconn.Mailboxes{All: true}, Bodies: imapconn.BodiesText}
}

func env(pw string) map[string]string {
	return map[string]string{imapconn.UsernameEnv: user, imapconn.PasswordEnv: pw}
}

// noCanary fails t if a password appears in the plugin's log output or
// in anything a run sent.
func noCanary(t *testing.T, logs string, res *sdktest.Result) {
	t.Helper()
	sent := logs
	if res != nil {
		sent += res.Sent()
	}
	for _, pw := range []string{password, wrongPassword} {
		if strings.Contains(sent, pw) {
			t.Errorf("a password appears in the plugin's log output, records, checkpoints, progress or failure")
		}
	}
}

// TestPlugin builds the connector once and drives the binary as the host
// does, a go-plugin subprocess.
func TestPlugin(t *testing.T) {
	t.Parallel()
	bin := sdktest.Build(t, ".")

	// Acceptance: Describe, Check, Run, Resume from the run's checkpoint,
	// CredentialsRequired; then what the run collected, and the canary
	// over every line the plugin logged.
	t.Run("Acceptance", func(t *testing.T) {
		t.Parallel()
		srv, cfg := seeded(t)
		var logs sdktest.LogBuffer
		res := sdktest.Acceptance(t, bin, sdktest.Options{Config: cfg, Env: env(password), LogOutput: &logs})
		if res == nil || res.Err != nil {
			t.Fatalf("acceptance run: %+v", res)
		}
		var boxes []string
		for _, r := range res.RecordsOf(imapconn.StreamMailboxes) {
			boxes = append(boxes, r.Key)
		}
		slices.Sort(boxes)
		if diff := cmp.Diff([]string{"Archive", "INBOX"}, boxes); diff != "" {
			t.Errorf("mailbox records (-want +got):\n%s", diff)
		}
		want := map[string]string{} // key -> text
		for i, text := range []string{"first\n", "second\n", "third\n"} {
			want[imapconn.MessageKey("INBOX", srv.UIDValidity(t, "INBOX"), uint32(i+1))] = text
		}
		want[imapconn.MessageKey("Archive", srv.UIDValidity(t, "Archive"), 1)] = "archived\n"
		got := map[string]string{}
		for _, r := range res.RecordsOf(imapconn.StreamMessages) {
			var m imapconn.Message
			if err := json.Unmarshal(r.Data, &m); err != nil {
				t.Fatalf("%s: %v", r.Key, err)
			}
			if m.Text == nil {
				t.Errorf("%s: no text with bodies text", r.Key)
				continue
			}
			got[r.Key] = *m.Text
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("messages and their texts (-want +got):\n%s", diff)
		}
		var st imapconn.State
		if err := json.Unmarshal(res.LastCheckpoint(), &st); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		for name, n := range map[string]uint32{"INBOX": 3, "Archive": 1} {
			if ms := st.Mailboxes[name]; ms == nil || ms.UID != n || ms.UIDValidity != srv.UIDValidity(t, name) {
				t.Errorf("checkpoint %s: %+v, want UID %d", name, ms, n)
			}
		}
		// The canary is only as good as the capture: the plugin's own
		// lines must be in it.
		if !strings.Contains(logs.String(), "plugin.connector: run done") {
			t.Errorf("the log output lacks the plugin's lines:\n%s", logs.String())
		}
		noCanary(t, logs.String(), res)
		for _, pw := range []string{password, wrongPassword} {
			if strings.Contains(srv.Log(), pw) {
				t.Errorf("dovecot.log holds a password")
			}
		}
	})

	// Typed failures cross the plugin boundary intact, in Run and Check.
	t.Run("Failures", func(t *testing.T) {
		t.Parallel()
		srv, cfg := seeded(t)
		addr := net.JoinHostPort(srv.Host, strconv.Itoa(srv.TLSPort))
		untrusted := cfg
		untrusted.CAFile = ""
		missing := cfg
		missing.Mailboxes = imapconn.Mailboxes{Names: []string{"Nope"}}
		tests := []struct {
			name          string
			cfg           imapconn.Config
			pw            string
			wantCode      string
			wantRetryable bool
			wantMsg       string
		}{
			{"credential rejected", cfg, wrongPassword, wire.CodeCredentialRejected, false, addr + " refused the login: NO [AUTHENTICATIONFAILED]"},
			{"untrusted certificate", untrusted, password, wire.CodeConnectorFailed, true, "TLS failure with " + addr},
			{"missing mailbox", missing, password, wire.CodeInvalidConfig, false, `"Nope"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var logs sdktest.LogBuffer
				o := sdktest.Options{Config: tt.cfg, Env: env(tt.pw), LogOutput: &logs}
				res := sdktest.RunPlugin(t, bin, o)
				chk, err := sdktest.CheckPlugin(t, bin, o)
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				for what, f := range map[string]*wire.Failure{"run": res.Failure(), "check": chk.Failure} {
					if f == nil {
						t.Errorf("%s: no failure (run err %v, check %+v)", what, res.Err, chk)
						continue
					}
					if f.Code != tt.wantCode || f.Retryable != tt.wantRetryable || !strings.Contains(f.Message, tt.wantMsg) {
						t.Errorf("%s failure %+v, want code %s, retryable %v, a message holding %q", what, *f, tt.wantCode, tt.wantRetryable, tt.wantMsg)
					}
				}
				if chk.Valid || len(res.RecordsOf(imapconn.StreamMessages)) != 0 {
					t.Errorf("check valid %v, %d messages: want neither", chk.Valid, len(res.RecordsOf(imapconn.StreamMessages)))
				}
				noCanary(t, logs.String()+chk.Identity, res)
				if chk.Failure != nil && strings.Contains(chk.Failure.Message, tt.pw) {
					t.Errorf("the check's failure holds the password")
				}
			})
		}
	})
}
