package imapconn

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxStateName bounds a mailbox name in a checkpoint.
const maxStateName = 4096

// StateVersion is the version of the checkpoint format. A checkpoint of
// another version is discarded, and the run starts over.
const StateVersion = 1

// State is the connector's checkpoint: where each mailbox stands, so the
// next run asks only for what is new or changed. The host stores it
// opaquely; it is exported to document the format.
//
// A checkpoint of another account, or taken under another since or bodies
// setting, is discarded: its UIDs would hide messages the new settings
// want.
type State struct {
	// V is StateVersion.
	V int `json:"v"`
	// Account identifies the server and login the state was collected
	// from (AccountID). It is a digest so the checkpoint, which operators
	// can read, does not spell the login out. A run whose account differs
	// refuses to go on (ErrOtherAccount): the other account's messages
	// would overwrite this one's records under the same keys.
	Account string `json:"account"`
	// Since and Bodies are the config values the state was collected
	// under.
	Since  string `json:"since,omitempty"`
	Bodies string `json:"bodies"`
	// Mailboxes is where each mailbox stands, by name.
	Mailboxes map[string]*MailboxState `json:"mailboxes"`
}

// MailboxState is where one mailbox stands.
type MailboxState struct {
	// UIDValidity is the mailbox's UIDVALIDITY the UIDs belong to. When
	// the server reports another, the UIDs are void and the mailbox is
	// read again from the start.
	UIDValidity uint32 `json:"uidvalidity"`
	// UID is the highest UID collected (or passed over as before Since):
	// the next run asks for UIDs above it.
	UID uint32 `json:"uid"`
	// ModSeq is the mailbox's HIGHESTMODSEQ when its flags were last
	// brought up to date (CONDSTORE servers only; zero otherwise): the
	// next run asks for the messages up to UID changed since.
	ModSeq uint64 `json:"modseq,omitempty"`
	// FlagsTo and FlagsUID are a flag pass not finished (the run's
	// max_messages_per_run ran out, or the run failed): the HIGHESTMODSEQ
	// it brings the flags up to once done, and the highest UID whose
	// change it has written. The next run goes on above FlagsUID.
	FlagsTo  uint64 `json:"flags_to,omitempty"`
	FlagsUID uint32 `json:"flags_uid,omitempty"`
}

// AccountID returns State.Account: the first 16 hex digits of SHA-256
// over the host (lower case, no trailing dot), a NUL and the username.
// The port is left out: the same server on another port holds the same
// mail.
func AccountID(host, username string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSuffix(host, ".")) + "\x00" + username))
	return hex.EncodeToString(h[:8])
}

// newState returns the empty state of a first run.
func newState(account string, cfg *Config) *State {
	return &State{V: StateVersion, Account: account, Since: cfg.Since, Bodies: cfg.Bodies, Mailboxes: map[string]*MailboxState{}}
}

// decodeState parses a checkpoint and checks it can steer a run for
// account under cfg. The checkpoint is the connector's own output, but it
// comes back through the host: a corrupt one must not steer requests.
func decodeState(b []byte, account string, cfg *Config) (*State, error) {
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("unreadable: %w", err)
	}
	switch {
	case s.V != StateVersion:
		return nil, fmt.Errorf("version %d, not %d", s.V, StateVersion)
	case s.Account != account:
		return nil, ErrOtherAccount
	case s.Since != cfg.Since:
		return nil, fmt.Errorf("collected with since %q, now %q", s.Since, cfg.Since)
	case s.Bodies != cfg.Bodies:
		return nil, fmt.Errorf("collected with bodies %q, now %q", s.Bodies, cfg.Bodies)
	}
	for name, m := range s.Mailboxes {
		switch {
		case m == nil:
			return nil, fmt.Errorf("mailbox %q: no state", name)
		case name == "" || len(name) > maxStateName || !utf8.ValidString(name):
			// Any name the server lists may be here ("*" reads them all,
			// wildcards included), so only what no server sends is refused.
			return nil, fmt.Errorf("invalid mailbox name %q", name)
		case m.UIDValidity == 0:
			return nil, fmt.Errorf("mailbox %q: UIDVALIDITY 0", name)
		case m.FlagsUID > m.UID || m.FlagsTo != 0 && m.FlagsTo <= m.ModSeq:
			return nil, fmt.Errorf("mailbox %q: an unfinished flag pass past its position", name)
		}
	}
	if s.Mailboxes == nil {
		s.Mailboxes = map[string]*MailboxState{}
	}
	return &s, nil
}

// encode returns s as JSON of at most max bytes. A mailbox takes about 80
// bytes, so the SDK's 1 MiB holds some 12,000 mailboxes; past that the
// run fails rather than drop a mailbox's position, which would read it
// again every run.
func (s *State) encode(max int) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil || len(b) <= max {
		return b, err
	}
	return nil, fmt.Errorf("%w: %d bytes for %d mailboxes, limit %d; name fewer mailboxes in \"mailboxes\"", ErrStateTooLarge, len(b), len(s.Mailboxes), max)
}
