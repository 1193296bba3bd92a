// Package sdktest is a harness for testing connectors built with package
// sdk.
//
// Run and Check drive a connector in-process, through the same adapter
// Serve uses, with an environment taken only from Options.Env: fast, and
// easy to debug. Build compiles a connector's main package, and RunPlugin,
// CheckPlugin and Describe drive the binary as a real go-plugin subprocess,
// started much as the host starts it (the shared handshake, gRPC only,
// mutual TLS, an environment built from scratch). The TLS is go-plugin's
// AutoMTLS, which Serve falls back to when no host hands it an identity
// (see wire.ServerTLSConfig). Acceptance runs the checks every connector
// should pass against such a binary.
//
// A typical test file:
//
//	func TestRun(t *testing.T) {
//		res := sdktest.Run(t, myconn.New(), sdktest.Options{
//			Config: map[string]any{"org": "acme"},
//			Env:    map[string]string{"MY_TOKEN": "t0ken"},
//		})
//		if res.Err != nil {
//			t.Fatal(res.Err)
//		}
//		// inspect res.RecordsOf("issues"), res.LastCheckpoint(), …
//	}
//
//	func TestAcceptance(t *testing.T) {
//		bin := sdktest.Build(t, ".") // the package holding main
//		sdktest.Acceptance(t, bin, sdktest.Options{Env: map[string]string{"MY_TOKEN": "t0ken"}})
//	}
package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults for the fields of Options left empty.
const (
	DefaultRunID        = "run-sdktest"
	DefaultConnectionID = "conn-sdktest"
	DefaultTrigger      = wire.TriggerManual
	DefaultTimeout      = 2 * time.Minute
)

// Run metadata variables the host sets in every child's environment;
// sdktest sets them too.
const (
	EnvConnectionID = "CONNHOST_CONNECTION_ID"
	EnvRunID        = "CONNHOST_RUN_ID"
	EnvTrigger      = "CONNHOST_TRIGGER"
)

// Options describe one run or check.
type Options struct {
	// Config is the connection config: marshalled to JSON, except a
	// json.RawMessage or []byte, which pass through. Nil means {}.
	Config any
	// Checkpoint is the last committed state the run resumes from.
	Checkpoint []byte
	// Env is the connector's whole environment: credentials and
	// passthrough values. The test process's environment is never used
	// (a subprocess also gets PATH, HOME and TMPDIR). An entry with an
	// empty value is set, empty, as the host would set it.
	Env map[string]string
	// RunID, ConnectionID and Trigger default to DefaultRunID,
	// DefaultConnectionID and DefaultTrigger. They also appear in the
	// environment as CONNHOST_RUN_ID, CONNHOST_CONNECTION_ID and
	// CONNHOST_TRIGGER unless Env sets those.
	RunID, ConnectionID, Trigger string
	// Timeout bounds the run; zero means DefaultTimeout. The run is also
	// cancelled when the test ends.
	Timeout time.Duration
	// LogOutput receives the connector's log lines (and, for a
	// subprocess, go-plugin's). Nil means the test's output, or io.Discard
	// for RunContext.
	LogOutput io.Writer
}

// Result is what a run sent and how it ended.
type Result struct {
	// Records in the order they were sent.
	Records []wire.Record
	// Checkpoints, in order.
	Checkpoints [][]byte
	Progress    []wire.Progress
	// Interactions, such as credentials_required.
	Interactions []wire.Interaction
	// Messages is every message in order, for tests of interleaving (a
	// checkpoint covers the records sent before it).
	Messages []wire.Message
	// Err is nil on success; a *wire.Failure for a typed failure;
	// context.Canceled or context.DeadlineExceeded when the run was cut
	// short; anything else (say, a plugin that crashed) as it came.
	Err error
}

// RecordsOf returns the records of one stream, in order.
func (r *Result) RecordsOf(stream string) []wire.Record {
	var out []wire.Record
	for _, rec := range r.Records {
		if rec.Stream == stream {
			out = append(out, rec)
		}
	}
	return out
}

// LastCheckpoint returns the last checkpoint state, or nil if none was
// sent: what the host would hand the next run.
func (r *Result) LastCheckpoint() []byte {
	if len(r.Checkpoints) == 0 {
		return nil
	}
	return r.Checkpoints[len(r.Checkpoints)-1]
}

// Sent returns, as one text, everything the run sent the host that an
// operator or a store could see: record keys and data, checkpoints,
// progress and interaction messages, and the failure. A test checks a
// secret against it (strings.Contains) to prove the connector leaked it
// nowhere in its output.
func (r *Result) Sent() string {
	var b strings.Builder
	for _, rec := range r.Records {
		b.WriteString(rec.Stream)
		b.WriteString(rec.Key)
		b.Write(rec.Data)
		b.WriteByte('\n')
	}
	for _, c := range r.Checkpoints {
		b.Write(c)
		b.WriteByte('\n')
	}
	for _, p := range r.Progress {
		b.WriteString(p.Message)
		b.WriteByte('\n')
	}
	for _, i := range r.Interactions {
		b.WriteString(i.Kind)
		b.WriteString(strings.Join(i.Missing, ","))
		b.WriteByte('\n')
	}
	if r.Err != nil {
		b.WriteString(r.Err.Error())
	}
	return b.String()
}

// Failure returns Err as a *wire.Failure, or nil when Err is not one.
func (r *Result) Failure() *wire.Failure {
	var f *wire.Failure
	if errors.As(r.Err, &f) {
		return f
	}
	return nil
}

func (r *Result) collect(m wire.Message) error {
	r.Messages = append(r.Messages, m)
	switch m.Kind {
	case wire.KindRecords:
		r.Records = append(r.Records, m.Records...)
	case wire.KindCheckpoint:
		r.Checkpoints = append(r.Checkpoints, m.Checkpoint)
	case wire.KindProgress:
		r.Progress = append(r.Progress, m.Progress)
	case wire.KindInteraction:
		r.Interactions = append(r.Interactions, m.Interaction)
	default:
		return fmt.Errorf("sdktest: unexpected message kind %v", m.Kind)
	}
	return nil
}

// Run runs c in-process, through sdk.AdaptWith (the code path sdk.Serve
// uses) and returns what it sent. The manifest must pass
// manifest.Validate, as Serve requires. Log lines go to the test's output.
func Run(t testing.TB, c sdk.Connector, o Options) *Result {
	t.Helper()
	if o.LogOutput == nil {
		o.LogOutput = t.Output()
	}
	res, err := RunContext(t.Context(), c, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// RunContext is Run outside a test: it runs c in-process until it returns
// or ctx ends. Its error reports a connector or options sdk.Serve would
// refuse; how the run itself ended is Result.Err.
func RunContext(ctx context.Context, c sdk.Connector, o Options) (*Result, error) {
	conn, err := adapt(c, o)
	if err != nil {
		return nil, err
	}
	req, err := o.runRequest()
	if err != nil {
		return nil, err
	}
	ctx, cancel := o.context(ctx)
	defer cancel()
	res := &Result{}
	res.Err = normalize(ctx, conn.Run(ctx, req, res.collect))
	return res, nil
}

// Check runs c's check in-process, like Run. The error is the check's
// own (a cancellation), not a failed check: that is CheckResult.Failure.
func Check(t testing.TB, c sdk.Connector, o Options) (wire.CheckResult, error) {
	t.Helper()
	if o.LogOutput == nil {
		o.LogOutput = t.Output()
	}
	conn, err := adapt(c, o)
	if err != nil {
		t.Fatal(err)
	}
	req, err := o.checkRequest()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := o.context(t.Context())
	defer cancel()
	res, err := conn.Check(ctx, req)
	return res, normalize(ctx, err)
}

// adapt validates c's manifest as Serve does and adapts c with o's
// environment.
func adapt(c sdk.Connector, o Options) (wire.Connector, error) {
	m := c.Manifest()
	if err := m.Validate(manifest.CheckSchedule); err != nil {
		return nil, fmt.Errorf("sdktest: sdk.Serve would refuse this connector: %w", err)
	}
	env := o.env()
	out := o.LogOutput
	if out == nil {
		out = io.Discard
	}
	return sdk.AdaptWith(c, sdk.AdaptOptions{
		LookupEnv: func(name string) (string, bool) {
			v, ok := env[name]
			return v, ok
		},
		LogOutput: out,
	}), nil
}

func (o Options) withDefaults() Options {
	if o.RunID == "" {
		o.RunID = DefaultRunID
	}
	if o.ConnectionID == "" {
		o.ConnectionID = DefaultConnectionID
	}
	if o.Trigger == "" {
		o.Trigger = DefaultTrigger
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// env is the connector's environment: run metadata, then Options.Env.
func (o Options) env() map[string]string {
	o = o.withDefaults()
	env := map[string]string{
		EnvConnectionID: o.ConnectionID,
		EnvRunID:        o.RunID,
		EnvTrigger:      o.Trigger,
	}
	for k, v := range o.Env {
		env[k] = v
	}
	return env
}

func (o Options) config() (json.RawMessage, error) {
	switch c := o.Config.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		return c, nil
	case []byte:
		return c, nil
	}
	b, err := json.Marshal(o.Config)
	if err != nil {
		return nil, fmt.Errorf("sdktest: marshal Options.Config: %w", err)
	}
	return b, nil
}

func (o Options) runRequest() (wire.RunRequest, error) {
	cfg, err := o.config()
	if err != nil {
		return wire.RunRequest{}, err
	}
	d := o.withDefaults()
	return wire.RunRequest{
		RunID:        d.RunID,
		ConnectionID: d.ConnectionID,
		Trigger:      d.Trigger,
		Config:       cfg,
		Checkpoint:   o.Checkpoint,
	}, nil
}

func (o Options) checkRequest() (wire.CheckRequest, error) {
	cfg, err := o.config()
	if err != nil {
		return wire.CheckRequest{}, err
	}
	return wire.CheckRequest{ConnectionID: o.withDefaults().ConnectionID, Config: cfg}, nil
}

// context bounds a run by Options.Timeout and by parent (for Run, the
// test's life).
func (o Options) context(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, o.withDefaults().Timeout)
}

// normalize maps the gRPC form of a cancellation onto the context's error,
// so in-process and subprocess results compare alike.
func normalize(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return cerr
		}
		if c := status.Code(err); c == codes.Canceled || c == codes.DeadlineExceeded {
			return cerr
		}
	}
	return err
}

// sortedEnv renders env as KEY=VALUE entries in a stable order.
func sortedEnv(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// hostEnv is what a subprocess gets from the test process: enough to run a
// Go binary, never a credential.
func hostEnv() map[string]string {
	env := map[string]string{}
	for _, n := range []string{"PATH", "HOME", "TMPDIR"} {
		if v := os.Getenv(n); v != "" {
			env[n] = v
		}
	}
	return env
}
