package schedule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
)

// fakeLauncher records attempts; Fn decides each result.
type fakeLauncher struct {
	mu       sync.Mutex
	attempts []Attempt
	Fn       func(ctx context.Context, a Attempt) Result
	calls    chan Attempt
}

func newFakeLauncher(fn func(context.Context, Attempt) Result) *fakeLauncher {
	return &fakeLauncher{Fn: fn, calls: make(chan Attempt, 1024)}
}

func (f *fakeLauncher) Launch(ctx context.Context, a Attempt) Result {
	f.mu.Lock()
	f.attempts = append(f.attempts, a)
	f.mu.Unlock()
	f.calls <- a
	if f.Fn == nil {
		return Result{RunID: fmt.Sprintf("run_%s_%d", a.ConnectionID, a.Attempt)}
	}
	return f.Fn(ctx, a)
}

func (f *fakeLauncher) count(conn string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.attempts {
		if a.ConnectionID == conn {
			n++
		}
	}
	return n
}

var _ Launcher = (*fakeLauncher)(nil)

func newTestScheduler(t *testing.T, cfg Config, l Launcher) (*Scheduler, *clockwork.FakeClock) {
	t.Helper()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Clock = fc
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return 0 }
	}
	s, err := New(cfg, l)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, fc
}

// advanceUntil moves the fake clock in steps until cond holds. gocron
// arms its timers asynchronously, so each step waits briefly in real time.
func advanceUntil(t *testing.T, fc *clockwork.FakeClock, step time.Duration, maxSteps int, cond func() bool) {
	t.Helper()
	for i := 0; i < maxSteps; i++ {
		if cond() {
			return
		}
		fc.Advance(step)
		deadline := time.Now().Add(20 * time.Millisecond)
		for time.Now().Before(deadline) && !cond() {
			time.Sleep(time.Millisecond)
		}
	}
	if !cond() {
		t.Fatalf("condition not met after %d steps of %s", maxSteps, step)
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		in      string
		every   time.Duration
		cron    string
		wantErr bool
	}{
		"every 30s":            {in: "@every 30s", every: 30 * time.Second},
		"every with spaces":    {in: "  @every 1m  ", every: time.Minute},
		"five fields":          {in: "*/5 * * * *", cron: "*/5 * * * *"},
		"six fields":           {in: "*/10 * * * * *", cron: "*/10 * * * * *"},
		"descriptor":           {in: "@hourly", cron: "@hourly"},
		"empty":                {in: "", wantErr: true},
		"every below 1s":       {in: "@every 500ms", wantErr: true},
		"every no duration":    {in: "@every", wantErr: true},
		"every garbage":        {in: "@every soon", wantErr: true},
		"four fields":          {in: "* * * *", wantErr: true},
		"seven fields":         {in: "* * * * * * *", wantErr: true},
		"bad minute":           {in: "61 * * * *", wantErr: true},
		"time zone prefix":     {in: "TZ=Europe/Paris * * * * *", wantErr: true},
		"unknown descriptor":   {in: "@fortnightly", wantErr: true},
		"never fires (Feb 30)": {in: "0 0 30 2 *", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("Parse(%q) error = %v, want ErrInvalidSpec", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got.Every != tc.every || got.Cron != tc.cron {
				t.Fatalf("Parse(%q) = %+v, want every=%v cron=%q", tc.in, got, tc.every, tc.cron)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 6, Base: 10 * time.Second, Max: 35 * time.Second}
	tests := []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{2, 0, 5 * time.Second},
		{2, 0.999999, 10 * time.Second},
		{3, 0, 10 * time.Second},
		{4, 0, 17500 * time.Millisecond}, // capped at 35s, half of it
		{6, 0, 17500 * time.Millisecond},
	}
	for _, tc := range tests {
		got := p.Backoff(tc.attempt, func() float64 { return tc.rnd })
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("Backoff(%d, %v) = %v, want %v", tc.attempt, tc.rnd, got, tc.want)
		}
	}
}

func TestScheduledRunsFireOnFakeClock(t *testing.T) {
	t.Parallel()
	l := newFakeLauncher(nil)
	s, fc := newTestScheduler(t, Config{}, l)
	if err := s.Upsert("conn_a", "@every 1m", 0); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 30*time.Second, 20, func() bool { return l.count("conn_a") >= 3 })
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.attempts {
		if a.Trigger != TriggerScheduled || a.Attempt != 1 || a.ConnectionID != "conn_a" {
			t.Fatalf("unexpected attempt %+v", a)
		}
	}
}

func TestRetryReentersLauncherWithTriggerRetry(t *testing.T) {
	t.Parallel()
	l := newFakeLauncher(func(_ context.Context, a Attempt) Result {
		return Result{RunID: fmt.Sprintf("run_%d", a.Attempt), Retryable: true}
	})
	s, fc := newTestScheduler(t, Config{Retry: RetryPolicy{MaxAttempts: 3, Base: 10 * time.Second, Max: time.Minute}}, l)
	// A schedule far in the future so only the first occurrence and its
	// retries happen in this test.
	if err := s.Upsert("conn_r", "@every 1h", 0); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 15*time.Minute, 10, func() bool { return l.count("conn_r") >= 1 })
	advanceUntil(t, fc, time.Second, 100, func() bool { return l.count("conn_r") >= 3 })
	// Let any further (wrong) retry fire.
	for i := 0; i < 20; i++ {
		fc.Advance(10 * time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	l.mu.Lock()
	got := append([]Attempt(nil), l.attempts...)
	l.mu.Unlock()
	want := []Attempt{
		{ConnectionID: "conn_r", Trigger: TriggerScheduled, Attempt: 1},
		{ConnectionID: "conn_r", Trigger: TriggerRetry, Attempt: 2, RetryOf: "run_1"},
		{ConnectionID: "conn_r", Trigger: TriggerRetry, Attempt: 3, RetryOf: "run_2"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("attempts (-want +got):\n%s", diff)
	}
}

func TestNonRetryableFailureIsNotRetried(t *testing.T) {
	t.Parallel()
	l := newFakeLauncher(func(_ context.Context, a Attempt) Result { return Result{RunID: "run_x"} })
	s, fc := newTestScheduler(t, Config{Retry: RetryPolicy{MaxAttempts: 5, Base: time.Second, Max: time.Second}}, l)
	if err := s.Upsert("conn_n", "@every 1h", 0); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 15*time.Minute, 10, func() bool { return l.count("conn_n") >= 1 })
	for i := 0; i < 30; i++ {
		fc.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	if n := l.count("conn_n"); n != 1 {
		t.Fatalf("launches = %d, want 1", n)
	}
}

func TestPauseOneOfTwoConnectionsStopsOnlyThatOne(t *testing.T) {
	t.Parallel()
	l := newFakeLauncher(nil)
	s, fc := newTestScheduler(t, Config{}, l)
	for _, c := range []string{"conn_1", "conn_2"} {
		if err := s.Upsert(c, "@every 10s", 0); err != nil {
			t.Fatal(err)
		}
	}
	advanceUntil(t, fc, 5*time.Second, 40, func() bool { return l.count("conn_1") >= 1 && l.count("conn_2") >= 1 })
	s.Remove("conn_1")
	before1 := l.count("conn_1")
	before2 := l.count("conn_2")
	advanceUntil(t, fc, 5*time.Second, 40, func() bool { return l.count("conn_2") >= before2+3 })
	if got := l.count("conn_1"); got != before1 {
		t.Fatalf("paused connection ran %d more times", got-before1)
	}
	if s.Enrolled("conn_1") || !s.Enrolled("conn_2") {
		t.Fatalf("enrolled: conn_1=%v conn_2=%v", s.Enrolled("conn_1"), s.Enrolled("conn_2"))
	}
}

func TestUpsertReplacesOnlyThatConnectionsSchedule(t *testing.T) {
	t.Parallel()
	l := newFakeLauncher(nil)
	s, _ := newTestScheduler(t, Config{}, l)
	if err := s.Upsert("conn_1", "@every 10s", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert("conn_2", "*/5 * * * *", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert("conn_1", "0 0 * * *", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert("conn_1", "not a spec", 0); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("invalid spec error = %v", err)
	}
	got := s.Jobs()
	if len(got) != 2 || got[0].Spec != "0 0 * * *" || got[1].Spec != "*/5 * * * *" {
		t.Fatalf("jobs = %+v", got)
	}
}

func TestGlobalConcurrencyLimit(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	running, peak := 0, 0
	l := newFakeLauncher(func(ctx context.Context, a Attempt) Result {
		mu.Lock()
		running++
		if running > peak {
			peak = running
		}
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		running--
		mu.Unlock()
		return Result{}
	})
	s, fc := newTestScheduler(t, Config{MaxConcurrent: 2}, l)
	for i := 0; i < 4; i++ {
		if err := s.Upsert(fmt.Sprintf("conn_%d", i), "@every 10s", 0); err != nil {
			t.Fatal(err)
		}
	}
	advanceUntil(t, fc, 10*time.Second, 10, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return running == 2
	})
	// Give the other two jobs every chance to start (they must not).
	fc.Advance(10 * time.Second)
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	p := peak
	mu.Unlock()
	close(release)
	if p != 2 {
		t.Fatalf("peak concurrent runs = %d, want 2", p)
	}
}

func TestShutdownCancelsRunningJobs(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	l := newFakeLauncher(func(ctx context.Context, a Attempt) Result {
		<-ctx.Done()
		close(cancelled)
		return Result{}
	})
	s, fc := newTestScheduler(t, Config{StopTimeout: 5 * time.Second}, l)
	if err := s.Upsert("conn_s", "@every 10s", 0); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 10*time.Second, 10, func() bool { return l.count("conn_s") == 1 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("running job's context was not cancelled by Shutdown")
	}
	if err := s.Upsert("conn_s2", "@every 10s", 0); !errors.Is(err, ErrStopped) {
		t.Fatalf("Upsert after Shutdown = %v, want ErrStopped", err)
	}
}

type lagRecorder struct {
	mu   sync.Mutex
	lags []time.Duration
}

func (r *lagRecorder) ObserveLag(_ string, d time.Duration) {
	r.mu.Lock()
	r.lags = append(r.lags, d)
	r.mu.Unlock()
}

func TestObserverReceivesLag(t *testing.T) {
	t.Parallel()
	rec := &lagRecorder{}
	l := newFakeLauncher(nil)
	s, fc := newTestScheduler(t, Config{Observer: rec}, l)
	if err := s.Upsert("conn_l", "@every 10s", 0); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 10*time.Second, 10, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.lags) >= 1
	})
}
