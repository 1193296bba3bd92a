// Package demo is the demo connector: an offline connector for
// quickstarts, tests and benchmarks. The plugin binary is plugins/demo,
// whose main calls sdk.Serve(demo.New()); tests and benchmarks use the
// connector in-process through package sdktest.
//
// # Behaviour
//
// Manifest: key "demo", version 1.0.0, auth static_secret requiring
// DEMO_TOKEN, env_passthrough DEMO_LABEL, streams "events" (keyed by "id")
// and "env" (keyed by "name"), default schedule "@every 1m" with
// auto-enrolment.
//
// A run emits the records ids 0 to records-1 on stream "events" with key
// the decimal id and data
//
//	{"id":7,"seq":7,"connection_id":"…","label":"…","payload":"…"}
//
// (label only when DEMO_LABEL is set, payload only with payload_bytes). It
// checkpoints {"next":N} after every 1,000th id and at the end, reports
// progress at each checkpoint, and resumes from "next": a second run with
// the first run's last checkpoint emits nothing when records is
// unchanged, and raising records emits only the new ids.
//
// # Config
//
//   - records: number of events, default 100, at most 100,000,000.
//   - token_sha256: hex SHA-256 of the only DEMO_TOKEN accepted. Any other
//     token fails Run and Check with credential_rejected "token rejected"
//     (sdk.CredentialRejected, not retryable), as a provider refusing a bad
//     token would: the host marks the credential invalid and holds the
//     connection's schedule until a new credential is captured. Unset,
//     any non-empty token is accepted. (An absent or empty DEMO_TOKEN never
//     reaches the demo: the SDK fails with credentials_required.)
//   - payload_bytes: pad each event with a payload of this many bytes.
//
// Test knobs, for the host's tests:
//
//   - record_delay_ms: D — sleep D ms after each record, returning at once
//     on cancellation, and report progress after each record (so the host
//     sees records live). For slow and overlapping-run tests.
//   - fail_at: K — after this run has emitted K events, before the next
//     checkpoint, fail with a RETRYABLE connector_failed "injected
//     failure". K counts this run's events, so a retry that resumes from a
//     checkpoint and has fewer than K events left succeeds.
//   - crash_at: K — after this run has emitted K events, flush them, wait
//     CrashGrace for the transport to write them, and exit with status 3
//     (CrashExitCode): a crash between records and their checkpoint.
//   - fail_triggers: ["scheduled", …] — apply fail_at and crash_at only to
//     runs with these triggers (default: all), e.g. a scheduled run fails
//     and its retry succeeds.
//   - echo_env: ["NAME", …] — before the events, emit one record per name
//     on stream "env", keyed by name: {"name":…, "present":bool,
//     "sha256":hex of the value, "" when unset}. Never the value: host
//     tests compare hashes to prove which credential value the child
//     received without the secret reaching records.
//   - helpers: N — start N `/bin/sleep` processes, every other one in a
//     session of its own (setsid), and leave them running: the host must
//     kill them when the run ends, however it ends (plugin containment).
//
// Check decodes the config and compares the token like Run; it reports
// identity "demo".
package demo

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
)

// Manifest values.
const (
	Key          = "demo"
	Version      = "1.0.0"
	TokenEnv     = "DEMO_TOKEN"
	LabelEnv     = "DEMO_LABEL"
	StreamEvents = "events"
	StreamEnv    = "env"
	Identity     = "demo"
)

// Run behaviour.
const (
	// CheckpointEvery is the id interval between checkpoints.
	CheckpointEvery = 1000
	// CrashExitCode is the exit status crash_at uses.
	CrashExitCode = 3
	// CrashGrace is how long crash_at waits after flushing before it
	// exits. gRPC hands a sent message to a writer goroutine; without the
	// wait the last batch could die with the process, and tests of a crash
	// after records could not tell what the host received.
	CrashGrace = 200 * time.Millisecond
)

// Failure messages.
const (
	MsgTokenRejected   = "token rejected"
	MsgInjectedFailure = "injected failure"
)

// State is the demo's checkpoint.
type State struct {
	// Next is the id the next run starts at.
	Next int64 `json:"next"`
}

// EnvRecord is the data of a record on stream "env".
type EnvRecord struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
	SHA256  string `json:"sha256"`
}

// Connector is the demo connector.
type Connector struct {
	// Exit ends the process for crash_at; nil means os.Exit. A test
	// running the demo in-process replaces it; if it returns, the run
	// fails with ErrExitReturned.
	Exit func(code int)
}

// ErrExitReturned is returned by a crash_at run whose Exit returned.
var ErrExitReturned = errors.New("demo: crash_at: exit returned")

// New returns the demo connector.
func New() *Connector { return &Connector{} }

// Manifest describes the demo connector.
func (c *Connector) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: Key,
		Version:      Version,
		DisplayName:  "Demo",
		Description:  "Offline demo connector: emits numbered events, for quickstarts, tests and benchmarks.",
		Auth: manifest.Auth{
			Kind:     manifest.AuthStaticSecret,
			Required: []string{TokenEnv},
		},
		EnvPassthrough: []string{LabelEnv},
		Streams: []manifest.Stream{
			{Name: StreamEvents, KeyFields: []string{"id"}},
			{Name: StreamEnv, KeyFields: []string{"name"}},
		},
		DefaultSchedule: manifest.Schedule{Spec: "@every 1m", AutoEnroll: true},
		ConfigSchema:    ConfigSchema,
	}
}

// Check validates the config and, with token_sha256 set, the token.
func (c *Connector) Check(_ context.Context, ch *sdk.Check) (string, error) {
	var cfg Config
	if err := loadConfig(ch.Config, &cfg); err != nil {
		return "", err
	}
	if err := checkToken(&cfg, ch.Credential(TokenEnv)); err != nil {
		return "", err
	}
	return Identity, nil
}

// Run emits the events after the last checkpoint.
func (c *Connector) Run(ctx context.Context, r *sdk.Run) error {
	var cfg Config
	if err := loadConfig(r.Config, &cfg); err != nil {
		return err
	}
	if err := checkToken(&cfg, r.Credential(TokenEnv)); err != nil {
		return err
	}
	var st State
	if _, err := r.DecodeState(&st); err != nil {
		return err
	}
	if st.Next < 0 {
		return sdk.Fail(wire.CodeConnectorFailed, "checkpoint next is negative")
	}
	if err := echoEnv(r, cfg.EchoEnv); err != nil {
		return err
	}
	if err := startHelpers(cfg.Helpers); err != nil {
		return err
	}
	total := cfg.records()
	log := r.Logger()
	log.Info("demo run", "trigger", r.Trigger(), "from", st.Next, "records", total)

	faults := cfg.faultsApply(r.Trigger())
	var emitted int64
	// fault fires the fail_at and crash_at knobs once emitted reaches them.
	fault := func() error {
		if !faults {
			return nil
		}
		if cfg.CrashAt != nil && emitted == *cfg.CrashAt {
			if err := r.Flush(); err != nil {
				return err
			}
			log.Warn("crash_at: exiting", "emitted", emitted, "code", CrashExitCode)
			time.Sleep(CrashGrace)
			c.exit(CrashExitCode)
			return ErrExitReturned
		}
		if cfg.FailAt != nil && emitted == *cfg.FailAt {
			return sdk.Retryable(errors.New(MsgInjectedFailure))
		}
		return nil
	}
	if err := fault(); err != nil {
		return err
	}
	if st.Next > total {
		// records was lowered below the checkpoint: nothing to emit, and
		// progress never reads done > total ("events 60/20").
		msg := fmt.Sprintf("checkpoint at %d is past records=%d: nothing to emit (connhost connection reset-state starts over)", st.Next, total)
		log.Info("demo run: checkpoint past records", "next", st.Next, "records", total)
		return r.Progress(StreamEvents, total, total, msg)
	}
	if err := r.Progress(StreamEvents, st.Next, total, ""); err != nil {
		return err
	}

	ev := newEventEncoder(r.ConnectionID(), label(r), cfg.PayloadBytes)
	delay := time.Duration(cfg.RecordDelayMS) * time.Millisecond
	committed := st.Next
	next := st.Next
	for ; next < total; next++ {
		if err := r.Emit(StreamEvents, strconv.FormatInt(next, 10), ev.encode(next)); err != nil {
			return err
		}
		emitted++
		if delay > 0 {
			if err := sleep(ctx, delay); err != nil {
				return err
			}
			if err := r.Progress(StreamEvents, next+1, total, ""); err != nil {
				return err
			}
		}
		if err := fault(); err != nil {
			return err
		}
		if (next+1)%CheckpointEvery == 0 {
			if err := r.Checkpoint(State{Next: next + 1}); err != nil {
				return err
			}
			committed = next + 1
			if err := r.Progress(StreamEvents, next+1, total, ""); err != nil {
				return err
			}
		}
	}
	if next != committed {
		if err := r.Checkpoint(State{Next: next}); err != nil {
			return err
		}
	}
	log.Info("demo run done", "emitted", emitted, "next", next)
	return r.Progress(StreamEvents, next, total, "done")
}

func (c *Connector) exit(code int) {
	if c.Exit != nil {
		c.Exit(code)
		return
	}
	os.Exit(code)
}

// loadConfig decodes and validates the config.
func loadConfig(decode func(any) error, cfg *Config) error {
	if err := decode(cfg); err != nil {
		return err
	}
	return cfg.Validate()
}

// checkToken compares the token's hash with token_sha256, if set.
func checkToken(cfg *Config, token string) error {
	if cfg.TokenSHA256 == "" {
		return nil
	}
	want, err := hex.DecodeString(cfg.TokenSHA256)
	if err != nil {
		return err // Validate has already refused this
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return sdk.CredentialRejected(MsgTokenRejected)
	}
	return nil
}

// echoEnv emits one record per name on stream "env".
func echoEnv(r *sdk.Run, names []string) error {
	for _, n := range names {
		v, ok := r.LookupEnv(n)
		rec := EnvRecord{Name: n, Present: ok}
		if ok {
			rec.SHA256 = HashHex(v)
		}
		if err := r.Emit(StreamEnv, n, rec); err != nil {
			return err
		}
	}
	return nil
}

// HashHex returns the hex SHA-256 of s, as echo_env and token_sha256 use.
func HashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func label(r *sdk.Run) string {
	v, _ := r.LookupEnv(LabelEnv)
	return v
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// eventEncoder builds event JSON without reflection: the demo is also the
// host's benchmark load, so its own cost should stay small.
type eventEncoder struct {
	tail []byte // everything after "seq", from the comma on
	buf  []byte
}

func newEventEncoder(connectionID, label string, payload int) *eventEncoder {
	var tail strings.Builder
	tail.WriteString(`,"connection_id":`)
	tail.Write(quote(connectionID))
	if label != "" {
		tail.WriteString(`,"label":`)
		tail.Write(quote(label))
	}
	if payload > 0 {
		tail.WriteString(`,"payload":"`)
		tail.WriteString(strings.Repeat("x", payload))
		tail.WriteString(`"`)
	}
	tail.WriteString("}")
	return &eventEncoder{tail: []byte(tail.String())}
}

// encode returns the event with the id. The SDK copies a json.RawMessage,
// so the buffer is reused.
func (e *eventEncoder) encode(id int64) json.RawMessage {
	b := append(e.buf[:0], `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, e.tail...)
	e.buf = b
	return b
}

func quote(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

var _ sdk.ConnectorWithCheck = (*Connector)(nil)
