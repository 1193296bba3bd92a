// Package schedule is connhost's clock: one gocron v2 job per enrolled
// connection, whose task only computes the instant that fell due and hands
// it to a Recorder. It never launches a connector, never waits for a run
// and never sleeps: dispatch (host/dispatch) records the tick as a durable
// occurrence and a bounded worker pool runs it.
//
// Every host computes the same instants for a connection, so a cluster
// records each occurrence once whichever host's clock gets there first:
//
//   - an interval spec ("@every 30s") is anchored to the connection's
//     creation time — due at created + k·30s — rather than to when this
//     process added the job (gocron's duration jobs otherwise take their
//     phase from each host's start);
//   - a cron spec is due at its cron instants, in UTC;
//   - jitter is a stable per-connection offset in [0, jitter) added to the
//     due instant (Tick.RunAt), never a sleep.
//
// Hosts whose clocks disagree record the same instant at different true
// times; the store keeps the latest instant recorded per connection, so
// every host must hand over every instant, in order: a fire that comes
// late records each instant it slept through (the latest MaxCatchUp), and
// a job enrolled — at boot, or after a change — first records the
// instants of the last Config.CatchUp (the cluster's clock skew) that are
// after Job.Since. Recording an instant twice is harmless: the
// second is a duplicate.
//
// Jobs are named, tagged and identified by the connection id (gocron's
// distributed lock key is the job name). gocron's concurrency limits and
// singleton mode are not used: a task is a few map operations.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
)

// Tick is one instant that fell due for a connection.
type Tick struct {
	ConnectionID string
	// Gen is the schedule generation the job was enrolled with.
	Gen int64
	// DueAt is the schedule's instant; RunAt is DueAt plus the
	// connection's jitter offset.
	DueAt, RunAt time.Time
}

// Recorder receives ticks. Record must not block.
type Recorder interface {
	Record(t Tick)
}

// Observer receives scheduler measurements (Prometheus metrics).
type Observer interface {
	// ObserveLag records how late gocron fired a job after its instant.
	ObserveLag(connectionID string, lag time.Duration)
}

// Job is what a connection is enrolled with.
type Job struct {
	ConnectionID string
	Spec         string
	Jitter       time.Duration
	// Gen is the connection's schedule generation, carried on its ticks.
	Gen int64
	// Anchor is where an interval spec's instants start (the connection's
	// creation time).
	Anchor time.Time
	// Since bounds the instants the job may record to those after it: the
	// connection's creation or last schedule change. It bounds the catch-up at
	// enrollment and does not make a job differ.
	Since time.Time
}

// sameSchedule reports whether j and o schedule the same instants.
func (j Job) sameSchedule(o Job) bool {
	j.Since, o.Since = time.Time{}, time.Time{}
	return j == o
}

// MaxCatchUp bounds the instants one fire records.
const MaxCatchUp = 8

// Config configures a Scheduler.
type Config struct {
	// Clock drives every schedule; tests pass a clockwork fake clock.
	Clock clockwork.Clock
	// CatchUp is how far in the past a newly enrolled job records
	// instants (the cluster's largest clock skew; 0 records none).
	CatchUp time.Duration
	// StopTimeout bounds Shutdown (default 10s).
	StopTimeout time.Duration
	Logger      hclog.Logger
	Observer    Observer
}

func (c *Config) defaults() {
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Errors.
var (
	// ErrNotEnrolled is returned for a connection with no job.
	ErrNotEnrolled = errors.New("schedule: connection not enrolled")
	// ErrStopped is returned after Shutdown.
	ErrStopped = errors.New("schedule: scheduler stopped")
)

// Scheduler keeps one gocron job per enrolled connection.
type Scheduler struct {
	cfg Config
	rec Recorder
	s   gocron.Scheduler

	mu      sync.Mutex
	jobs    map[string]*enrolled // by connection id
	stopped bool
}

type enrolled struct {
	id     uuid.UUID
	job    Job
	spec   Spec
	series series
	offset time.Duration
	// next is the instant the job fires for next.
	next time.Time
}

// jobNamespace derives stable job ids from connection ids.
var jobNamespace = uuid.MustParse("6f1b7e84-3d0e-4f41-9a57-3c6c1f0e2b11")

// New returns a Scheduler that hands its ticks to rec. Call Start to begin.
func New(cfg Config, rec Recorder) (*Scheduler, error) {
	if rec == nil {
		return nil, errors.New("schedule: nil Recorder")
	}
	cfg.defaults()
	sc := &Scheduler{cfg: cfg, rec: rec, jobs: map[string]*enrolled{}}
	s, err := gocron.NewScheduler(
		gocron.WithClock(cfg.Clock),
		gocron.WithLocation(time.UTC),
		gocron.WithStopTimeout(cfg.StopTimeout),
		gocron.WithLogger(gocronLogger{cfg.Logger}),
		gocron.WithSchedulerMonitor(&monitor{sc: sc}),
	)
	if err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	sc.s = s
	return sc, nil
}

// Start begins scheduling. It does not block.
func (sc *Scheduler) Start() { sc.s.Start() }

// minLead keeps a job's first instant far enough ahead that gocron, which
// reads its clock a moment later, does not find it in the past.
const minLead = 10 * time.Millisecond

// Upsert enrolls the connection, or replaces its job. Only that
// connection's job is touched.
func (sc *Scheduler) Upsert(j Job) error {
	sp, err := Parse(j.Spec)
	if err != nil {
		return err
	}
	if j.Jitter < 0 {
		return fmt.Errorf("%w: negative jitter", ErrInvalidSpec)
	}
	ser, err := newSeries(sp, j.Anchor)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	sc.mu.Lock()
	if sc.stopped {
		sc.mu.Unlock()
		return ErrStopped
	}
	if cur, ok := sc.jobs[j.ConnectionID]; ok && cur.job.sameSchedule(j) {
		sc.mu.Unlock()
		return nil // unchanged: keep its timer
	}
	now := sc.cfg.Clock.Now()
	from := now.Add(-sc.cfg.CatchUp)
	if j.Since.After(from) {
		from = j.Since
	}
	// The instants after `from` up to now (and the one a moment away,
	// too close for gocron to arm) are recorded at once; the job fires
	// from the next. Strictly after: an interval series is anchored at
	// the connection's creation (whole seconds), and its instant zero —
	// the creation itself — is never due.
	first := ser.next(from)
	catchUp := ser.between(first, now.Add(minLead), MaxCatchUp)
	if n := len(catchUp); n > 0 {
		first = ser.next(catchUp[n-1])
	}
	e := &enrolled{id: uuid.NewSHA1(jobNamespace, []byte(j.ConnectionID)), job: j, spec: sp, series: ser,
		offset: Offset(j.ConnectionID, j.Jitter), next: first}
	def := gocron.CronJob(sp.Cron, true)
	if sp.Every > 0 {
		def = gocron.DurationJob(sp.Every)
	}
	opts := []gocron.JobOption{
		gocron.WithName(j.ConnectionID),
		gocron.WithIdentifier(e.id),
		gocron.WithTags(j.ConnectionID),
		gocron.WithStartAt(gocron.WithStartDateTime(first)),
	}
	if sp.Every == 0 {
		// A cron job finds its own first instant.
		opts = opts[:3]
	}
	task := gocron.NewTask(sc.fire, j.ConnectionID)
	if _, ok := sc.jobs[j.ConnectionID]; ok {
		if _, err := sc.s.Update(e.id, def, task, opts...); err != nil {
			sc.mu.Unlock()
			return fmt.Errorf("schedule: update %s: %w", j.ConnectionID, err)
		}
	} else if _, err := sc.s.NewJob(def, task, opts...); err != nil {
		sc.mu.Unlock()
		return fmt.Errorf("schedule: enroll %s: %w", j.ConnectionID, err)
	}
	sc.jobs[j.ConnectionID] = e
	sc.mu.Unlock()
	for _, at := range catchUp {
		sc.rec.Record(Tick{ConnectionID: j.ConnectionID, Gen: j.Gen, DueAt: at, RunAt: at.Add(e.offset)})
	}
	return nil
}

// Remove drops the connection's job. It is what pause, revoke and delete
// call. Removing an unknown connection is a no-op.
func (sc *Scheduler) Remove(connectionID string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if _, ok := sc.jobs[connectionID]; !ok {
		return
	}
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

// Enrollment returns the job a connection is enrolled with.
func (sc *Scheduler) Enrollment(connectionID string) (Job, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.jobs[connectionID]
	if !ok {
		return Job{}, false
	}
	return e.job, true
}

// JobInfo describes one enrolled connection.
type JobInfo struct {
	ConnectionID string
	Spec         string
	// NextRun is when its next occurrence may start: the next due
	// instant plus its jitter offset.
	NextRun time.Time
}

// Jobs lists enrolled connections sorted by id.
func (sc *Scheduler) Jobs() []JobInfo {
	sc.mu.Lock()
	out := make([]JobInfo, 0, len(sc.jobs))
	for conn, e := range sc.jobs {
		out = append(out, JobInfo{ConnectionID: conn, Spec: e.spec.Raw, NextRun: e.next.Add(e.offset)})
	}
	sc.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ConnectionID < out[j].ConnectionID })
	return out
}

// NextRun returns when the connection's next occurrence may start.
func (sc *Scheduler) NextRun(connectionID string) (time.Time, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.jobs[connectionID]
	if !ok {
		return time.Time{}, ErrNotEnrolled
	}
	return e.next.Add(e.offset), nil
}

// Shutdown stops scheduling, waiting at most until ctx is done or
// Config.StopTimeout passes.
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

// fire is the body of every connection's job: it works out which instants
// fell due and records them, in order. The instants come from the series,
// not from the clock reading: a late fire still records the instant it
// was for, and a fire that slept through several records each of them
// (the latest MaxCatchUp).
func (sc *Scheduler) fire(connectionID string) {
	sc.mu.Lock()
	e, ok := sc.jobs[connectionID]
	if !ok || sc.stopped {
		sc.mu.Unlock()
		return
	}
	now := sc.cfg.Clock.Now()
	if e.next.After(now.Add(minLead)) {
		// Nothing of this job is due yet: a run of the job's previous
		// schedule that gocron had already queued when Upsert replaced
		// it. (Recording e.next now would run a yearly instant today.)
		sc.mu.Unlock()
		return
	}
	due := []time.Time{e.next}
	if !e.next.After(now) {
		due = e.series.between(e.next, now, MaxCatchUp)
	}
	e.next = e.series.next(due[len(due)-1])
	gen, offset := e.job.Gen, e.offset
	sc.mu.Unlock()
	for _, at := range due {
		sc.rec.Record(Tick{ConnectionID: connectionID, Gen: gen, DueAt: at, RunAt: at.Add(offset)})
	}
}

// NextRunAfter returns when the connection's next occurrence due at or
// after t may start: the first instant of its schedule that is both
// still ahead of the job and not before t, plus its jitter offset. It is
// the next run of a connection backed off until t (store.Connection
// BackoffUntil): the store refuses every instant before it.
func (sc *Scheduler) NextRunAfter(connectionID string, t time.Time) (time.Time, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.jobs[connectionID]
	if !ok {
		return time.Time{}, ErrNotEnrolled
	}
	next := e.next
	if next.Before(t) {
		next = e.series.next(t.Add(-time.Nanosecond)) // the first instant at or after t
	}
	return next.Add(e.offset), nil
}
