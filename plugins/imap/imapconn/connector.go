package imapconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/emersion/go-imap/v2"
)

// Manifest values.
const (
	Key     = "imap"
	Version = "1.0.0"
	// UsernameEnv and PasswordEnv are the credential: one credential of
	// two values, the login (usually the mail address) and its password
	// (an app password for Gmail, Fastmail and iCloud).
	UsernameEnv = "IMAP_USERNAME"
	PasswordEnv = "IMAP_PASSWORD"
	// DefaultSchedule runs a connection every hour.
	DefaultSchedule = "17 * * * *"
)

// Streams.
const (
	// StreamMailboxes holds the mailboxes read, keyed by name.
	StreamMailboxes = "mailboxes"
	// StreamMessages holds messages, keyed by MessageKey.
	StreamMessages = "messages"
)

// Defaults of the Connector's tunables.
const (
	// DefaultDialTimeout bounds each step of connecting: the TCP
	// connection, the TLS handshake, and each answer until the login is
	// done. It is well under the 30 seconds a host gives a credential
	// check, so a silent server fails the check typed.
	DefaultDialTimeout = 15 * time.Second
	// DefaultIdleTimeout bounds the server's silence while a command
	// waits for its answer.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultFetchBatch is how many messages one UID FETCH asks for; a
	// checkpoint follows each batch.
	DefaultFetchBatch = 200
)

// The failure codes the connector returns.
const (
	codeConnectorFailed    = wire.CodeConnectorFailed
	codeCredentialRejected = wire.CodeCredentialRejected
	codeInvalidConfig      = wire.CodeInvalidConfig
)

// Connector is the IMAP connector. The zero value, and New, use the
// defaults; the fields exist for tests and for embedding the connector in
// another program.
type Connector struct {
	// DialTimeout bounds each step of connecting and logging in. Zero
	// means DefaultDialTimeout.
	DialTimeout time.Duration
	// IdleTimeout bounds the server's silence during a command. Zero
	// means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// FetchBatch is the messages per UID FETCH, 1 to 10,000. Zero means
	// DefaultFetchBatch.
	FetchBatch int
}

// New returns the IMAP connector with the default settings.
func New() *Connector { return &Connector{} }

// Validate reports the first rule c's settings break.
func (c *Connector) Validate() error {
	switch {
	case c.DialTimeout < 0:
		return fmt.Errorf("%w: DialTimeout is negative", ErrInvalidConnector)
	case c.IdleTimeout < 0:
		return fmt.Errorf("%w: IdleTimeout is negative", ErrInvalidConnector)
	case c.FetchBatch < 0 || c.FetchBatch > 10_000:
		return fmt.Errorf("%w: FetchBatch %d is outside [0, 10000]", ErrInvalidConnector, c.FetchBatch)
	}
	return nil
}

func (c *Connector) dialTimeout() time.Duration { return orDefault(c.DialTimeout, DefaultDialTimeout) }
func (c *Connector) idleTimeout() time.Duration { return orDefault(c.IdleTimeout, DefaultIdleTimeout) }
func (c *Connector) fetchBatch() int            { return orDefault(c.FetchBatch, DefaultFetchBatch) }

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Manifest describes the IMAP connector.
func (c *Connector) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: Key,
		Version:      Version,
		DisplayName:  "IMAP mail",
		Description:  "Mailboxes and messages (envelope, flags, size, optionally the text) of an IMAP account: Gmail, Fastmail, iCloud, Dovecot, Cyrus. Logs in with an address and an app password.",
		Auth: manifest.Auth{
			Kind:     manifest.AuthStaticSecret,
			Required: []string{UsernameEnv, PasswordEnv},
		},
		Streams: []manifest.Stream{
			{Name: StreamMailboxes, KeyFields: []string{"name"}},
			{Name: StreamMessages, KeyFields: []string{"mailbox", "uidvalidity", "uid"}},
		},
		DefaultSchedule: manifest.Schedule{Spec: DefaultSchedule, AutoEnroll: true},
		ConfigSchema:    ConfigSchema,
	}
}

// Check logs in, checks that every mailbox the config names exists, and
// selects the first (INBOX for "*"), read-only. The identity is the masked login and the server
// (Identity).
func (c *Connector) Check(ctx context.Context, ch *sdk.Check) (string, error) {
	cfg, err := c.load(ch.Config)
	if err != nil {
		return "", err
	}
	user := ch.Credential(UsernameEnv)
	s, err := c.dial(ctx, cfg, user, ch.Credential(PasswordEnv))
	if err != nil {
		return "", err
	}
	defer s.close()
	// The host gives a check 30 s: a server that stops answering after
	// the login fails it typed, within the dial timeout, not the idle one.
	s.conn.setIdle(c.dialTimeout())
	// Every mailbox the config names must exist, as Run will need them.
	y := &syncer{c: c, s: s, cfg: cfg}
	if _, err := y.mailboxes(ctx); err != nil {
		return "", err
	}
	name := DefaultMailbox
	if !cfg.Mailboxes.All {
		name = cfg.Mailboxes.Names[0]
	}
	if _, err := s.selectMailbox(ctx, name, false); err != nil {
		return "", err
	}
	return Identity(user, cfg.Host), nil
}

// Identity is what Check reports the credential belongs to: the login with
// its local part masked, and the server, as "a…e@example.org on
// imap.example.org". The host treats both credential values as secrets and
// redacts them wherever they appear, the check's identity included; the
// masked form still tells an operator which account a credential opens.
func Identity(username, host string) string {
	mask := func(s string) string {
		r := []rune(s)
		if len(r) <= 2 {
			return "…"
		}
		return string(r[0]) + "…" + string(r[len(r)-1])
	}
	if at := strings.LastIndexByte(username, '@'); at > 0 {
		return mask(username[:at]) + username[at:] + " on " + host
	}
	return mask(username) + " on " + host
}

// Run collects the mailboxes the config names: each one's record, the
// flag changes of the messages collected before (CONDSTORE servers), then
// its new messages in batches, checkpointing after each batch.
func (c *Connector) Run(ctx context.Context, r *sdk.Run) error {
	cfg, err := c.load(r.Config)
	if err != nil {
		return err
	}
	user := r.Credential(UsernameEnv)
	account := AccountID(cfg.Host, user)
	st := newState(account, cfg)
	if b := r.State(); b != nil {
		old, err := decodeState(b, account, cfg)
		switch {
		case errors.Is(err, ErrOtherAccount):
			// Message keys hold no account: going on would overwrite the
			// other account's records with this one's messages.
			return &sdk.Error{Code: codeInvalidConfig, Err: err, Message: "the connection's checkpoint and records were " +
				"collected from another server or login than its config and credential name now, and this account's " +
				"messages would overwrite them under the same keys: create a new connection for this account, or clear " +
				"the checkpoint (connhost connection reset-state ID) to collect it here from the start"}
		case err != nil:
			r.Logger().Warn("checkpoint not usable; reading every mailbox from the start", "reason", err.Error())
		default:
			st = old
		}
	}
	s, err := c.dial(ctx, cfg, user, r.Credential(PasswordEnv))
	if err != nil {
		return err
	}
	defer s.close()
	y := &syncer{c: c, r: r, s: s, cfg: cfg, st: st, log: r.Logger(), budget: cfg.MaxMessagesPerRun,
		condstore: s.capabilities().Has(imap.CapCondStore)}
	return y.run(ctx)
}

// load decodes, validates and normalizes the connection config.
func (c *Connector) load(decode func(any) error) (*Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var cfg Config
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Normalize()
	return &cfg, nil
}

var _ sdk.ConnectorWithCheck = (*Connector)(nil)
