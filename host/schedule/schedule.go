// Package schedule runs each connection on its own gocron v2 job and owns
// retries of failed runs.
//
// One job per connection, named and tagged by the connection id (gocron's
// distributed lock key is the job name, so every job must be named). A job
// never launches a connector itself: it calls the Launcher — the host's
// single launch seam — and waits for the run to end, so the scheduler's
// global concurrency limit counts real runs. Overlap of one connection with
// itself is prevented by the runner's lease; gocron's singleton mode is
// optional (Config.Singleton) because it costs a goroutine and a 1000-slot
// channel per job that RemoveJob never frees.
//
// Retries are one-time gocron jobs on the same clock: a retryable failure is
// retried after an exponential backoff with full jitter, up to
// RetryPolicy.MaxAttempts, and each retry re-enters the Launcher with
// trigger "retry" so the credential is resolved again.
//
// Manual triggers never go through this package (gocron's RunNow drops runs
// in reschedule mode and hangs after StopJobs).
package schedule

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
)

// Triggers the scheduler launches with.
const (
	TriggerScheduled = "scheduled"
	TriggerRetry     = "retry"
)

// Attempt is one launch the scheduler asks for.
type Attempt struct {
	ConnectionID string
	Trigger      string // TriggerScheduled or TriggerRetry
	// Attempt counts from 1 for the scheduled run; retries are 2, 3, …
	Attempt int
	// RetryOf is the id of the run a retry retries.
	RetryOf string
}

// Launcher runs one attempt through the host's launch seam and blocks until
// the run ends. Result reports whether and how the run failed.
type Launcher interface {
	Launch(ctx context.Context, a Attempt) Result
}

// Result is what the scheduler needs to know about a finished run.
type Result struct {
	RunID string
	// Retryable is true when the run failed with a retryable failure.
	Retryable bool
}

// Observer receives scheduler measurements (e.g. Prometheus metrics).
type Observer interface {
	// ObserveLag records how late a due run started.
	ObserveLag(connectionID string, lag time.Duration)
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

// Config configures a Scheduler. The zero value of each field has a sane
// default except where noted.
type Config struct {
	// Clock drives every schedule; tests pass a clockwork fake clock.
	Clock clockwork.Clock
	// MaxConcurrent limits concurrent scheduled and retry runs across all
	// connections (0 = 16). Jobs over the limit wait.
	MaxConcurrent uint
	// Singleton additionally puts each job in gocron's singleton mode.
	Singleton bool
	// Retry is the retry policy (default 3 attempts, 10s base, 5m max).
	Retry RetryPolicy
	// Locker, when set, makes every occurrence run once across hosts.
	Locker gocron.Locker
	// StopTimeout bounds Shutdown (default 10s).
	StopTimeout time.Duration
	Logger      hclog.Logger
	Observer    Observer
	// Rand returns a float in [0,1) for jitter; nil uses math/rand/v2.
	Rand func() float64
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if c.Retry.MaxAttempts < 0 {
		return errors.New("schedule: Retry.MaxAttempts must not be negative")
	}
	if c.Retry.Base < 0 || c.Retry.Max < 0 {
		return errors.New("schedule: retry durations must not be negative")
	}
	if c.Retry.Max != 0 && c.Retry.Base > c.Retry.Max {
		return errors.New("schedule: Retry.Base exceeds Retry.Max")
	}
	return nil
}

func (c *Config) defaults() {
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 16
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
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// Errors.
var (
	// ErrNotEnrolled is returned for a connection with no job.
	ErrNotEnrolled = errors.New("schedule: connection not enrolled")
	// ErrStopped is returned after Shutdown.
	ErrStopped = errors.New("schedule: scheduler stopped")
)

// Scheduler runs connections on their schedules.
type Scheduler struct {
	cfg    Config
	launch Launcher
	s      gocron.Scheduler

	mu      sync.Mutex
	jobs    map[string]enrolled // by connection id
	stopped bool
}

type enrolled struct {
	id     uuid.UUID
	spec   Spec
	jitter time.Duration
}

// jobNamespace derives stable job ids from connection ids.
var jobNamespace = uuid.MustParse("6f1b7e84-3d0e-4f41-9a57-3c6c1f0e2b11")

// New returns a Scheduler that launches through l. Call Start to begin.
func New(cfg Config, l Launcher) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if l == nil {
		return nil, errors.New("schedule: nil Launcher")
	}
	cfg.defaults()
	sc := &Scheduler{cfg: cfg, launch: l, jobs: map[string]enrolled{}}
	opts := []gocron.SchedulerOption{
		gocron.WithClock(cfg.Clock),
		gocron.WithLocation(time.UTC),
		gocron.WithLimitConcurrentJobs(cfg.MaxConcurrent, gocron.LimitModeWait),
		gocron.WithStopTimeout(cfg.StopTimeout),
		gocron.WithLogger(gocronLogger{cfg.Logger}),
		gocron.WithSchedulerMonitor(&monitor{sc: sc}),
	}
	if cfg.Locker != nil {
		opts = append(opts, gocron.WithDistributedLocker(cfg.Locker))
	}
	s, err := gocron.NewScheduler(opts...)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	sc.s = s
	return sc, nil
}

// Start begins scheduling. It does not block.
func (sc *Scheduler) Start() { sc.s.Start() }

// Upsert enrolls the connection with spec, or replaces its schedule. Only
// that connection's job is touched.
func (sc *Scheduler) Upsert(connectionID, spec string, jitter time.Duration) error {
	sp, err := Parse(spec)
	if err != nil {
		return err
	}
	if jitter < 0 {
		return fmt.Errorf("%w: negative jitter", ErrInvalidSpec)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stopped {
		return ErrStopped
	}
	id := uuid.NewSHA1(jobNamespace, []byte(connectionID))
	opts := []gocron.JobOption{
		gocron.WithName(connectionID),
		gocron.WithIdentifier(id),
		gocron.WithTags(connectionID),
	}
	if sc.cfg.Singleton {
		opts = append(opts, gocron.WithSingletonMode(gocron.LimitModeReschedule))
	}
	task := gocron.NewTask(sc.scheduledTask, connectionID, jitter)
	if _, ok := sc.jobs[connectionID]; ok {
		if _, err := sc.s.Update(id, sp.definition(), task, opts...); err != nil {
			return fmt.Errorf("schedule: update %s: %w", connectionID, err)
		}
	} else if _, err := sc.s.NewJob(sp.definition(), task, opts...); err != nil {
		return fmt.Errorf("schedule: enroll %s: %w", connectionID, err)
	}
	sc.jobs[connectionID] = enrolled{id: id, spec: sp, jitter: jitter}
	return nil
}

// Remove drops the connection's job and any pending retry of it. It is
// what pause, revoke and delete call. Removing an unknown connection is a
// no-op.
func (sc *Scheduler) Remove(connectionID string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	delete(sc.jobs, connectionID)
	sc.s.RemoveByTags(connectionID)
}

// Enrolled reports whether the connection has a job.
func (sc *Scheduler) Enrolled(connectionID string) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	_, ok := sc.jobs[connectionID]
	return ok
}

// JobInfo describes one enrolled connection.
type JobInfo struct {
	ConnectionID string
	Spec         string
	NextRun      time.Time
}

// Jobs lists enrolled connections sorted by id.
func (sc *Scheduler) Jobs() []JobInfo {
	sc.mu.Lock()
	ids := make(map[uuid.UUID]string, len(sc.jobs))
	out := make([]JobInfo, 0, len(sc.jobs))
	for conn, e := range sc.jobs {
		ids[e.id] = conn
	}
	specs := make(map[string]string, len(sc.jobs))
	for conn, e := range sc.jobs {
		specs[conn] = e.spec.Raw
	}
	sc.mu.Unlock()
	next := map[string]time.Time{}
	for _, j := range sc.s.Jobs() {
		if conn, ok := ids[j.ID()]; ok {
			t, _ := j.NextRun()
			next[conn] = t
		}
	}
	for conn, spec := range specs {
		out = append(out, JobInfo{ConnectionID: conn, Spec: spec, NextRun: next[conn]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectionID < out[j].ConnectionID })
	return out
}

// NextRun returns the connection's next scheduled run.
func (sc *Scheduler) NextRun(connectionID string) (time.Time, error) {
	sc.mu.Lock()
	e, ok := sc.jobs[connectionID]
	sc.mu.Unlock()
	if !ok {
		return time.Time{}, ErrNotEnrolled
	}
	for _, j := range sc.s.Jobs() {
		if j.ID() == e.id {
			return j.NextRun()
		}
	}
	return time.Time{}, ErrNotEnrolled
}

// Shutdown stops scheduling and cancels the context of running jobs,
// waiting at most until ctx is done or Config.StopTimeout passes.
func (sc *Scheduler) Shutdown(ctx context.Context) error {
	sc.mu.Lock()
	if sc.stopped {
		sc.mu.Unlock()
		return nil
	}
	sc.stopped = true
	sc.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, sc.cfg.StopTimeout)
	defer cancel()
	// gocron's Shutdown busy-waits on its executor; bound it.
	done := make(chan error, 1)
	go func() { done <- sc.s.ShutdownWithContext(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("schedule: shutdown: %w", ctx.Err())
	}
}

// scheduledTask is the body of every connection's job.
func (sc *Scheduler) scheduledTask(ctx context.Context, connectionID string, jitter time.Duration) {
	if jitter > 0 {
		select {
		case <-sc.cfg.Clock.After(time.Duration(sc.cfg.Rand() * float64(jitter))):
		case <-ctx.Done():
			return
		}
	}
	sc.attempt(ctx, Attempt{ConnectionID: connectionID, Trigger: TriggerScheduled, Attempt: 1})
}

// attempt launches a and, on a retryable failure, schedules the next try.
func (sc *Scheduler) attempt(ctx context.Context, a Attempt) {
	res := sc.launch.Launch(ctx, a)
	if !res.Retryable || ctx.Err() != nil {
		return
	}
	if _, ok := sc.scheduleRetry(a, res.RunID); !ok {
		sc.cfg.Logger.Warn("retries exhausted", "connection_id", a.ConnectionID, "run_id", res.RunID, "attempts", a.Attempt)
	}
}

// scheduleRetry adds a one-time job for the next attempt after prev.
func (sc *Scheduler) scheduleRetry(prev Attempt, runID string) (time.Time, bool) {
	next := prev.Attempt + 1
	if next > sc.cfg.Retry.MaxAttempts {
		return time.Time{}, false
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.stopped {
		return time.Time{}, false
	}
	if _, ok := sc.jobs[prev.ConnectionID]; !ok && prev.Trigger == TriggerScheduled {
		// Paused or removed while it ran: no retry.
		return time.Time{}, false
	}
	at := sc.cfg.Clock.Now().Add(sc.cfg.Retry.Backoff(next, sc.cfg.Rand))
	a := Attempt{ConnectionID: prev.ConnectionID, Trigger: TriggerRetry, Attempt: next, RetryOf: runID}
	_, err := sc.s.NewJob(
		gocron.OneTimeJob(gocron.OneTimeJobStartDateTime(at)),
		gocron.NewTask(sc.attempt, a),
		// A unique name per retry: the distributed lock key is the name.
		gocron.WithName(prev.ConnectionID+"/retry/"+runID),
		gocron.WithTags(prev.ConnectionID, "retry"),
	)
	if err != nil {
		sc.cfg.Logger.Error("schedule retry", "connection_id", prev.ConnectionID, "run_id", runID, "error", err)
		return time.Time{}, false
	}
	sc.cfg.Logger.Info("retry scheduled", "connection_id", prev.ConnectionID, "retry_of", runID, "attempt", next, "at", at.UTC().Format(time.RFC3339))
	return at, true
}

// ScheduleRetry schedules a retry of a run that did not come from this
// scheduler (a manual run that failed retryably). attempt is the attempt
// number of the failed run. It reports when the retry will run.
func (sc *Scheduler) ScheduleRetry(connectionID, runID string, attempt int) (time.Time, bool) {
	return sc.scheduleRetry(Attempt{ConnectionID: connectionID, Trigger: TriggerRetry, Attempt: attempt}, runID)
}
