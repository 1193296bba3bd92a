package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
)

// ticks records what the scheduler hands over.
type ticks struct {
	mu  sync.Mutex
	got []Tick
}

func (r *ticks) Record(t Tick) {
	r.mu.Lock()
	r.got = append(r.got, t)
	r.mu.Unlock()
}

func (r *ticks) of(conn string) []Tick {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Tick
	for _, t := range r.got {
		if t.ConnectionID == conn {
			out = append(out, t)
		}
	}
	return out
}

var _ Recorder = (*ticks)(nil)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestScheduler(t *testing.T, cfg Config, at time.Time) (*Scheduler, *ticks, *clockwork.FakeClock) {
	t.Helper()
	fc := clockwork.NewFakeClockAt(at)
	cfg.Clock = fc
	rec := &ticks{}
	s, err := New(cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s, rec, fc
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

func TestSeries(t *testing.T) {
	t.Parallel()
	anchor := epoch.Add(7*time.Second + 250*time.Millisecond)
	tests := map[string]struct {
		spec   string
		at     time.Time
		next   time.Time
		latest time.Time
	}{
		"interval after the anchor":  {spec: "@every 30s", at: anchor.Add(45 * time.Second), next: anchor.Add(60 * time.Second), latest: anchor.Add(30 * time.Second)},
		"interval on an instant":     {spec: "@every 30s", at: anchor.Add(30 * time.Second), next: anchor.Add(60 * time.Second), latest: anchor.Add(30 * time.Second)},
		"interval before the anchor": {spec: "@every 30s", at: anchor.Add(-45 * time.Second), next: anchor.Add(-30 * time.Second), latest: anchor.Add(-60 * time.Second)},
		"cron every 5 minutes":       {spec: "*/5 * * * *", at: epoch.Add(12 * time.Minute), next: epoch.Add(15 * time.Minute), latest: epoch.Add(10 * time.Minute)},
		"cron with seconds":          {spec: "*/10 * * * * *", at: epoch.Add(25 * time.Second), next: epoch.Add(30 * time.Second), latest: epoch.Add(20 * time.Second)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sp, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			s, err := newSeries(sp, anchor)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.next(tc.at); !got.Equal(tc.next) {
				t.Errorf("next(%s) = %s, want %s", tc.at, got, tc.next)
			}
			// A cron series searches forward from an instant of its own;
			// an interval series needs none.
			from := time.Time{}
			if sp.Every == 0 {
				from = tc.latest.Add(-time.Hour)
			}
			if got := s.latest(from, tc.at); !got.Equal(tc.latest) {
				t.Errorf("latest(%s) = %s, want %s", tc.at, got, tc.latest)
			}
		})
	}
}

// Two hosts that enrolled a connection at different times, with clocks
// apart, compute the same due instants: interval schedules are anchored
// to the connection, not to when a host added the job.
func TestDueInstantsAreTheSameOnEveryHost(t *testing.T) {
	t.Parallel()
	anchor := epoch.Add(3*time.Second + 123*time.Millisecond)
	job := Job{ConnectionID: "conn_a", Spec: "@every 10s", Gen: 4, Anchor: anchor}
	var got [2][]time.Time
	for i, start := range []time.Time{epoch.Add(time.Minute), epoch.Add(time.Minute + 6700*time.Millisecond)} {
		s, rec, fc := newTestScheduler(t, Config{}, start)
		if err := s.Upsert(job); err != nil {
			t.Fatal(err)
		}
		advanceUntil(t, fc, time.Second, 120, func() bool { return len(rec.of("conn_a")) >= 5 })
		for _, tk := range rec.of("conn_a")[:5] {
			if tk.Gen != 4 || !tk.RunAt.Equal(tk.DueAt) {
				t.Fatalf("tick %+v", tk)
			}
			if off := tk.DueAt.Sub(anchor) % (10 * time.Second); off != 0 {
				t.Fatalf("due %s is off the anchor's grid by %s", tk.DueAt, off)
			}
			got[i] = append(got[i], tk.DueAt)
		}
	}
	// The later host starts one instant later; the instants it shares
	// with the first are identical.
	if !slices.Contains(got[0], got[1][0]) || !got[1][0].Equal(got[0][1]) {
		t.Fatalf("hosts disagree on the instants:\n%v\n%v", got[0], got[1])
	}
}

func TestJitterIsAStableOffsetInsideTheWindow(t *testing.T) {
	t.Parallel()
	const window = time.Minute
	var lo, hi time.Duration = window, 0
	buckets := make([]int, 6)
	for i := range 10_000 {
		id := fmt.Sprintf("conn_%05d", i)
		o := Offset(id, window)
		if o < 0 || o >= window {
			t.Fatalf("Offset(%s) = %s, outside [0, %s)", id, o, window)
		}
		if o != Offset(id, window) {
			t.Fatal("Offset is not stable")
		}
		lo, hi = min(lo, o), max(hi, o)
		buckets[int(o/(10*time.Second))]++
	}
	// Spread over the window: every 10 s bucket holds 1/6 ± 20%.
	for i, n := range buckets {
		if n < 1333 || n > 2000 {
			t.Fatalf("bucket %d holds %d of 10,000 offsets: %v", i, n, buckets)
		}
	}
	if Offset("conn_a", 0) != 0 {
		t.Fatal("no jitter must mean no offset")
	}
	s, rec, fc := newTestScheduler(t, Config{}, epoch.Add(time.Second))
	if err := s.Upsert(Job{ConnectionID: "conn_j", Spec: "@every 1m", Jitter: window, Anchor: epoch}); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 30*time.Second, 20, func() bool { return len(rec.of("conn_j")) >= 1 })
	tk := rec.of("conn_j")[0]
	if tk.RunAt.Sub(tk.DueAt) != Offset("conn_j", window) || !tk.DueAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("tick %+v: want due %s shifted by %s", tk, epoch.Add(time.Minute), Offset("conn_j", window))
	}
	next, err := s.NextRun("conn_j")
	if err != nil || !next.Equal(epoch.Add(2*time.Minute+Offset("conn_j", window))) {
		t.Fatalf("NextRun = %s, %v", next, err)
	}
}

// A fire that comes late records the instant it was for; one that slept
// through several records each of them, in order, so a host whose clock
// runs ahead never hands the store a later instant before an earlier one.
func TestLateFireRecordsEveryInstantItSleptThrough(t *testing.T) {
	t.Parallel()
	s, rec, fc := newTestScheduler(t, Config{}, epoch.Add(time.Second))
	if err := s.Upsert(Job{ConnectionID: "conn_c", Spec: "*/1 * * * *"}); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 10*time.Second, 20, func() bool { return len(rec.of("conn_c")) >= 1 })
	if got := rec.of("conn_c")[0]; !got.DueAt.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("first tick due %s, want %s", got.DueAt, epoch.Add(time.Minute))
	}
	// Sleep through three and a half instants at once.
	fc.Advance(3*time.Minute + 30*time.Second)
	advanceUntil(t, fc, time.Second, 100, func() bool { return len(rec.of("conn_c")) >= 4 })
	time.Sleep(50 * time.Millisecond)
	got := rec.of("conn_c")
	var dues []time.Time
	for _, tk := range got {
		dues = append(dues, tk.DueAt)
	}
	want := []time.Time{epoch.Add(time.Minute), epoch.Add(2 * time.Minute), epoch.Add(3 * time.Minute), epoch.Add(4 * time.Minute)}
	if d := cmp.Diff(want, dues[:4]); d != "" {
		t.Fatalf("instants after the jump (-want +got):\n%s", d)
	}
	for i := 1; i < len(dues); i++ {
		if !dues[i].After(dues[i-1]) {
			t.Fatalf("instants not increasing: %v", dues)
		}
	}
	// More than MaxCatchUp instants: the latest MaxCatchUp.
	fc.Advance(20 * time.Minute)
	advanceUntil(t, fc, time.Second, 100, func() bool { return len(rec.of("conn_c")) >= len(got)+MaxCatchUp })
	last := rec.of("conn_c")
	if n := len(last) - len(got); n != MaxCatchUp {
		t.Fatalf("%d instants recorded for a 20 minute sleep, want %d", n, MaxCatchUp)
	}
}

// A job enrolled now also records the instants of the last CatchUp (the
// clock skew a cluster tolerates), but none before Since: a host whose
// clock runs ahead, enrolling late, cannot skip an instant that a host
// behind it has not recorded yet.
func TestEnrollmentCatchesUpTheSkewWindow(t *testing.T) {
	t.Parallel()
	at := epoch.Add(10*time.Second + 500*time.Millisecond)
	tests := map[string]struct {
		catchUp time.Duration
		since   time.Time
		want    []time.Time
	}{
		"no catch-up":           {want: nil},
		"two seconds":           {catchUp: 2 * time.Second, want: []time.Time{epoch.Add(9 * time.Second), epoch.Add(10 * time.Second)}},
		"not before the change": {catchUp: 2 * time.Second, since: epoch.Add(9*time.Second + 1), want: []time.Time{epoch.Add(10 * time.Second)}},
		"not at the change":     {catchUp: 2 * time.Second, since: epoch.Add(9 * time.Second), want: []time.Time{epoch.Add(10 * time.Second)}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, rec, _ := newTestScheduler(t, Config{CatchUp: tc.catchUp}, at)
			if err := s.Upsert(Job{ConnectionID: "conn_k", Spec: "@every 1s", Anchor: epoch, Since: tc.since}); err != nil {
				t.Fatal(err)
			}
			var dues []time.Time
			for _, tk := range rec.of("conn_k") {
				dues = append(dues, tk.DueAt)
			}
			if d := cmp.Diff(tc.want, dues); d != "" {
				t.Fatalf("instants recorded at enrollment (-want +got):\n%s", d)
			}
			// Enrolling the same schedule again is not a new enrollment,
			// whatever Since says.
			if err := s.Upsert(Job{ConnectionID: "conn_k", Spec: "@every 1s", Anchor: epoch, Since: at}); err != nil {
				t.Fatal(err)
			}
			if n := len(rec.of("conn_k")); n != len(tc.want) {
				t.Fatalf("re-enrolling the same job recorded %d instants", n-len(tc.want))
			}
		})
	}
}

func TestUpsertAndRemoveTouchOnlyThatConnection(t *testing.T) {
	t.Parallel()
	s, rec, fc := newTestScheduler(t, Config{}, epoch)
	for _, id := range []string{"conn_a", "conn_b"} {
		if err := s.Upsert(Job{ConnectionID: id, Spec: "@every 1m", Anchor: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	advanceUntil(t, fc, 30*time.Second, 20, func() bool { return len(rec.of("conn_a")) >= 1 && len(rec.of("conn_b")) >= 1 })
	// conn_a moves to a new generation and a yearly schedule; conn_b is
	// removed.
	if err := s.Upsert(Job{ConnectionID: "conn_a", Spec: "@yearly", Gen: 1, Anchor: epoch}); err != nil {
		t.Fatal(err)
	}
	s.Remove("conn_b")
	s.Remove("conn_missing")
	na, nb := len(rec.of("conn_a")), len(rec.of("conn_b"))
	// A run of the old schedule that gocron had queued before the change
	// runs the task now: nothing of the new schedule is due.
	s.fire("conn_a")
	s.fire("conn_b")
	for range 10 {
		fc.Advance(time.Minute)
		time.Sleep(2 * time.Millisecond)
	}
	if len(rec.of("conn_a")) != na || len(rec.of("conn_b")) != nb {
		t.Fatalf("ticks after the change: a %d→%d, b %d→%d", na, len(rec.of("conn_a")), nb, len(rec.of("conn_b")))
	}
	if !s.Enrolled("conn_a") || s.Enrolled("conn_b") {
		t.Fatal("enrollment wrong after the change")
	}
	if j, ok := s.Enrollment("conn_a"); !ok || j.Gen != 1 || j.Spec != "@yearly" {
		t.Fatalf("Enrollment = %+v, %v", j, ok)
	}
	if _, err := s.NextRun("conn_b"); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("NextRun of a removed connection: %v", err)
	}
	want := []JobInfo{{ConnectionID: "conn_a", Spec: "@yearly", NextRun: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if d := cmp.Diff(want, s.Jobs()); d != "" {
		t.Fatalf("Jobs (-want +got):\n%s", d)
	}
	for name, j := range map[string]Job{
		"bad spec":        {ConnectionID: "conn_x", Spec: "nope"},
		"negative jitter": {ConnectionID: "conn_x", Spec: "@hourly", Jitter: -time.Second},
	} {
		if err := s.Upsert(j); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: Upsert = %v, want ErrInvalidSpec", name, err)
		}
	}
}

func TestShutdownStopsTicks(t *testing.T) {
	t.Parallel()
	s, rec, fc := newTestScheduler(t, Config{}, epoch)
	if err := s.Upsert(Job{ConnectionID: "conn_s", Spec: "@every 1s", Anchor: epoch}); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, time.Second, 20, func() bool { return len(rec.of("conn_s")) >= 1 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := len(rec.of("conn_s"))
	fc.Advance(10 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if len(rec.of("conn_s")) != n {
		t.Fatal("ticks after Shutdown")
	}
	if err := s.Upsert(Job{ConnectionID: "conn_t", Spec: "@hourly"}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Upsert after Shutdown = %v", err)
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
	obs := &lagRecorder{}
	s, _, fc := newTestScheduler(t, Config{Observer: obs}, epoch)
	if err := s.Upsert(Job{ConnectionID: "conn_l", Spec: "@every 10s", Anchor: epoch}); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, fc, 10*time.Second, 10, func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.lags) >= 1
	})
}

func TestJitterIsBoundedByThePeriod(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec   string
		jitter time.Duration
		ok     bool
	}{
		{"@every 30s", 30 * time.Second, true},
		{"@every 30s", 31 * time.Second, false},
		{"*/5 * * * *", 5 * time.Minute, true},
		{"*/5 * * * *", 6 * time.Minute, false},
		{"0 9,17 * * *", 8 * time.Hour, true}, // gaps of 8 h and 16 h: the shorter bounds it
		{"0 9,17 * * *", 9 * time.Hour, false},
		{"@weekly", MaxJitter, true},
		{"@weekly", MaxJitter + time.Second, false},
		{"@hourly", 0, true},
	}
	for _, tc := range tests {
		err := CheckJitter(tc.spec, tc.jitter)
		if (err == nil) != tc.ok {
			t.Errorf("CheckJitter(%q, %s) = %v, want ok %v", tc.spec, tc.jitter, err, tc.ok)
		}
	}
}

// NextRunAfter is the first instant at or after t (a connection's
// backoff), with the jitter offset; never earlier than the job's next.
func TestNextRunAfter(t *testing.T) {
	t.Parallel()
	const window = 20 * time.Second
	s, _, _ := newTestScheduler(t, Config{}, epoch.Add(time.Second))
	if err := s.Upsert(Job{ConnectionID: "conn_i", Spec: "@every 1m", Jitter: window, Anchor: epoch}); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert(Job{ConnectionID: "conn_c", Spec: "0 */6 * * *", Anchor: epoch}); err != nil {
		t.Fatal(err)
	}
	off := Offset("conn_i", window)
	for _, tc := range []struct {
		conn string
		t    time.Time
		want time.Time
	}{
		{"conn_i", time.Time{}, epoch.Add(time.Minute + off)},                                  // no backoff: the next instant
		{"conn_i", epoch.Add(30 * time.Second), epoch.Add(time.Minute + off)},                  // a backoff before it
		{"conn_i", epoch.Add(5 * time.Minute), epoch.Add(5*time.Minute + off)},                 // an instant itself: at or after
		{"conn_i", epoch.Add(5*time.Minute + time.Nanosecond), epoch.Add(6*time.Minute + off)}, // just after one
		{"conn_c", epoch.Add(7 * time.Hour), epoch.Add(12 * time.Hour)},
		{"conn_c", epoch.Add(12 * time.Hour), epoch.Add(12 * time.Hour)},
		{"conn_c", epoch.Add(time.Hour), epoch.Add(6 * time.Hour)},
	} {
		got, err := s.NextRunAfter(tc.conn, tc.t)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("NextRunAfter(%s, %s) = %s, %v; want %s", tc.conn, tc.t, got, err, tc.want)
		}
	}
	if _, err := s.NextRunAfter("conn_none", epoch); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("NextRunAfter of a connection not enrolled: %v", err)
	}
}

func TestIntervalAtAndInForce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec string
		at   time.Time
		want time.Duration
	}{
		{"@every 90s", epoch, 90 * time.Second},
		{"@hourly", epoch, time.Hour},
		{"0 9 * * 1-5", time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC), 24 * time.Hour}, // Monday: Tue, Wed
		{"0 9 * * 1-5", time.Date(2026, 1, 8, 10, 0, 0, 0, time.UTC), 72 * time.Hour}, // Thursday: Fri, then Mon
		{"*/15 * * * * *", epoch, 15 * time.Second},
	} {
		got, err := IntervalAt(tc.spec, tc.at)
		if err != nil || got != tc.want {
			t.Errorf("IntervalAt(%q, %s) = %s, %v; want %s", tc.spec, tc.at, got, err, tc.want)
		}
	}
	if _, err := IntervalAt("every day", epoch); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("IntervalAt of a bad spec: %v", err)
	}
	def := manifest.Schedule{Spec: "@every 1h", AutoEnroll: true}
	for _, tc := range []struct {
		own  string
		def  manifest.Schedule
		want string
	}{
		{"@every 5m", def, "@every 5m"},
		{"", def, "@every 1h"},
		{"", manifest.Schedule{Spec: "@every 1h"}, ""},
		{"", manifest.Schedule{}, ""},
	} {
		if got := InForce(tc.own, tc.def); got != tc.want {
			t.Errorf("InForce(%q, %+v) = %q, want %q", tc.own, tc.def, got, tc.want)
		}
	}
}
