package sdk

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// Connector is what a connector author implements.
type Connector interface {
	// Manifest describes the connector. It is called once, when the
	// connector is served, and must not depend on the environment.
	Manifest() manifest.Manifest
	// Run collects data: it reads config, credentials and the last state
	// from r and sends records and checkpoints through it. Returning nil
	// means success. ctx is cancelled when the host cancels the run.
	Run(ctx context.Context, r *Run) error
}

// ConnectorWithCheck is a Connector that can validate its credential and
// config without collecting data. The host calls Check right after an
// operator captures or rotates a credential and shows the operator the
// result. It stores it as the credential's validity only when it judges
// the credential: a success, or CredentialRejected (or
// credentials_required). Any other failure — a network or TLS failure,
// invalid_config — says nothing of the credential and is not stored.
type ConnectorWithCheck interface {
	Connector
	// Check returns who the credential belongs to (a login, an account
	// name; "" if the provider does not say), or a failure such as
	// CredentialRejected. The host redacts every declared credential
	// value from the identity, as from all a plugin sends: when the login
	// is itself a declared value (IMAP_USERNAME), return a masked form of
	// it, as the imap connector does ("a…e@example.org on HOST").
	Check(ctx context.Context, c *Check) (identity string, err error)
}

// Serve serves c as a connector plugin and returns when the host is done
// with it. It is the whole of a connector's main:
//
//	func main() { sdk.Serve(myconnector.New()) }
//
// Serve first validates the manifest with manifest.Validate and
// manifest.CheckSchedule; on an invalid manifest it prints why to stderr
// and exits with status 1, so a broken connector never reaches the host's
// catalog.
func Serve(c Connector) {
	if c == nil {
		fmt.Fprintf(os.Stderr, "%s: sdk.Serve: nil Connector\n", filepath.Base(os.Args[0]))
		os.Exit(1)
	}
	m := c.Manifest()
	if err := m.Validate(manifest.CheckSchedule); err != nil {
		fmt.Fprintf(os.Stderr, "%s: the connector's manifest is invalid: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
	// go-plugin points os.Stderr at a pipe once it serves; log lines must
	// go to the real stderr, where the host parses them.
	stderr := os.Stderr
	wire.Serve(newAdapter(c, m, AdaptOptions{LookupEnv: os.LookupEnv, LogOutput: stderr}))
}

// Adapt returns the wire.Connector that serves c, reading the environment
// through env (Serve passes os.LookupEnv; sdktest passes its Options.Env).
// It does not validate the manifest; Serve does.
func Adapt(c Connector, env func(string) (string, bool)) wire.Connector {
	return AdaptWith(c, AdaptOptions{LookupEnv: env})
}

// AdaptOptions configures AdaptWith.
type AdaptOptions struct {
	// LookupEnv reads the connector's environment. Nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// LogOutput receives the JSON log lines of Run.Logger and
	// Check.Logger. Nil means os.Stderr.
	LogOutput io.Writer
	// LogLevel is the lowest level logged. Zero (hclog.NoLevel) means
	// hclog.Trace: the host's own level decides what it keeps.
	LogLevel hclog.Level
}

// AdaptWith is Adapt with every option.
func AdaptWith(c Connector, o AdaptOptions) wire.Connector {
	return newAdapter(c, c.Manifest(), o)
}

func newAdapter(c Connector, m manifest.Manifest, o AdaptOptions) *adapter {
	a := &adapter{
		c:        c,
		m:        m,
		env:      o.LookupEnv,
		logOut:   o.LogOutput,
		logLevel: o.LogLevel,
		streams:  map[string]bool{},
		required: map[string]bool{},
	}
	if a.env == nil {
		a.env = os.LookupEnv
	}
	if a.logOut == nil {
		a.logOut = os.Stderr
	}
	if a.logLevel == hclog.NoLevel {
		a.logLevel = hclog.Trace
	}
	for _, s := range a.m.Streams {
		a.streams[s.Name] = true
	}
	for _, n := range a.m.Auth.Required {
		a.required[n] = true
	}
	return a
}

// adapter implements wire.Connector on top of a Connector.
type adapter struct {
	c        Connector
	m        manifest.Manifest
	env      func(string) (string, bool)
	logOut   io.Writer
	logLevel hclog.Level
	streams  map[string]bool
	required map[string]bool
}

// Describe returns the manifest.
func (a *adapter) Describe(context.Context) (manifest.Manifest, error) {
	return a.m, nil
}

// Run checks the declared credentials, runs the connector, and maps its
// outcome onto the wire: nil, a *wire.Failure, or the context's error.
func (a *adapter) Run(ctx context.Context, req wire.RunRequest, emit func(wire.Message) error) error {
	creds, missing := a.credentials()
	if len(missing) > 0 {
		err := emit(wire.Message{Kind: wire.KindInteraction, Interaction: wire.Interaction{
			Kind: wire.InteractionCredentialsRequired, Missing: missing,
		}})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("sdk: send to host: %w", err)
		}
		return missingFailure(missing)
	}
	red := newRedactor(values(creds))
	r := &Run{
		ctx:   ctx,
		req:   req,
		a:     a,
		creds: creds,
		red:   red,
		log:   newLogger(a.logOut, a.logLevel, red, "run_id", req.RunID, "connection_id", req.ConnectionID),
		send:  emit,
	}
	err := a.call(r.log, func() error { return a.c.Run(ctx, r) })
	ferr := r.finish()
	switch {
	case ctx.Err() != nil:
		// The host cancelled or timed out the run: whatever the connector
		// returned, the outcome is the cancellation.
		return ctx.Err()
	case err != nil:
		f := toFailure(err)
		f.Message = red.Message(f.Message)
		return f
	case ferr != nil:
		return ferr
	}
	return nil
}

// Check checks the declared credentials and, when the connector implements
// ConnectorWithCheck, asks it. A connector without Check is valid as soon
// as every declared credential is present; its identity is then "".
func (a *adapter) Check(ctx context.Context, req wire.CheckRequest) (wire.CheckResult, error) {
	creds, missing := a.credentials()
	if len(missing) > 0 {
		return wire.CheckResult{Failure: missingFailure(missing)}, nil
	}
	cc, ok := a.c.(ConnectorWithCheck)
	if !ok {
		return wire.CheckResult{Valid: true}, nil
	}
	red := newRedactor(values(creds))
	c := &Check{
		req:   req,
		a:     a,
		creds: creds,
		log:   newLogger(a.logOut, a.logLevel, red, "connection_id", req.ConnectionID),
	}
	var identity string
	err := a.call(c.log, func() error {
		var err error
		identity, err = cc.Check(ctx, c)
		return err
	})
	switch {
	case ctx.Err() != nil:
		return wire.CheckResult{}, ctx.Err()
	case err != nil:
		f := toFailure(err)
		f.Message = red.Message(f.Message)
		return wire.CheckResult{Failure: f}, nil
	}
	// The SDK does not redact the identity (it only bounds it); the host
	// does, like everything a plugin sends (see ConnectorWithCheck).
	return wire.CheckResult{Valid: true, Identity: redactor{}.Message(identity)}, nil
}

// call runs connector code, turning a panic into a failure so that a bug
// fails the run with a message instead of killing the plugin mid-stream.
func (a *adapter) call(log hclog.Logger, fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("connector panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = &Error{Code: wire.CodeConnectorFailed, Message: fmt.Sprintf("panic: %v", p)}
		}
	}()
	return fn()
}

// credentials reads every declared credential. missing lists, in manifest
// order, the names that are absent or empty.
func (a *adapter) credentials() (creds map[string]string, missing []string) {
	creds = make(map[string]string, len(a.m.Auth.Required))
	for _, n := range a.m.Auth.Required {
		v, ok := a.env(n)
		if !ok || v == "" {
			missing = append(missing, n)
			continue
		}
		creds[n] = v
	}
	return creds, missing
}

// missingFailure is the credentials_required failure; it names the
// missing names, never values.
func missingFailure(missing []string) *wire.Failure {
	return &wire.Failure{
		Code:    wire.CodeCredentialsRequired,
		Message: "missing or empty credentials: " + strings.Join(missing, ", "),
	}
}

func values(m map[string]string) []string {
	vs := make([]string, 0, len(m))
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

var _ wire.Connector = (*adapter)(nil)
