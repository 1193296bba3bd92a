// Package dispatch turns due work into runs, boundedly and durably: the
// schedule's ticks, manual triggers and retries all become occurrences in
// the store's queue, and a fixed pool of workers per host claims them and
// calls the single launch seam. Nothing here waits in memory for a run:
// what is due is a row, and a host that dies loses none of it.
//
// The mechanism, in order:
//
//  1. Record: a schedule tick (host/schedule) is buffered in memory — at
//     most MaxBuffered per connection, so the buffer is bounded by the
//     number of connections — and a recorder goroutine writes the buffer to
//     the store in one transaction (group commit), each connection's ticks
//     in order. The store keeps one occurrence per connection: a tick for a
//     connection whose occurrence is still pending or running coalesces,
//     counted on the connection and in Observer.Coalesced (so is a tick the
//     full buffer dropped). The ticks this host can start at once — due
//     now, as many as it has room for — are recorded claimed by it and go
//     straight to its workers, with no claim. On a shared store the hosts
//     share out the recording (Config.Primary): a connection's primary
//     records its ticks as they fall due, the others BackupDelay later,
//     when they are duplicates unless the primary died.
//  2. Enqueue: a manual trigger is a queued run row and an occurrence due
//     now, written together; the trigger answers with the queued run at
//     once. It is refused (a refused run row) while the connection has a
//     run queued or running. Manual runs are claimed before scheduled ones;
//     when every worker is busy they wait in the queue, in order.
//  3. Claim: the claim loop takes as many due occurrences as it has room
//     for — free workers and Prefetch (FOR UPDATE SKIP LOCKED across
//     hosts) — wakes on new work from this host or another
//     (notify.Dispatch), on the next run_at, and polls at least every
//     PollInterval.
//  4. Run: a worker calls the Launcher, which runs the occurrence through
//     runner.Launch and blocks until the run ends, then queues the
//     completion; a completer goroutine writes completions in batches. A
//     retryable failure turns the occurrence into its pending retry (after
//     Retry's backoff, the credential resolved again); a run ended by this
//     host's shutdown is handed back as a retry due at once, for a survivor
//     (or this host's next start) to run.
//
// Memory and goroutines are bounded by the pool and the number of
// connections: a worker is a goroutine, and what waits — buffered ticks,
// occurrences claimed ahead — is at most a few entries per connection.
//
// Stop hands the work back: no more claims, claimed occurrences that did
// not start are released at once (one statement), and running ones end
// with the runner's shutdown and are handed back as above.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
)

// Store is the part of the store dispatch uses.
type Store interface {
	RecordTicks(ctx context.Context, ticks []store.Tick) ([]store.TickOutcome, []store.Occurrence, error)
	EnqueueManual(ctx context.Context, m store.ManualRun) (store.Run, error)
	ClaimDue(ctx context.Context, holder string, now time.Time, limit int) ([]store.Occurrence, error)
	NextRunAt(ctx context.Context) (time.Time, bool, error)
	ReleaseOccurrence(ctx context.Context, connectionID, occurrenceID, holder string) error
	ReleaseClaims(ctx context.Context, holder string) (int, error)
	CompleteOccurrences(ctx context.Context, cs []store.Completion) ([]store.CompletionOutcome, error)
}

// Request is one occurrence to run.
type Request struct {
	ConnectionID string
	Trigger      store.RunTrigger
	Attempt      int
	RetryOf      string
	// RunID is the queued run of a manual occurrence ("" otherwise: the
	// launch creates the run row).
	RunID string
	// ScheduledFor is the occurrence's due instant (scheduled and retry).
	ScheduledFor time.Time
	// OccurrenceID is the claimed occurrence; the run is bound to it.
	OccurrenceID string
}

// Outcome is how a run of an occurrence ended.
type Outcome struct {
	RunID  string // "" when no run row was made
	Status store.RunStatus
	Code   failure.Code
	// Retryable is set for a failure the connector marked retryable.
	Retryable bool
}

// Launcher runs occurrences through the host's single launch seam
// (runner.Launch) and blocks until the run ends; it refuses manual
// triggers with a refused run row.
type Launcher interface {
	Run(ctx context.Context, req Request) Outcome
	Refuse(ctx context.Context, connectionID string, err error) (store.Run, error)
}

// Observer receives dispatch measurements (Prometheus metrics).
type Observer interface {
	// Ticks counts what became of recorded ticks, by outcome.
	Ticks(outcome store.TickOutcome, n int)
	// Coalesced counts ticks dropped because the connection's occurrence
	// was still pending or running, as the store counted them on the
	// connections (Connection.CoalescedTicks).
	Coalesced(n int)
	// ObserveDispatchLag records how long after its run_at an occurrence
	// reached a worker.
	ObserveDispatchLag(trigger string, lag time.Duration)
	// WorkersBusy reports how many workers hold an occurrence.
	WorkersBusy(n int)
}

// RetryPolicy bounds retries of retryable failures.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt: 3 means up to two retries.
	// 1 disables retries.
	MaxAttempts int
	// Base is the backoff before the first retry; it doubles per attempt.
	Base time.Duration
	// Max caps the backoff.
	Max time.Duration
}

// Backoff returns the delay before attempt (2 for the first retry) with
// full jitter: a uniform draw in [d/2, d] where d = min(Max, Base·2^(n-2)).
func (p RetryPolicy) Backoff(attempt int, rnd func() float64) time.Duration {
	d := p.Base
	for i := 2; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max {
		d = p.Max
	}
	half := d / 2
	return half + time.Duration(rnd()*float64(d-half))
}

// Config configures a Dispatcher.
type Config struct {
	Store    Store
	Launcher Launcher
	// HostID is this host's id: the holder of its claims.
	HostID string
	// Workers is the pool size: the most runs this host has at once, of
	// every trigger (default 16).
	Workers int
	// Clock is the clock run_at is compared with (default real).
	Clock clockwork.Clock
	// Retry is the retry policy (default 3 attempts, 10s base, 5m max).
	Retry RetryPolicy
	// Bus tells other hosts about new work and wakes this one on theirs
	// (default notify.None).
	Bus notify.Bus
	// FlushWindow is how long the recorder gathers ticks before writing
	// them (default 2ms): one transaction per window, not per tick.
	FlushWindow time.Duration
	// CompleteWindow is how long the completer gathers finished runs
	// before writing them (default 10ms). A worker is free as soon as its
	// run ends; only the connection's next occurrence waits for the write.
	CompleteWindow time.Duration
	// ClaimCooldown is the least time between two claims while work is
	// due and workers are freeing up one by one (default 1ms), so claims
	// come in batches.
	ClaimCooldown time.Duration
	// Prefetch is how many due occurrences beyond its free workers the
	// host claims ahead, so a worker that finishes starts the next at once
	// and claims come in larger batches (default 0). On a store this host
	// owns alone give it PrefetchAll: whatever is due is claimed at once,
	// mostly as it is recorded, and waits in memory (at most one
	// occurrence per connection). On a shared store a prefetched
	// occurrence waits for this host although another may be idle.
	Prefetch int
	// Primary, when set, says whether this host records a connection's
	// ticks as they fall due; for the others it is a backup and records
	// them BackupDelay later, by when the primary has (so they are cheap
	// duplicates) — unless the primary died. Hosts sharing a store spread
	// the recording (and so the work: a recorder claims what it records
	// for its free workers) instead of racing for every tick. Nil: every
	// tick at once.
	Primary func(connectionID string) bool
	// BackupDelay is how long a backup waits before recording a tick
	// (default 5s). It must exceed twice the cluster's clock skew, so a
	// backup whose clock runs ahead never records before a primary whose
	// clock runs behind.
	BackupDelay time.Duration
	// PollInterval bounds how long the claim loop sleeps without a wake-up
	// (default 1s).
	PollInterval time.Duration
	// BatchSize bounds the ticks or completions of one transaction
	// (default 1000).
	BatchSize int
	Observer  Observer
	Logger    hclog.Logger
	// Rand returns a float in [0,1) for retry jitter; nil uses math/rand/v2.
	Rand func() float64
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil || c.Launcher == nil:
		return errors.New("dispatch: Store and Launcher are required")
	case c.HostID == "":
		return errors.New("dispatch: HostID is required")
	case c.Workers < 0 || c.BatchSize < 0 || c.Prefetch < PrefetchAll || c.BackupDelay < 0:
		return errors.New("dispatch: negative Workers, Prefetch, BatchSize or BackupDelay")
	case c.Retry.MaxAttempts < 0 || c.Retry.Base < 0 || c.Retry.Max < 0:
		return errors.New("dispatch: negative retry policy")
	case c.Retry.Max != 0 && c.Retry.Base > c.Retry.Max:
		return errors.New("dispatch: Retry.Base exceeds Retry.Max")
	}
	return nil
}

func (c *Config) defaults() {
	if c.Workers == 0 {
		c.Workers = 16
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = 3
	}
	if c.Retry.Base == 0 {
		c.Retry.Base = 10 * time.Second
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = 5 * time.Minute
	}
	if c.Bus == nil {
		c.Bus = notify.None{}
	}
	if c.FlushWindow == 0 {
		c.FlushWindow = 2 * time.Millisecond
	}
	if c.CompleteWindow == 0 {
		c.CompleteWindow = 10 * time.Millisecond
	}
	if c.ClaimCooldown == 0 {
		c.ClaimCooldown = time.Millisecond
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.BackupDelay == 0 {
		c.BackupDelay = 5 * time.Second
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// PrefetchAll is Config.Prefetch for a store the host owns alone: it
// claims everything that is due.
const PrefetchAll = -1

// Dispatcher is one host's recorder, claim loop and worker pool.
type Dispatcher struct {
	cfg Config

	// The recorder's buffer: each connection's ticks in order, at most
	// MaxBuffered; the connections with a tick to write now; and when
	// each backup tick's delay ends, oldest first (an entry may have been
	// written early, when this host became the connection's primary).
	tmu     sync.Mutex
	ticks   map[string][]bufferedTick
	now     map[string]struct{}
	backups []backupDue
	tickSig chan struct{}

	wake     chan struct{} // new work may be due
	slotFree chan struct{} // a worker finished

	// The completer's buffer: at most one per worker.
	cmu    sync.Mutex
	comps  []store.Completion
	compSg chan struct{}

	mu       sync.Mutex
	busy     int
	ready    []store.Occurrence // claimed ahead, waiting for a worker
	reserved int                // room the recorder is claiming into
	stopping bool
	started  bool

	runCtx    context.Context // workers' runs; cancelled only by Abort
	cancelRun context.CancelFunc
	stopClaim chan struct{}
	workers   sync.WaitGroup
	loops     sync.WaitGroup
	stopLoops context.CancelFunc
}

// New returns a Dispatcher. Start begins claiming.
func New(cfg Config) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	d := &Dispatcher{
		cfg:       cfg,
		ticks:     map[string][]bufferedTick{},
		now:       map[string]struct{}{},
		tickSig:   make(chan struct{}, 1),
		wake:      make(chan struct{}, 1),
		slotFree:  make(chan struct{}, 1),
		compSg:    make(chan struct{}, 1),
		stopClaim: make(chan struct{}),
	}
	d.runCtx, d.cancelRun = context.WithCancel(context.Background())
	cfg.Bus.Subscribe(notify.Dispatch, func(string) { d.Wake() })
	cfg.Bus.OnReconnect(d.Wake)
	return d, nil
}

// Start starts the recorder, the completer and the claim loop.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return
	}
	d.started = true
	ctx, cancel := context.WithCancel(context.Background())
	d.stopLoops = cancel
	d.loops.Add(3)
	go d.recordLoop(ctx)
	go d.completeLoop(ctx)
	go d.claimLoop(ctx)
}

// MaxBuffered bounds the ticks of one connection waiting in the
// recorder's buffer (they pile up only while the store does not answer).
const MaxBuffered = schedule.MaxCatchUp

// bufferedTick is a tick waiting to be written, not before notBefore
// (zero: at once). dropped counts the older ticks of its connection
// dropped to make room for it.
type bufferedTick struct {
	schedule.Tick
	notBefore time.Time
	dropped   int
}

// Record buffers a tick; it never blocks (schedule.Recorder). A tick of a
// connection this host is a backup for waits BackupDelay. Past
// MaxBuffered waiting ticks of a connection the oldest is dropped; the
// store counts it as coalesced when the next is written (the connection
// has an occurrence waiting anyway).
func (d *Dispatcher) Record(t schedule.Tick) {
	backup := d.cfg.Primary != nil && !d.cfg.Primary(t.ConnectionID)
	bt := bufferedTick{Tick: t}
	d.tmu.Lock()
	q := d.ticks[t.ConnectionID]
	if backup {
		bt.notBefore = d.cfg.Clock.Now().Add(d.cfg.BackupDelay)
		d.backups = append(d.backups, backupDue{connectionID: t.ConnectionID, at: bt.notBefore})
	} else {
		// The primary writes at once — and first what it held back as a
		// backup before it became the primary (the previous one died or
		// left), so the connection's instants are written in order.
		for i := range q {
			q[i].notBefore = time.Time{}
		}
		d.now[t.ConnectionID] = struct{}{}
	}
	d.ticks[t.ConnectionID] = bound(append(q, bt))
	d.tmu.Unlock()
	signal(d.tickSig)
}

// backupDue is when a backup tick of a connection may be written.
type backupDue struct {
	connectionID string
	at           time.Time
}

// bound keeps the latest MaxBuffered ticks of a connection; the oldest
// kept carries the count of those dropped.
func bound(q []bufferedTick) []bufferedTick {
	if len(q) <= MaxBuffered {
		return q
	}
	drop := len(q) - MaxBuffered
	n := drop
	for _, t := range q[:drop] {
		n += t.dropped
	}
	q = q[drop:]
	q[0].dropped += n
	return q
}

// Wake makes the claim loop look for due work now.
func (d *Dispatcher) Wake() { signal(d.wake) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Enqueue queues a manual run and returns its queued row. A refusal —
// the connection is revoked, or has a run queued or running — is a
// refused run row and its typed error; an unknown connection is
// connection_not_found with no row.
func (d *Dispatcher) Enqueue(ctx context.Context, connectionID string) (store.Run, error) {
	run, err := d.cfg.Store.EnqueueManual(ctx, store.ManualRun{ConnectionID: connectionID})
	if err != nil {
		if failure.Has(err, failure.ConnectionNotFound) || failure.CodeOf(err) == failure.Internal {
			return store.Run{}, err
		}
		refused, rerr := d.cfg.Launcher.Refuse(ctx, connectionID, err)
		if rerr != nil {
			return store.Run{}, rerr
		}
		return refused, err
	}
	d.Wake()
	d.notifyOthers()
	return run, nil
}

// notifyOthers tells the other hosts that work is queued.
func (d *Dispatcher) notifyOthers() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.cfg.Bus.Publish(ctx, notify.Dispatch, ""); err != nil {
		d.cfg.Logger.Warn("tell other hosts about new work", "error", err)
	}
}

// limit is how many occurrences this host holds at most: its workers
// and its prefetch.
func (d *Dispatcher) limit() int {
	if d.cfg.Prefetch == PrefetchAll {
		return math.MaxInt32
	}
	return d.cfg.Workers + d.cfg.Prefetch
}

// Busy returns how many workers hold an occurrence.
func (d *Dispatcher) Busy() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.busy
}

// Stop hands the host's work back: it stops claiming, flushes buffered
// ticks, and releases claimed occurrences that had not started. Running
// occurrences keep running until the runner shuts down (which ends them
// host_shutdown; they are then handed back as retries); Wait waits for
// that.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	if d.stopping {
		d.mu.Unlock()
		return
	}
	d.stopping = true
	started := d.started
	unstarted := len(d.ready)
	d.ready = nil
	d.mu.Unlock()
	close(d.stopClaim)
	if !started {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if unstarted > 0 {
		// One statement, however many were claimed ahead; a worker
		// starting one of them at this moment finds its claim gone and
		// starts nothing.
		if _, err := d.cfg.Store.ReleaseClaims(ctx, d.cfg.HostID); err != nil {
			d.cfg.Logger.Error("hand back claimed occurrences", "occurrences", unstarted, "error", err)
		}
	}
	// What is buffered, backups included, is recorded for the others.
	d.flushTicks(ctx, true)
}

// Wait waits for every worker to finish and their completions to be
// written, until ctx is done; then it stops the background loops.
func (d *Dispatcher) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("dispatch: wait for workers: %w", ctx.Err())
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	d.flushCompletions(fctx)
	d.mu.Lock()
	stop := d.stopLoops
	d.mu.Unlock()
	if stop != nil {
		stop()
		d.loops.Wait()
	}
	return err
}

type nopObserver struct{}

func (nopObserver) Ticks(store.TickOutcome, int)             {}
func (nopObserver) Coalesced(int)                            {}
func (nopObserver) ObserveDispatchLag(string, time.Duration) {}
func (nopObserver) WorkersBusy(int)                          {}

var _ schedule.Recorder = (*Dispatcher)(nil)
