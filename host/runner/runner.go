// Package runner is connhost's single launch seam: every run — scheduled,
// retry, manual over HTTP, gRPC or the CLI — starts in Runner.Launch, and no
// other code path starts a connector child.
//
// Launch does, in this order:
//
//  1. load the connection; refuse unknown (connection_not_found), revoked
//     (connection_revoked), and — for scheduled and retry runs — paused
//     (connection_paused) connections;
//  2. create the run row and take the connection's instance-scoped lease;
//     refuse run_active if another run holds it;
//  3. resolve the credential through the broker; a refusal
//     (static_secret_credential_unavailable, credentials_required) spawns
//     no child;
//  4. build the child's whole environment with the stored secret LAST;
//  5. start the plugin and stream the run;
//  6. commit records with the checkpoint that covers them, finish the run
//     row, release the lease and write audit.
//
// Every attempt is a run row, refusals included (status refused, with the
// failure code), so an operator sees why a schedule did nothing.
//
// Launch is called by the dispatch workers (host/dispatch), which own
// retries: a retryable failure becomes a retry occurrence that comes back
// through Launch with trigger "retry", so a retry resolves the credential
// again. A manual run's row is made when it is queued (Request.RunID); a
// scheduled or retry run's row is made here, bound to its claimed
// occurrence and stamped with the instant it was due (scheduled_for).
package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// Store is the part of the store the runner uses.
type Store interface {
	GetConnection(ctx context.Context, id string) (store.Connection, error)
	CreateRun(ctx context.Context, r store.NewRun) (store.Run, error)
	GetRun(ctx context.Context, id string) (store.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) (store.RunPage, error)
	MarkRunRunning(ctx context.Context, id string, prov *store.Provenance) (store.Run, error)
	FinishRun(ctx context.Context, id string, res store.RunResult) (store.Run, error)
	AcquireLease(ctx context.Context, req store.LeaseRequest) (store.LeaseGrant, error)
	RenewLease(ctx context.Context, connectionID, runID string, ttl time.Duration) (store.Lease, error)
	ReleaseLease(ctx context.Context, connectionID, runID string) error
	ReclaimLeases(ctx context.Context, f store.ReclaimFilter) ([]store.Lease, error)
	ListOccurrences(ctx context.Context, f store.OccurrenceFilter) ([]store.Occurrence, error)
	CommitBatch(ctx context.Context, connectionID, runID string, records []store.Record, checkpoint []byte) error
	GetCheckpoint(ctx context.Context, connectionID string) ([]byte, bool, error)
	SetCredentialValidity(ctx context.Context, connectionID string, valid bool, message string) (store.CredentialMeta, error)
}

// Catalog finds the pinned plugin of a connector.
type Catalog interface {
	Get(key string) (catalog.Entry, bool)
}

// Resolver resolves a connection's credential (the broker).
type Resolver interface {
	Resolve(ctx context.Context, t broker.Target) (broker.Resolution, error)
}

// Launcher starts one connector child for one call (host/launch).
type Launcher interface {
	Run(ctx context.Context, spec launch.Spec, req wire.RunRequest, emit func(wire.Message) error) error
	Check(ctx context.Context, spec launch.Spec, req wire.CheckRequest) (wire.CheckResult, error)
}

// Observer receives run measurements (Prometheus metrics).
type Observer interface {
	RunStarted(trigger string)
	RunEnded(trigger string, status store.RunStatus, code failure.Code, d time.Duration)
	RecordsCommitted(connectorKey string, n int)
}

// Config configures a Runner.
type Config struct {
	Store    Store
	Catalog  Catalog
	Broker   Resolver
	Launcher Launcher
	// HostID names this host instance in leases and run rows.
	HostID string
	// HostEnv returns the host environment (os.Environ in production).
	HostEnv func() []string
	// Allowlist is the host variables every child gets
	// (launch.DefaultAllowlist when nil).
	Allowlist []string
	// RunTimeout bounds each run (default 1h).
	RunTimeout time.Duration
	// LeaseTTL is how long a lease lives without renewal (default 1m); it
	// is renewed every LeaseTTL/3 while the run is alive.
	LeaseTTL time.Duration
	// CommitEvery caps the records one commit carries (default
	// DefaultCommitEvery). A run's committer commits whatever it has
	// received while the previous commit ran, up to this many records,
	// in one transaction that ends at the last checkpoint among them.
	CommitEvery int
	// BufferRecords and BufferBytes bound what each run holds received
	// and not yet committed, the batch being committed included (default
	// DefaultBufferRecords, DefaultBufferBytes; bytes count streams, keys,
	// data and checkpoints). A run that reaches either bound stops
	// receiving until a commit ends, which stops its plugin's stream.
	BufferRecords int
	BufferBytes   int
	// HostBufferBytes bounds what all the runs of this runner hold
	// together, counting each record's bytes plus a fixed overhead
	// (default DefaultHostBufferBytes), so memory stays bounded however
	// many runs stream at once. A run waits for its share in turn.
	HostBufferBytes int
	Events          *runevents.Hub
	// Bus reaches the other hosts of a shared store: a cancel of a run
	// this host does not run is sent there, and theirs arrive here
	// (default notify.None).
	Bus notify.Bus
	// Relay, when set, sends every event this host publishes to the
	// other hosts' followers.
	Relay    interface{ Send(runevents.Event) }
	Observer Observer
	Audit    *audit.Log
	Logger   hclog.Logger
	Now      func() time.Time
	// BackoffCap bounds how far a connection failing again and again is
	// backed off (DefaultBackoffCap when zero; see finishPolicy).
	BackoffCap time.Duration
	// OnHold, when set, is called after a run held its connection
	// (store.RunResult.Hold), so the host re-evaluates it at once: its
	// scheduler job goes, the enrollment report says why, and the other
	// hosts are told (host/server wires control.Service.Reevaluate).
	OnHold func(ctx context.Context, connectionID string)
}

// Ingest defaults (see Config). A run holds up to two commits' worth of
// records — one committing, the next arriving — and 8 MiB, room for the
// largest record the SDK sends (4 MiB) beside a full batch. All runs
// together hold 32 MiB, about 160,000 small records: a hundred runs at
// once still each reach a checkpoint every 1,000 records (the demo's and
// the SDK's habit) before the budget presses them to commit early, and
// commits of fewer than about 1,000 records cost SQLite up to twice as
// much per record.
const (
	DefaultCommitEvery     = 5000
	DefaultBufferRecords   = 2 * DefaultCommitEvery
	DefaultBufferBytes     = 8 << 20
	DefaultHostBufferBytes = 32 << 20
)

// Validate reports a configuration error.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("runner: Config.Store is required")
	case c.Catalog == nil:
		return errors.New("runner: Config.Catalog is required")
	case c.Broker == nil:
		return errors.New("runner: Config.Broker is required")
	case c.Launcher == nil:
		return errors.New("runner: Config.Launcher is required")
	case c.HostID == "":
		return errors.New("runner: Config.HostID is required")
	case c.RunTimeout < 0, c.LeaseTTL < 0, c.CommitEvery < 0, c.BufferRecords < 0, c.BufferBytes < 0, c.HostBufferBytes < 0, c.BackoffCap < 0:
		return errors.New("runner: negative limits")
	}
	return nil
}

func (c *Config) defaults() {
	if c.HostEnv == nil {
		c.HostEnv = func() []string { return nil }
	}
	if c.Allowlist == nil {
		c.Allowlist = launch.DefaultAllowlist
	}
	if c.RunTimeout == 0 {
		c.RunTimeout = time.Hour
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = time.Minute
	}
	if c.CommitEvery == 0 {
		c.CommitEvery = DefaultCommitEvery
	}
	if c.BufferRecords == 0 {
		c.BufferRecords = DefaultBufferRecords
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.HostBufferBytes == 0 {
		c.HostBufferBytes = DefaultHostBufferBytes
	}
	if c.Events == nil {
		c.Events = &runevents.Hub{}
	}
	if c.Bus == nil {
		c.Bus = notify.None{}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BackoffCap == 0 {
		c.BackoffCap = DefaultBackoffCap
	}
}

// Runner launches runs.
type Runner struct {
	cfg Config
	// buffers is the budget every run's receive buffer takes from.
	buffers *budget

	mu       sync.Mutex
	active   map[string]*Handle // by run id
	closing  bool
	baseCtx  context.Context
	stopBase context.CancelFunc
	wg       sync.WaitGroup
}

// New returns a Runner.
func New(cfg Config) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{cfg: cfg, buffers: newBudget(int64(cfg.HostBufferBytes)), active: map[string]*Handle{}, baseCtx: ctx, stopBase: cancel}
	cfg.Bus.Subscribe(notify.Cancel, func(runID string) { go r.cancelForAnotherHost(runID) })
	return r, nil
}

// Events returns the runner's live event hub.
func (r *Runner) Events() *runevents.Hub { return r.cfg.Events }

// Request asks for one run.
type Request struct {
	ConnectionID string
	Trigger      store.RunTrigger
	// Attempt is 1 for a first attempt (0 means 1).
	Attempt int
	// RetryOf is the run a retry retries.
	RetryOf string
	// Actor is recorded in audit ("operator", "scheduler").
	Actor string
	// RunID is the queued run row to start (a manual run, queued when it
	// was triggered); "" makes a new row.
	RunID string
	// ScheduledFor is the instant a scheduled or retry occurrence was due.
	ScheduledFor time.Time
	// OccurrenceID is the claimed occurrence the run is for: a new run
	// row is bound to it, and Launch starts nothing if this host no
	// longer holds it.
	OccurrenceID string
}

// Handle follows a launched run.
type Handle struct {
	RunID        string
	ConnectionID string

	done   chan struct{}
	run    store.Run
	err    error
	cancel context.CancelCauseFunc
	// prov is the launch provenance: recorded when the run starts, or
	// with the refusal when the credential resolution refused it.
	prov *store.Provenance
	// conn is the connection as read at launch (nil for a run refused
	// before it was launched): the finish policy reads its streak.
	conn *store.Connection
}

// Done is closed when the run has ended and its row is final.
func (h *Handle) Done() <-chan struct{} { return h.done }

// Result returns the final run row and, for a run that did not succeed,
// its typed failure. Call it after Done is closed.
func (h *Handle) Result() (store.Run, error) {
	<-h.done
	return h.run, h.err
}

// Errors.
var (
	// ErrNotActive is returned by Cancel for a run this host is not running.
	ErrNotActive = errors.New("runner: run is not active on this host")
)

// Launch is the single launch seam. It returns once the run is refused
// (with its refused run row in the Handle and a *failure.Error) or its
// child is being started; follow the Handle for the end. An unknown
// connection returns a nil Handle and connection_not_found, since there is
// no connection to hang a run row on.
func (r *Runner) Launch(ctx context.Context, req Request) (*Handle, error) {
	if req.Attempt == 0 {
		req.Attempt = 1
	}
	if req.Actor == "" {
		req.Actor = audit.ActorHost
	}
	// 1. The connection.
	conn, err := r.cfg.Store.GetConnection(ctx, req.ConnectionID)
	if err != nil {
		return nil, err
	}
	run, err := r.runRow(ctx, req)
	if err != nil {
		return nil, err
	}
	h := &Handle{RunID: run.ID, ConnectionID: conn.ID, done: make(chan struct{})}
	h.conn = &conn
	r.publish(runevents.Event{RunID: run.ID, ConnectionID: conn.ID, Kind: runevents.KindStatus, Status: string(store.RunQueued)})

	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	switch {
	case closing:
		return r.refuse(ctx, h, req, run, failure.New(failure.HostShutdown, "host is shutting down"))
	case conn.State == store.ConnectionRevoked:
		return r.refuse(ctx, h, req, run, failure.New(failure.ConnectionRevoked, "connection %s is revoked", conn.ID))
	case conn.State == store.ConnectionPaused && req.Trigger != store.TriggerManual:
		return r.refuse(ctx, h, req, run, failure.New(failure.ConnectionPaused, "connection %s is paused", conn.ID))
	}
	entry, ok := r.cfg.Catalog.Get(conn.ConnectorKey)
	if !ok {
		return r.refuse(ctx, h, req, run, failure.New(failure.ConnectorNotFound, "connector %q is not in the catalog", conn.ConnectorKey))
	}

	// 2. The lease.
	grant, err := r.cfg.Store.AcquireLease(ctx, store.LeaseRequest{
		ConnectionID: conn.ID, RunID: run.ID, Holder: r.cfg.HostID, TTL: r.cfg.LeaseTTL,
	})
	if err != nil {
		if failure.Has(err, failure.RunActive) {
			// Name the run that holds the lease, so cancelling it works.
			var held *store.LeaseHeldError
			if errors.As(err, &held) {
				return r.refuse(ctx, h, req, run, failure.New(failure.RunActive, "connection %s already has an active run (run %s)", conn.ID, held.Lease.RunID))
			}
			return r.refuse(ctx, h, req, run, failure.New(failure.RunActive, "connection %s already has an active run", conn.ID))
		}
		return r.refuse(ctx, h, req, run, &failure.Error{Code: failure.Internal, Message: "lease: " + err.Error(), Err: err})
	}
	if grant.Replaced != nil {
		r.failOrphan(ctx, *grant.Replaced)
	}

	// 3. The credential.
	res, err := r.cfg.Broker.Resolve(ctx, broker.Target{ConnectionID: conn.ID, Auth: entry.Manifest.Auth})
	if err != nil {
		r.release(conn.ID, run.ID)
		if failure.CodeOf(err) == failure.Internal {
			err = &failure.Error{Code: failure.Internal, Message: "credential resolution failed", Err: err}
		} else {
			h.prov = provenance(res.Report, nil) // the resolution that refused
		}
		return r.refuse(ctx, h, req, run, err)
	}

	// 4. The environment: stored values last.
	env, origins := r.childEnv(entry, res, conn.ID, run.ID, string(req.Trigger))
	h.prov = provenance(res.Report, origins)

	// 5 and 6 run in the background, under the runner's own context so an
	// HTTP request ending does not cancel the run.
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		r.release(conn.ID, run.ID)
		return r.refuse(ctx, h, req, run, failure.New(failure.HostShutdown, "host is shutting down"))
	}
	runCtx, cancel := context.WithCancelCause(r.baseCtx)
	h.cancel = cancel
	r.active[run.ID] = h
	r.wg.Add(1)
	r.mu.Unlock()

	running, err := r.cfg.Store.MarkRunRunning(ctx, run.ID, h.prov)
	if err != nil {
		r.forget(run.ID)
		cancel(nil)
		r.wg.Done()
		r.release(conn.ID, run.ID)
		return r.fail(h, run, &failure.Error{Code: failure.Internal, Message: "mark running: " + err.Error(), Err: err})
	}
	go r.execute(runCtx, h, req, conn, entry, running, env, res)
	return h, nil
}

// runRow returns the queued run the request starts: the manual run queued
// when it was triggered, or a new row bound to the claimed occurrence.
func (r *Runner) runRow(ctx context.Context, req Request) (store.Run, error) {
	if req.RunID != "" {
		run, err := r.cfg.Store.GetRun(ctx, req.RunID)
		if err != nil {
			return store.Run{}, fmt.Errorf("runner: queued run: %w", err)
		}
		if run.Status != store.RunQueued || run.ConnectionID != req.ConnectionID {
			return store.Run{}, &store.RunStateError{RunID: run.ID, Op: "start", Status: run.Status}
		}
		return run, nil
	}
	run, err := r.cfg.Store.CreateRun(ctx, store.NewRun{
		ConnectionID: req.ConnectionID, Trigger: req.Trigger, Attempt: req.Attempt,
		RetryOf: req.RetryOf, HostID: r.cfg.HostID, ScheduledFor: req.ScheduledFor, OccurrenceID: req.OccurrenceID,
	})
	if err != nil {
		return store.Run{}, fmt.Errorf("runner: create run: %w", err)
	}
	return run, nil
}

// Refuse records a run of the connection that was refused before it was
// queued (a manual trigger while another run is queued or running, or of
// a revoked connection): a refused run row with err's code, audited like
// every refusal. It returns the row.
func (r *Runner) Refuse(ctx context.Context, connectionID string, cause error) (store.Run, error) {
	run, err := r.cfg.Store.CreateRun(ctx, store.NewRun{ConnectionID: connectionID, Trigger: store.TriggerManual, HostID: r.cfg.HostID})
	if err != nil {
		return store.Run{}, fmt.Errorf("runner: create run: %w", err)
	}
	h := &Handle{RunID: run.ID, ConnectionID: connectionID, done: make(chan struct{})}
	req := Request{ConnectionID: connectionID, Trigger: store.TriggerManual, Actor: audit.ActorOperator}
	_, _ = r.refuse(ctx, h, req, run, cause)
	return h.run, nil
}

// childEnv builds a child's whole environment (DESIGN section 3): the
// host allowlist, the manifest's passthrough names, host auth values only
// when the broker chose the host env, run metadata, and the stored
// credential values last. Launch and Check both use it, so every path
// builds the same environment. It returns the layer of each variable too,
// for the run's provenance.
func (r *Runner) childEnv(entry catalog.Entry, res broker.Resolution, connectionID, runID, trigger string) ([]string, []launch.Origin) {
	var stored map[string]string
	if res.Source == broker.SourceStored {
		stored = res.Values // host env values enter through layer 3 instead
	}
	return launch.BuildEnvProvenance(r.cfg.HostEnv(), launch.EnvSpec{
		Allowlist:    r.cfg.Allowlist,
		Passthrough:  entry.Manifest.EnvPassthrough,
		AuthRequired: entry.Manifest.Auth.Required,
		Source:       launch.CredentialSource(res.Source),
		Credential:   stored,
		ConnectionID: connectionID,
		RunID:        runID,
		Trigger:      trigger,
	})
}

// refuse finishes run as refused with err's code.
func (r *Runner) refuse(ctx context.Context, h *Handle, req Request, run store.Run, err error) (*Handle, error) {
	code := failure.CodeOf(err)
	result := store.RunResult{Status: store.RunRefused, FailureCode: code, FailureMessage: failureMessage(err),
		Provenance: h.prov}
	r.finishPolicy(h, req, &result)
	fin, ferr := r.cfg.Store.FinishRun(context.WithoutCancel(ctx), run.ID, result)
	r.held(ctx, result, fin, ferr)
	if ferr != nil {
		r.cfg.Logger.Error("finish refused run", "run_id", run.ID, "error", ferr)
		fin = run
		fin.Status, fin.FailureCode, fin.FailureMessage = store.RunRefused, code, failureMessage(err)
	}
	r.cfg.Logger.Warn("run refused", "run_id", run.ID, "connection_id", run.ConnectionID,
		"trigger", string(req.Trigger), "failure_code", string(code))
	r.cfg.Audit.Record(ctx, audit.Event{
		Actor: req.Actor, Operation: "run.launch", TargetKind: "connection", TargetID: run.ConnectionID,
		Outcome: store.AuditRefused,
		Detail:  map[string]string{"run_id": run.ID, "trigger": string(req.Trigger), "failure_code": string(code)},
	})
	if o := r.cfg.Observer; o != nil {
		o.RunEnded(string(req.Trigger), store.RunRefused, code, 0)
	}
	return r.fail(h, fin, err)
}

// fail completes h with a final row and error.
func (r *Runner) fail(h *Handle, run store.Run, err error) (*Handle, error) {
	h.run, h.err = run, err
	r.publish(runevents.Event{RunID: run.ID, ConnectionID: run.ConnectionID, Kind: runevents.KindEnd,
		Status: string(run.Status), FailureCode: string(run.FailureCode), Message: run.FailureMessage, Records: run.Records})
	close(h.done)
	return h, err
}

func failureMessage(err error) string {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe.Message
	}
	return "internal error"
}

// CancelElsewhere asks the other hosts to cancel a run this host does not
// run; the one that runs it cancels it. ErrNotActive when there is no
// other host.
func (r *Runner) CancelElsewhere(ctx context.Context, runID string) error {
	if _, alone := r.cfg.Bus.(notify.None); alone {
		return ErrNotActive
	}
	return r.cfg.Bus.Publish(ctx, notify.Cancel, runID)
}

// cancelForAnotherHost cancels a run another host was asked to cancel, if
// it runs here: now, or once a worker here that claimed it starts it.
func (r *Runner) cancelForAnotherHost(runID string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r.Cancel(runID) == nil {
			r.cfg.Logger.Info("run cancelled at another host's request", "run_id", runID)
			return
		}
		ctx, cancel := context.WithTimeout(r.baseCtx, time.Second)
		run, err := r.cfg.Store.GetRun(ctx, runID)
		cancel()
		if err != nil || run.Status.Terminal() || (run.HostID != "" && run.HostID != r.cfg.HostID) {
			return // gone, ended, or not ours
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ended publishes the end of a run that ended without this host running
// it (cancelled while queued, reaped from a dead host), for its followers
// here and on the other hosts.
func (r *Runner) Ended(run store.Run) {
	r.publish(runevents.Event{RunID: run.ID, ConnectionID: run.ConnectionID, Kind: runevents.KindEnd,
		Status: string(run.Status), FailureCode: string(run.FailureCode), Message: run.FailureMessage, Records: run.Records})
}

// Cancel cancels a run this host is running. The run ends cancelled.
func (r *Runner) Cancel(runID string) error {
	r.mu.Lock()
	h, ok := r.active[runID]
	r.mu.Unlock()
	if !ok {
		return ErrNotActive
	}
	h.cancel(failure.New(failure.Cancelled, "cancelled by operator"))
	return nil
}

// CancelAll cancels every run this host is running with err as the
// cause (the other hosts declared this one dead: its runs were failed and
// their leases taken).
func (r *Runner) CancelAll(err *failure.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.active {
		h.cancel(err)
	}
}

// Active returns the ids of the runs this host is running.
func (r *Runner) Active() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	return ids
}

// Shutdown refuses new launches, cancels every running run (they end
// cancelled with code host_shutdown, their children killed and leases
// released) and waits for them until ctx is done.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closing = true
	for _, h := range r.active {
		h.cancel(failure.New(failure.HostShutdown, "host is shutting down"))
	}
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		r.stopBase()
		return nil
	case <-ctx.Done():
		r.stopBase()
		return fmt.Errorf("runner: shutdown: %w", ctx.Err())
	}
}

func (r *Runner) forget(runID string) {
	r.mu.Lock()
	delete(r.active, runID)
	r.mu.Unlock()
}

func (r *Runner) release(connectionID, runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.cfg.Store.ReleaseLease(ctx, connectionID, runID); err != nil && !errors.Is(err, store.ErrLeaseNotHeld) {
		r.cfg.Logger.Error("release lease", "connection_id", connectionID, "run_id", runID, "error", err)
	}
}

func (r *Runner) publish(ev runevents.Event) {
	if ev.At.IsZero() {
		ev.At = r.cfg.Now().UTC()
	}
	r.cfg.Events.Publish(ev)
	if r.cfg.Relay != nil {
		r.cfg.Relay.Send(ev)
	}
}
