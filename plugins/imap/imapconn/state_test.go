package imapconn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stateConfig is the normalized config the state tests collect under.
func stateConfig() *Config {
	c := &Config{Host: "imap.example.com", Since: "2025-01-01", Bodies: BodiesText}
	c.Normalize()
	return c
}

func TestStateRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := stateConfig()
	account := AccountID(cfg.Host, "me@example.com")
	tests := []struct {
		name  string
		state *State
	}{
		{"empty", newState(account, cfg)},
		{"mailboxes", &State{V: StateVersion, Account: account, Since: cfg.Since, Bodies: cfg.Bodies,
			Mailboxes: map[string]*MailboxState{
				"INBOX":            {UIDValidity: 1, UID: 42, ModSeq: 1000},
				"[Gmail]/All Mail": {UIDValidity: 4294967295, UID: 4294967295, ModSeq: 1<<63 + 5},
				"Entwürfe":         {UIDValidity: 7},
			}}},
		// "*" reads whatever the server lists, names a config could not
		// hold included: the checkpoint must keep them.
		{"names only a server lists", &State{V: StateVersion, Account: account, Since: cfg.Since, Bodies: cfg.Bodies,
			Mailboxes: map[string]*MailboxState{
				"star*box":  {UIDValidity: 3, UID: 9},
				"50% off":   {UIDValidity: 4, UID: 1},
				"tab\there": {UIDValidity: 5},
			}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := tt.state.encode(1 << 20)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := decodeState(b, account, cfg)
			if err != nil {
				t.Fatalf("decodeState(%s): %v", b, err)
			}
			if diff := cmp.Diff(tt.state, got); diff != "" {
				t.Errorf("decodeState(encode) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAccountID(t *testing.T) {
	t.Parallel()
	a := AccountID("imap.example.com", "me@example.com")
	if len(a) != 16 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Errorf("AccountID = %q, want 16 hex digits", a)
	}
	if strings.Contains(a, "me@") {
		t.Errorf("AccountID %q spells the login out", a)
	}
	for _, other := range []string{
		AccountID("imap.example.com", "you@example.com"),
		AccountID("imap.example.org", "me@example.com"),
		AccountID("imap.example.comme", "@example.com"),
	} {
		if other == a {
			t.Errorf("AccountID collides: %q", a)
		}
	}
	// The same server, however the host is written.
	for _, same := range []string{AccountID("IMAP.Example.com", "me@example.com"), AccountID("imap.example.com.", "me@example.com")} {
		if same != a {
			t.Errorf("AccountID differs for the same host: %q, %q", a, same)
		}
	}
}

func TestDecodeStateRefuses(t *testing.T) {
	t.Parallel()
	cfg := stateConfig()
	account := AccountID(cfg.Host, "me@example.com")
	// valid is a state decodeState accepts; each case breaks one thing.
	valid := func(mailboxes string) string {
		return fmt.Sprintf(`{"v":1,"account":%q,"since":"2025-01-01","bodies":"text","mailboxes":{%s}}`, account, mailboxes)
	}
	if _, err := decodeState([]byte(valid(`"INBOX":{"uidvalidity":1,"uid":2}`)), account, cfg); err != nil {
		t.Fatalf("the valid base state is refused: %v", err)
	}
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"garbage", `not json`, "unreadable"},
		{"empty", ``, "unreadable"},
		{"array", `[1,2]`, "unreadable"},
		{"truncated", valid(`"INBOX":{"uidvalidity":1`), "unreadable"},
		{"uid negative", valid(`"INBOX":{"uidvalidity":1,"uid":-1}`), "unreadable"},
		{"uidvalidity too big", valid(`"INBOX":{"uidvalidity":4294967296}`), "unreadable"},
		{"no version", fmt.Sprintf(`{"account":%q,"since":"2025-01-01","bodies":"text"}`, account), "version 0"},
		{"next version", strings.Replace(valid(``), `"v":1`, `"v":2`, 1), "version 2"},
		{"other account", strings.Replace(valid(``), account, AccountID(cfg.Host, "you@example.com"), 1), "another account"},
		{"other since", strings.Replace(valid(``), `"since":"2025-01-01"`, `"since":"2024-01-01"`, 1), "since"},
		{"since left out", strings.Replace(valid(``), `"since":"2025-01-01",`, ``, 1), "since"},
		{"other bodies", strings.Replace(valid(``), `"bodies":"text"`, `"bodies":"none"`, 1), "bodies"},
		{"null mailbox", valid(`"INBOX":null`), "no state"},
		{"empty mailbox name", valid(`"":{"uidvalidity":1}`), "invalid mailbox name"},
		{"empty mailbox name", valid(`"":{"uidvalidity":1}`), "invalid mailbox name"},
		{"name too long", valid(fmt.Sprintf(`%q:{"uidvalidity":1}`, strings.Repeat("x", maxStateName+1))), "invalid mailbox name"},
		{"uidvalidity zero", valid(`"INBOX":{"uidvalidity":0,"uid":5}`), "UIDVALIDITY 0"},
		{"uidvalidity missing", valid(`"INBOX":{"uid":5}`), "UIDVALIDITY 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeState([]byte(tt.in), account, cfg)
			if err == nil {
				t.Fatalf("decodeState(%s) = %+v, want an error", tt.in, got)
			}
			if got != nil {
				t.Errorf("decodeState(%s) returned a state with its error", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeState(%s) = %q, want it to contain %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestDecodeStateNullMailboxes(t *testing.T) {
	t.Parallel()
	cfg := stateConfig()
	account := AccountID(cfg.Host, "me@example.com")
	for _, in := range []string{
		fmt.Sprintf(`{"v":1,"account":%q,"since":"2025-01-01","bodies":"text"}`, account),
		fmt.Sprintf(`{"v":1,"account":%q,"since":"2025-01-01","bodies":"text","mailboxes":null}`, account),
	} {
		s, err := decodeState([]byte(in), account, cfg)
		if err != nil {
			t.Fatalf("decodeState(%s): %v", in, err)
		}
		if s.Mailboxes == nil {
			t.Errorf("decodeState(%s): Mailboxes is nil; a run writes into it", in)
		}
	}
}

func TestStateEncodeTooLarge(t *testing.T) {
	t.Parallel()
	cfg := stateConfig()
	s := newState(AccountID(cfg.Host, "me"), cfg)
	for i := range 100 {
		s.Mailboxes[fmt.Sprintf("Lists/list-%03d", i)] = &MailboxState{UIDValidity: 1, UID: uint32(i)}
	}
	full, err := s.encode(1 << 20)
	if err != nil {
		t.Fatalf("encode under the limit: %v", err)
	}
	if b, err := s.encode(len(full)); err != nil || string(b) != string(full) {
		t.Errorf("encode(exactly its size) = %d bytes, %v; want it whole", len(b), err)
	}
	b, err := s.encode(len(full) - 1)
	if !errors.Is(err, ErrStateTooLarge) {
		t.Fatalf("encode(one byte short) = %v, want ErrStateTooLarge", err)
	}
	if b != nil {
		t.Errorf("encode over the limit returned %d bytes", len(b))
	}
	if !strings.Contains(err.Error(), "100 mailboxes") {
		t.Errorf("error %q does not say how many mailboxes", err)
	}
}
