package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/connhost/connhost/host/contain"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/pluginimage"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// Errors returned for bad arguments; failures of a launch itself are
// *failure.Error values (see the package doc).
var (
	// ErrInvalidConfig is wrapped by Config.Validate errors.
	ErrInvalidConfig = errors.New("launch: invalid config")
	// ErrInvalidSpec is wrapped by Spec.Validate errors.
	ErrInvalidSpec = errors.New("launch: invalid spec")
)

// Defaults for the zero values of Config.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultKillTimeout  = 5 * time.Second
	DefaultCallTimeout  = time.Minute
	DefaultRunTimeout   = time.Hour
)

// crashGrace is how long a failed call waits for the child to be reaped
// before deciding whether it crashed: a dying child breaks the connection a
// moment before the kernel reports its exit.
const crashGrace = 2 * time.Second

// Config configures a Launcher. The zero value is usable: every zero field
// takes the default documented on it.
type Config struct {
	// Logger receives the launcher's and the plugins' log lines, redacted.
	// Default: a logger that discards everything.
	Logger hclog.Logger
	// DisableAutoMTLS turns off mutual TLS between host and child. It is
	// on by default and makes the child's socket useless to anyone but this
	// host: the Launcher's own certificate, made once, and a fresh one per
	// child (see "Mutual TLS" in the package doc and BenchmarkLaunch).
	DisableAutoMTLS bool
	// StartTimeout bounds the handshake. Default DefaultStartTimeout.
	StartTimeout time.Duration
	// KillTimeout bounds each step of stopping a child: the graceful
	// shutdown, reaping after SIGKILL, and draining its output. Default
	// DefaultKillTimeout.
	KillTimeout time.Duration
	// CallTimeout is the deadline of Describe and Check, unless Spec.Timeout
	// is set. Default DefaultCallTimeout.
	CallTimeout time.Duration
	// RunTimeout is the deadline of Run, unless Spec.Timeout is set.
	// Default DefaultRunTimeout.
	RunTimeout time.Duration
	// Allowlist names the host variables Describe passes to the child.
	// Default DefaultAllowlist.
	Allowlist []string
	// Environ returns the host environment for Describe. Default os.Environ.
	Environ func() []string
	// TempDir holds each launch's private socket directory (and, where memfd
	// is unavailable, the verified copy of the binary). Default os.TempDir().
	TempDir string
	// ObserveStart, when set, is told how long each successful start of a
	// child took — verifying the binary, spawning it and completing the
	// handshake — for Describe, Check and Run alike. It must not block.
	ObserveStart func(connector string, d time.Duration)
	// Contain, when set, puts each launch in a contain.Scope: when the
	// call ends everything the plugin started is killed, grandchildren
	// that left its process group or session included. Nil: the plugin's
	// process group only.
	Contain *contain.Manager
}

// Validate reports a field that cannot work.
func (c Config) Validate() error {
	for name, d := range map[string]time.Duration{
		"StartTimeout": c.StartTimeout, "KillTimeout": c.KillTimeout,
		"CallTimeout": c.CallTimeout, "RunTimeout": c.RunTimeout,
	} {
		if d < 0 {
			return fmt.Errorf("%w: %s is negative", ErrInvalidConfig, name)
		}
	}
	for i, n := range c.Allowlist {
		if !validName(n) {
			return fmt.Errorf("%w: Allowlist[%d] %q is not a variable name", ErrInvalidConfig, i, n)
		}
	}
	if c.TempDir != "" && !filepath.IsAbs(c.TempDir) {
		return fmt.Errorf("%w: TempDir %q is not absolute", ErrInvalidConfig, c.TempDir)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	defaultDuration(&c.StartTimeout, DefaultStartTimeout)
	defaultDuration(&c.KillTimeout, DefaultKillTimeout)
	defaultDuration(&c.CallTimeout, DefaultCallTimeout)
	defaultDuration(&c.RunTimeout, DefaultRunTimeout)
	if c.Allowlist == nil {
		c.Allowlist = DefaultAllowlist
	}
	if c.Environ == nil {
		c.Environ = os.Environ
	}
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Spec says what to launch for one call.
type Spec struct {
	// Name labels the plugin in logs and errors (usually the connector
	// key). Default: the base name of Path.
	Name string
	// Path is the plugin binary.
	Path string
	// SHA256 is the checksum the catalog pinned; the launch is refused if
	// the binary no longer matches it.
	SHA256 []byte
	// Image, when set, is the binary pinned at SHA256 (the catalog entry's):
	// the launch execs it, checking only that the file at Path was not
	// changed since (a stat). Nil: the launch makes and verifies a copy of
	// its own, reading the whole binary.
	Image *pluginimage.Image
	// Env is the child's whole environment, built with BuildEnv. Nothing
	// from the host's environment is added to it.
	Env []string
	// Secrets are the secret values injected into this launch. Every log
	// line and error of the launch has them replaced by Redacted.
	Secrets []string
	// Timeout overrides Config.RunTimeout (Run) or Config.CallTimeout
	// (Check) when positive.
	Timeout time.Duration
}

// Validate reports a field that cannot work.
func (s Spec) Validate() error {
	switch {
	case s.Path == "":
		return fmt.Errorf("%w: Path is empty", ErrInvalidSpec)
	case len(s.SHA256) != 32:
		return fmt.Errorf("%w: SHA256 has %d bytes, want 32", ErrInvalidSpec, len(s.SHA256))
	case s.Timeout < 0:
		return fmt.Errorf("%w: Timeout is negative", ErrInvalidSpec)
	case s.Image != nil && (s.Image.Path() != s.Path || !bytes.Equal(s.Image.SHA256(), s.SHA256)):
		return fmt.Errorf("%w: Image is not Path pinned at SHA256", ErrInvalidSpec)
	}
	for i, kv := range s.Env {
		if name, _, ok := strings.Cut(kv, "="); !ok || !validName(name) {
			// Only the name: the value may be a secret.
			return fmt.Errorf("%w: Env[%d] is not NAME=value", ErrInvalidSpec, i)
		}
	}
	return nil
}

// Launcher starts connector plugins, one child process per call. It is safe
// for concurrent use; launches share nothing but the configuration.
type Launcher struct {
	cfg Config
	log hclog.Logger
	tls *hostTLS // nil with DisableAutoMTLS
}

// New returns a Launcher for cfg.
func New(cfg Config) (*Launcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	l := &Launcher{cfg: cfg, log: cfg.Logger}
	if !cfg.DisableAutoMTLS {
		var err error
		if l.tls, err = newHostTLS(tlsKeyAlg); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Describe starts the pinned binary im with only the allowlisted host
// environment and returns its manifest unvalidated.
func (l *Launcher) Describe(ctx context.Context, im *pluginimage.Image) (manifest.Manifest, error) {
	spec := Spec{
		Path:   im.Path(),
		SHA256: im.SHA256(),
		Image:  im,
		Env:    BuildEnv(l.cfg.Environ(), EnvSpec{Allowlist: l.cfg.Allowlist, Source: SourceNone}),
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.CallTimeout)
	defer cancel()
	s, err := l.open(ctx, spec)
	if err != nil {
		return manifest.Manifest{}, err
	}
	m, err := s.conn.Describe(ctx)
	err = s.finish(ctx, err, nil)
	return m, err
}

// Check starts the plugin and asks it to validate its credential and config.
// A credential the connector rejects is a CheckResult with Valid false, not
// an error; errors are launch failures (see the package doc).
func (l *Launcher) Check(ctx context.Context, spec Spec, req wire.CheckRequest) (wire.CheckResult, error) {
	ctx, cancel := context.WithTimeout(ctx, positiveOr(spec.Timeout, l.cfg.CallTimeout))
	defer cancel()
	s, err := l.open(ctx, spec)
	if err != nil {
		return wire.CheckResult{}, err
	}
	res, err := s.conn.Check(ctx, req)
	if err := s.finish(ctx, err, nil); err != nil {
		return wire.CheckResult{}, err
	}
	res.Identity = s.red.String(res.Identity)
	if res.Failure != nil {
		res.Failure = s.redactFailure(res.Failure)
	}
	return res, nil
}

// Run starts the plugin and runs it, calling emit for each message in order
// on the calling goroutine. An error from emit cancels the run and is
// returned unchanged. When Run returns, the child and everything it spawned
// are dead and reaped.
func (l *Launcher) Run(ctx context.Context, spec Spec, req wire.RunRequest, emit func(wire.Message) error) error {
	ctx, cancel := context.WithTimeout(ctx, positiveOr(spec.Timeout, l.cfg.RunTimeout))
	defer cancel()
	s, err := l.open(ctx, spec, "run_id", req.RunID)
	if err != nil {
		return err
	}
	var emitErr error
	err = s.conn.Run(ctx, req, func(m wire.Message) error {
		// What a connector says about its run reaches logs, the event
		// stream and the API: redact every word of it. Records are the
		// collected data and pass as they are.
		switch m.Kind {
		case wire.KindProgress:
			m.Progress.Stream = s.red.String(m.Progress.Stream)
			m.Progress.Message = s.red.String(m.Progress.Message)
		case wire.KindInteraction:
			in := wire.Interaction{Kind: s.red.String(m.Interaction.Kind)}
			for _, name := range m.Interaction.Missing {
				in.Missing = append(in.Missing, s.red.String(name))
			}
			m.Interaction = in
		}
		if err := emit(m); err != nil {
			emitErr = err
			return err
		}
		return nil
	})
	return s.finish(ctx, err, emitErr)
}

func positiveOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Flow control of the connection to a child. gRPC's default grows each
// connection's receive window with its measured bandwidth-delay product,
// up to 16 MiB: a fast plugin then has megabytes in flight in the host's
// memory before the run's emit has taken them, for every run at once.
// Fixed windows (which turn that growth off) bound what a child can send
// ahead of the host to streamWindow per stream and connWindow per
// connection. 64 KiB (gRPC's initial window) measured no slower on a
// local socket than 256 KiB or 1 MiB for one run of 1,000,000 records
// (BenchmarkIngest in host/runner: 287k and 307k records/s against 263k
// and 294k), and a hundred runs at once hold 6 MiB of it, not up to
// 1.6 GiB. The read and write buffers are gRPC's per-connection I/O
// buffers (32 KiB by default).
const (
	streamWindow = 64 << 10
	connWindow   = 64 << 10
	connIOBuffer = 16 << 10
)

var grpcDialOptions = []grpc.DialOption{
	grpc.WithInitialWindowSize(streamWindow),
	grpc.WithInitialConnWindowSize(connWindow),
	grpc.WithReadBufferSize(connIOBuffer),
	grpc.WithWriteBufferSize(connIOBuffer),
	experimental.WithBufferPool(messageBufferPool),
}

// messageBufferPool holds the buffers gRPC reads frames into and joins a
// message's frames in before decoding it. gRPC's default pool has no tier
// between 32 KiB and 1 MiB, so every batch of records larger than 32 KiB
// (the SDK sends up to 500 records or 1 MiB at once; 500 demo records are
// about 50 KiB) took, and zeroed, a 1 MiB buffer, and the pool kept one
// for each receive that ran at once. With a tier at every power of two
// from 16 KiB a message takes at most twice its size. Buffers are zeroed
// on reuse, as gRPC's default pool does.
var messageBufferPool = mustTieredPool(8, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22)

func mustTieredPool(exponents ...uint8) mem.BufferPool {
	p, err := mem.NewBinaryTieredBufferPool(exponents...)
	if err != nil {
		panic("launch: gRPC buffer pool: " + err.Error())
	}
	return p
}

// session is one child process for one call.
type session struct {
	l    *Launcher
	name string
	spec Spec
	red  *redactor
	log  hclog.Logger
	exe  *privateExec
	mtls *launchTLS // nil with DisableAutoMTLS

	client *plugin.Client
	conn   wire.Connector
	stdio  []*syncSplitter

	mu      sync.Mutex
	proc    *procRunner
	sockDir string
	aborted bool
}

// open verifies the binary, starts the child and completes the handshake.
// On error nothing is left running.
func (l *Launcher) open(ctx context.Context, spec Spec, logArgs ...any) (*session, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	opened := time.Now()
	name := spec.Name
	if name == "" {
		name = filepath.Base(spec.Path)
	}
	var mtls *launchTLS
	if l.tls != nil {
		var err error
		if mtls, err = l.tls.newLaunch(); err != nil {
			return nil, &failure.Error{Code: failure.Internal, Message: err.Error(), Err: err}
		}
	}
	red := newRedactor(slices.Concat(spec.Secrets, proxyPasswords(spec.Env), mtls.secrets()))
	s := &session{
		l:    l,
		name: name,
		spec: spec,
		red:  red,
		mtls: mtls,
	}
	// A Describe (no Name) asks a file whether it is a connector at all:
	// its lines name the file, not a connector.
	who := []any{"connector", name}
	if spec.Name == "" {
		who = []any{"file", spec.Path}
	}
	rl := newRedactLogger(l.log.With(append(who, logArgs...)...), red, name)
	rl.killedByHost = s.killedByHost
	s.log = rl

	exe, err := l.privateExec(spec, name)
	if err != nil {
		return nil, s.verifyFailure(err)
	}
	s.exe = exe

	out := s.log.Named(name)
	s.stdio = []*syncSplitter{
		newSyncSplitter(red, func(line string) { out.Log(lineLevel(line), line, "stream", "stdout") }),
		newSyncSplitter(red, func(line string) { out.Log(lineLevel(line), line, "stream", "stderr") }),
	}
	s.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.VersionedPlugins(),
		RunnerFunc:       s.newRunner,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SkipHostEnv:      true,
		TLSConfig:        mtls.tlsConfig(),
		StartTimeout:     l.cfg.StartTimeout,
		Logger:           s.log,
		SyncStdout:       s.stdio[0],
		SyncStderr:       s.stdio[1],
		UnixSocketConfig: &plugin.UnixSocketConfig{TempDir: l.cfg.TempDir},
		// Lines reach go-plugin redacted and cut to maxEmittedLen: a
		// buffer of one line keeps each whole.
		PluginLogBufferSize: pluginLogBufferSize,
		GRPCDialOptions:     grpcDialOptions,
	})

	type started struct {
		rpc plugin.ClientProtocol
		err error
	}
	begin := time.Now()
	ch := make(chan started, 1)
	go func() {
		defer func() {
			// go-plugin loads a certificate printed in the handshake line
			// into ClientConfig.TLSConfig, nil with DisableAutoMTLS: a
			// child must not crash the host that way.
			if r := recover(); r != nil {
				ch <- started{err: fmt.Errorf("go-plugin failed on the child's handshake: %v", r)}
			}
		}()
		rpc, err := s.client.Client()
		ch <- started{rpc, err}
	}()
	var st started
	select {
	case st = <-ch:
	case <-ctx.Done():
		s.abort() // makes Start return: the child dies or is never spawned
		s.close(false)
		return nil, s.ctxFailure(ctx)
	}
	if st.err != nil {
		s.close(false)
		if ctx.Err() != nil {
			return nil, s.ctxFailure(ctx)
		}
		return nil, &failure.Error{
			Code:      failure.PluginHandshakeFailed,
			Message:   fmt.Sprintf("plugin %s: %s", name, s.red.String(st.err.Error())),
			Retryable: time.Since(begin) >= l.cfg.StartTimeout, // a slow start may be load
		}
	}
	raw, err := st.rpc.Dispense(wire.PluginKey)
	conn, ok := raw.(wire.Connector)
	if err != nil || !ok {
		s.close(false)
		msg := fmt.Sprintf("plugin %s does not serve the %q plugin", name, wire.PluginKey)
		if err != nil {
			msg += ": " + s.red.String(err.Error())
		}
		return nil, failure.New(failure.PluginHandshakeFailed, "%s", msg)
	}
	if err := pingPlugin(ctx, st.rpc); err != nil {
		s.close(false)
		if ctx.Err() != nil {
			return nil, s.ctxFailure(ctx)
		}
		return nil, failure.New(failure.PluginHandshakeFailed, "plugin %s: connecting: %s", name, s.red.String(status.Convert(err).Message()))
	}
	if mtls.autoMTLS() {
		s.log.Debug("plugin answered with go-plugin's AutoMTLS certificate; rebuilt with the current SDK it would start faster")
	}
	s.conn = conn
	if l.cfg.ObserveStart != nil {
		l.cfg.ObserveStart(name, time.Since(opened))
	}
	return s, nil
}

// newRunner is go-plugin's RunnerFunc. pcmd carries the handshake variables
// go-plugin wants the child to see (cookie, protocol versions, socket
// directory), and the launch adds its TLS identity; they follow the run's
// own environment, so they win over anything of the same name.
func (s *session) newRunner(_ hclog.Logger, pcmd *exec.Cmd, tmpDir string) (runner.Runner, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sockDir = tmpDir
	if s.aborted {
		// close has run already (or is running): the socket dir go-plugin
		// just made is this call's to remove.
		_ = os.RemoveAll(tmpDir)
		return nil, errKilledBeforeStart
	}
	env := slices.Concat(s.spec.Env, pcmd.Env, s.mtls.childEnv())
	var scope *contain.Scope
	if m := s.l.cfg.Contain; m != nil {
		marker := ""
		for _, e := range s.spec.Env {
			if strings.HasPrefix(e, EnvRunID+"=") && len(e) > len(EnvRunID)+1 {
				marker = e
			}
		}
		var err error
		if scope, err = m.Begin(tmpDir, marker); err != nil {
			return nil, err
		}
	}
	exe := s.exe
	newCmd := func() *exec.Cmd {
		return &exec.Cmd{
			Path:        exe.path,
			Args:        []string{s.name},
			Env:         env,
			Dir:         tmpDir, // a private, empty working directory, removed after the call
			ExtraFiles:  exe.files,
			SysProcAttr: sysProcAttr(),
		}
	}
	p, err := newProcRunner(s.name, s.spec.Path, newCmd, scope, s.red)
	if err != nil {
		if scope != nil {
			_ = scope.Close()
		}
		return nil, err
	}
	s.proc = p
	return p, nil
}

// abort stops the child now, or keeps it from ever being spawned.
func (s *session) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
	if s.proc != nil {
		s.proc.stop()
	}
}

// killedByHost reports whether the child died of the host's own SIGKILL.
func (s *session) killedByHost() bool {
	p := s.process()
	return p != nil && p.killedByHost()
}

func (s *session) process() *procRunner {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// finish turns the outcome of the call into the launch's result and stops
// the child. It returns only once the child is gone.
func (s *session) finish(ctx context.Context, err, emitErr error) error {
	var res error
	var f *wire.Failure
	switch {
	case err == nil:
	case emitErr != nil && errors.Is(err, emitErr):
		res = emitErr
	case ctx.Err() != nil:
		res = s.ctxFailure(ctx)
	case errors.As(err, &f):
		res = s.connectorFailure(f)
	case deadlineReached(ctx):
		// gRPC sends our deadline to the plugin, whose copy can fire a
		// moment before ours and reset the stream first: still a timeout.
		res = s.ctxFailure(ctx)
	default:
		res = s.transportFailure(err)
	}
	s.close(res == nil || f != nil)
	return res
}

// deadlineSkew is how early the plugin's copy of a propagated deadline may
// end a call before the host's own timer fires.
const deadlineSkew = 250 * time.Millisecond

// deadlineReached reports whether ctx's deadline has passed or is within
// deadlineSkew, waiting for it in the latter case so ctx.Err() is set.
func deadlineReached(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > deadlineSkew {
		return ctx.Err() != nil
	}
	t := time.NewTimer(time.Until(dl) + deadlineSkew)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return ctx.Err() != nil
}

// close stops the child and releases everything the session holds. A
// graceful close first asks the plugin to shut down; every step is bounded
// by KillTimeout, and the process group is SIGKILLed in any case, so the
// plugin's own children die with it.
func (s *session) close(graceful bool) {
	if !graceful {
		s.abort()
	}
	kt := s.l.cfg.KillTimeout
	killed := make(chan struct{})
	go func() {
		s.client.Kill()
		close(killed)
	}()
	if !waitFor(killed, kt) {
		s.log.Warn("plugin did not stop in time; killing its process group", "timeout", kt)
	}
	s.abort()
	if p := s.process(); p != nil {
		if p.started() && !waitFor(p.done, kt) {
			s.log.Error("plugin process not reaped after SIGKILL", "pid", p.ID(), "timeout", kt)
		}
		if !waitFor(killed, kt) {
			// A process outside the group holds the pipes open.
			p.closePipes()
			waitFor(killed, kt)
		}
		p.release()
	}
	for _, w := range s.stdio {
		w.Flush()
	}
	s.exe.close()
	s.mu.Lock()
	dir := s.sockDir
	s.mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

func waitFor(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// verifyFailure classifies an error from preparing the verified copy.
func (s *session) verifyFailure(err error) error {
	var ce *pluginimage.ChangedError
	switch {
	case errors.As(err, &ce):
		return &failure.Error{Code: failure.PluginChecksumMismatch, Message: ce.Error(), Err: err}
	case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return &failure.Error{
			Code:    failure.PluginChecksumMismatch,
			Message: fmt.Sprintf("plugin binary %s cannot be verified: %v", s.spec.Path, err),
			Err:     err,
		}
	}
	return &failure.Error{Code: failure.Internal, Message: fmt.Sprintf("plugin %s: preparing the binary: %v", s.name, err), Err: err}
}

// ctxFailure classifies a call ended by its context.
func (s *session) ctxFailure(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &failure.Error{
			Code:      failure.RunTimeout,
			Message:   fmt.Sprintf("plugin %s: deadline exceeded", s.name),
			Retryable: true,
			Err:       ctx.Err(),
		}
	}
	return &failure.Error{
		Code:    failure.Cancelled,
		Message: fmt.Sprintf("plugin %s: cancelled", s.name),
		Err:     context.Cause(ctx),
	}
}

// connectorFailure maps a connector's typed failure onto the host's codes.
func (s *session) connectorFailure(f *wire.Failure) error {
	rf := s.redactFailure(f)
	code := failure.ConnectorFailed
	msg := rf.Message
	switch rf.Code {
	case wire.CodeConnectorFailed:
	case wire.CodeCredentialsRequired:
		code = failure.CredentialsRequired
	case wire.CodeCredentialRejected:
		code = failure.CredentialRejected
	case wire.CodeInvalidConfig:
		code = failure.InvalidConfig
	default:
		msg = fmt.Sprintf("connector reported unknown code %q: %s", truncate(rf.Code, 64), msg)
	}
	return &failure.Error{Code: code, Message: msg, Retryable: rf.Retryable, Err: rf}
}

// redactFailure returns a copy of a connector's failure with its words
// redacted. A code the wire defines is the host's own text and is kept
// whole; any other code is the connector's and is redacted like its
// message.
func (s *session) redactFailure(f *wire.Failure) *wire.Failure {
	code := f.Code
	switch code {
	case wire.CodeConnectorFailed, wire.CodeCredentialsRequired, wire.CodeCredentialRejected, wire.CodeInvalidConfig:
	default:
		code = s.red.String(code)
	}
	return &wire.Failure{Code: code, Message: s.red.String(f.Message), Retryable: f.Retryable}
}

// transportFailure classifies a call that broke without a typed failure:
// the child died, or the connection did.
func (s *session) transportFailure(err error) error {
	msg := s.red.String(status.Convert(err).Message())
	if p := s.process(); p != nil && waitFor(p.done, crashGrace) {
		_, how := p.exited()
		exit := "exit status 0"
		if how != nil {
			exit = how.Error()
		}
		return &failure.Error{
			Code:      failure.ConnectorCrashed,
			Message:   fmt.Sprintf("plugin %s exited during the call (%s)", s.name, exit),
			Retryable: true,
			Err:       errors.New(msg),
		}
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled:
		return &failure.Error{
			Code:      failure.ConnectorCrashed,
			Message:   fmt.Sprintf("plugin %s: connection lost: %s", s.name, msg),
			Retryable: true,
		}
	}
	return &failure.Error{Code: failure.ConnectorFailed, Message: fmt.Sprintf("plugin %s: %s", s.name, msg)}
}

// proxyPasswords returns the passwords of proxy URLs in env. The allowlist
// passes the proxy variables through, and a proxy URL may carry
// credentials (http://user:pass@proxy): they are redacted like a run's own
// secrets.
func proxyPasswords(env []string) []string {
	var out []string
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.EqualFold(name, "HTTP_PROXY") && !strings.EqualFold(name, "HTTPS_PROXY") && !strings.EqualFold(name, "ALL_PROXY") {
			continue
		}
		if u, err := url.Parse(value); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				out = append(out, p)
			}
		}
		// The password as written, which may be escaped differently from
		// how the url package would escape it.
		if _, rest, ok := strings.Cut(value, "://"); ok {
			if host, _, _ := strings.Cut(rest, "/"); strings.Contains(host, "@") {
				userinfo := host[:strings.LastIndexByte(host, '@')]
				if _, p, ok := strings.Cut(userinfo, ":"); ok && p != "" {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// truncate bounds s to n bytes, cut on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// lineLevel infers the level of a plain text line from the "[LEVEL]"
// prefix convention, as go-plugin does for stderr.
func lineLevel(line string) hclog.Level {
	level, _ := inferLevel(line, hclog.Debug)
	return level
}

// syncSplitter is a lineSplitter safe for go-plugin's stdio goroutine to
// write while the session flushes it.
type syncSplitter struct {
	mu sync.Mutex
	sp *lineSplitter
}

func newSyncSplitter(r *redactor, emit func(string)) *syncSplitter {
	return &syncSplitter{sp: newLineSplitter(r, true, emit)}
}

func (w *syncSplitter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sp.Write(p)
}

// Flush emits a last line without a newline.
func (w *syncSplitter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sp.Flush()
}

// Interface guard: the catalog's Describer.
var _ interface {
	Describe(context.Context, *pluginimage.Image) (manifest.Manifest, error)
} = (*Launcher)(nil)
