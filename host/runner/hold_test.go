package runner_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
)

// tickLog is a dispatch.Observer that keeps the outcome of every tick the
// dispatcher wrote, in order.
type tickLog struct {
	mu  sync.Mutex
	out []store.TickOutcome
}

func (l *tickLog) Ticks(o store.TickOutcome, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.out = append(l.out, o)
	}
}
func (l *tickLog) Coalesced(int)                            {}
func (l *tickLog) ObserveDispatchLag(string, time.Duration) {}
func (l *tickLog) WorkersBusy(int)                          {}

func (l *tickLog) outcomes() []store.TickOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]store.TickOutcome(nil), l.out...)
}

var _ dispatch.Observer = (*tickLog)(nil)

func enrollmentOf(t *testing.T, h *hosttest.Host, id string) store.EnrollmentEntry {
	t.Helper()
	entries, err := h.Store.ListEnrollment(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.ConnectionID == id {
			return e
		}
	}
	t.Fatalf("no enrollment entry for %s in %+v", id, entries)
	return store.EnrollmentEntry{}
}

func getConn(t *testing.T, h *hosttest.Host, id string) store.Connection {
	t.Helper()
	c, err := h.Store.GetConnection(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func countRuns(runs []store.Run, trig store.RunTrigger, status store.RunStatus) int {
	n := 0
	for _, r := range runs {
		if r.Trigger == trig && r.Status == status {
			n++
		}
	}
	return n
}

// Issue 12: a revoked credential makes exactly one scheduled run refused
// static_secret_credential_unavailable; then the schedule is held — no job,
// no run, however many intervals pass — and the enrollment report says why
// with skipped_held. A capture re-enrolls it at once, without a restart,
// and the next scheduled run succeeds.
func TestRevokeHoldsTheScheduleUntilACapture(t *testing.T) {
	t.Parallel()
	h := newHost(t) // the host env has no DEMO_TOKEN: it cannot stand in
	ctx := context.Background()
	c := h.CreateDemo(demoConfig(nil), "@every 10m")
	h.SetToken(c.ID, canary)
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunSucceeded) == 1
	})

	if _, err := h.Control.RevokeCredential(ctx, "operator", c.ID); err != nil {
		t.Fatal(err)
	}
	if !h.Scheduler.Enrolled(c.ID) {
		t.Fatal("a revoke removed the job: the next scheduled run must be refused, visibly")
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunRefused) == 1
	})
	refused := findRun(t, h.Runs(c.ID), store.TriggerScheduled, store.RunRefused)
	if refused.FailureCode != failure.StaticSecretUnavailable {
		t.Fatalf("refused run = %+v, want %s", refused, failure.StaticSecretUnavailable)
	}
	// The hold re-evaluates the connection at once: no job, a typed skip.
	h.WaitFor(30*time.Second, func() bool { return !h.Scheduler.Enrolled(c.ID) })
	held := getConn(t, h, c.ID)
	if held.Hold.Code != failure.StaticSecretUnavailable || held.Hold.RunID != refused.ID || !held.Hold.At.Equal(refused.EndedAt) {
		t.Fatalf("hold = %+v, want %s by run %s at %s", held.Hold, failure.StaticSecretUnavailable, refused.ID, refused.EndedAt)
	}
	h.WaitFor(30*time.Second, func() bool { return enrollmentOf(t, h, c.ID).Outcome == store.SkippedHeld })
	e := enrollmentOf(t, h, c.ID)
	for _, want := range []string{"held after static_secret_credential_unavailable", held.Hold.At.UTC().Format(time.RFC3339),
		"capture a new credential"} {
		if !strings.Contains(e.Reason, want) {
			t.Errorf("enrollment reason %q lacks %q", e.Reason, want)
		}
	}
	if strings.Contains(e.Reason, canary) || strings.Contains(held.Hold.Message, canary) {
		t.Fatal("the canary secret reached the enrollment report or the hold")
	}
	if string(store.SkippedHeld) != string(enroll.SkippedHeld) {
		t.Fatalf("store and enroll disagree on the outcome: %s, %s", store.SkippedHeld, enroll.SkippedHeld)
	}

	// Several intervals pass: nothing runs, nothing is queued.
	runs, launches := len(h.Runs(c.ID)), h.Launcher.Launches()
	for range 6 {
		h.Clock.Advance(10 * time.Minute)
		time.Sleep(20 * time.Millisecond) // room for a tick that must not come
	}
	if q := h.Queue(c.ID); len(q) != 0 {
		t.Fatalf("a held connection has occurrences queued: %+v", q)
	}
	if got := h.Runs(c.ID); len(got) != runs || h.Launcher.Launches() != launches {
		t.Fatalf("a held connection got %d more runs and %d more launches", len(got)-runs, h.Launcher.Launches()-launches)
	}
	if h.Scheduler.Enrolled(c.ID) {
		t.Fatal("a held connection is enrolled")
	}

	// A capture addresses it: enrolled again at once, no restart.
	h.SetToken(c.ID, canary)
	if !h.Scheduler.Enrolled(c.ID) {
		t.Fatal("a capture did not re-enroll the held connection")
	}
	if got := getConn(t, h, c.ID); got.Hold.Held() {
		t.Fatalf("a capture left the hold: %+v", got.Hold)
	}
	if e := enrollmentOf(t, h, c.ID); e.Outcome != store.Enrolled {
		t.Fatalf("enrollment after the capture = %+v", e)
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunSucceeded) == 2
	})
	all := h.Finished(c.ID)
	if n := countRuns(all, store.TriggerScheduled, store.RunRefused); n != 1 {
		t.Fatalf("%d refused scheduled runs, want exactly 1: %+v", n, all)
	}
	if last := all[len(all)-1]; last.Trigger != store.TriggerScheduled || last.Status != store.RunSucceeded {
		t.Fatalf("the run after the capture = %+v", last)
	}
}

// A manual run is an operator trying: refused over a revoked credential,
// it does not hold the schedule.
func TestManualRefusalDoesNotHold(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(demoConfig(nil), "@every 10m")
	h.SetToken(c.ID, canary)
	if _, err := h.Control.RevokeCredential(ctx, "operator", c.ID); err != nil {
		t.Fatal(err)
	}
	run, err := h.RunNow(c.ID)
	if failure.CodeOf(err) != failure.StaticSecretUnavailable || run.Trigger != store.TriggerManual {
		t.Fatalf("manual run = %+v, %v", run, err)
	}
	if got := getConn(t, h, c.ID); got.Hold.Held() || !h.Scheduler.Enrolled(c.ID) {
		t.Fatalf("a manual refusal held the connection: %+v (enrolled %v)", got.Hold, h.Scheduler.Enrolled(c.ID))
	}
}

// Issue 12: a connector failing retryably every run backs off from its
// third failure in a row — the next run moves out exponentially, up to
// the cap — and a success resets it. The fake clock steps one schedule
// interval at a time; every instant's tick is seen written (recorded, or
// held by the backoff) before the next.
func TestRepeatedFailuresBackOffAndASuccessResets(t *testing.T) {
	t.Parallel()
	const (
		every = time.Minute
		limit = 5 * time.Minute
	)
	ticks := &tickLog{}
	h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(nil), AllowHostEnv: true, BackoffCap: limit, Observer: ticks,
		Retry: dispatch.RetryPolicy{MaxAttempts: 1, Base: time.Second, Max: time.Second}})
	// Scheduled runs fail retryably before their first event; manual
	// ones succeed.
	c := h.CreateDemo(demoConfig(map[string]any{"fail_at": 0, "fail_triggers": []string{"scheduled", "retry"}}), "@every 1m")
	h.SetToken(c.ID, canary)
	anchor := c.CreatedAt.Truncate(time.Second)
	if !h.Clock.Now().Equal(anchor) {
		t.Fatalf("clock %s moved from the anchor %s", h.Clock.Now(), anchor)
	}

	// step moves the clock to the k-th instant, waits for its tick to be
	// written and, when it was recorded, for its run to end. It returns
	// the outcome.
	step := func(k int) store.TickOutcome {
		t.Helper()
		at := anchor.Add(time.Duration(k) * every)
		seen := len(ticks.outcomes())
		h.Clock.Advance(at.Sub(h.Clock.Now()))
		h.WaitFor(30*time.Second, func() bool { return len(ticks.outcomes()) > seen })
		out := ticks.outcomes()
		if len(out) != seen+1 {
			t.Fatalf("instant %d: %d ticks written, want 1", k, len(out)-seen)
		}
		if out[seen] == store.TickRecorded {
			h.WaitFor(30*time.Second, func() bool {
				for _, r := range h.Finished(c.ID) {
					if r.Trigger == store.TriggerScheduled && r.ScheduledFor.Equal(at) {
						return true
					}
				}
				return false
			})
			h.Queue(c.ID)
		}
		return out[seen]
	}
	// runUntil steps through the instants up to k and returns those that
	// ran; after each failure it checks the backoff and the next run the
	// scheduler shows.
	ran := func(from, to int) []int {
		t.Helper()
		var out []int
		for k := from; k <= to; k++ {
			o := step(k)
			switch o {
			case store.TickRecorded:
				out = append(out, k)
			case store.TickHeld:
			default:
				t.Fatalf("instant %d: tick %s", k, o)
			}
			if o != store.TickRecorded {
				continue
			}
			got := getConn(t, h, c.ID)
			at := anchor.Add(time.Duration(k) * every)
			count := got.Streak.FailCount
			want := at.Add(runner.BackoffDelay(every, count, limit))
			if count < runner.BackoffAfter {
				want = time.Time{}
			}
			if got.Streak.FailCode != failure.ConnectorFailed || !got.BackoffUntil.Equal(want) {
				t.Fatalf("after the run at instant %d: streak %+v backoff %s, want %s", k, got.Streak, got.BackoffUntil, want)
			}
			next, err := h.Scheduler.NextRun(c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !got.BackoffUntil.IsZero() {
				if next, err = h.Scheduler.NextRunAfter(c.ID, got.BackoffUntil); err != nil {
					t.Fatal(err)
				}
			}
			wantNext := at.Add(every)
			if !got.BackoffUntil.IsZero() {
				wantNext = got.BackoffUntil // every instant of @every 1m from the anchor is whole minutes
			}
			if !next.Equal(wantNext) {
				t.Fatalf("after the run at instant %d: next run shown %s, want %s", k, next, wantNext)
			}
		}
		return out
	}

	// 1, 2, 3 fail; the third backs off 2 intervals, then 4, then the cap
	// (5) again and again.
	got := ran(1, 19)
	want := []int{1, 2, 3, 5, 9, 14, 19}
	if len(got) != len(want) {
		t.Fatalf("instants that ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("instants that ran %v, want %v", got, want)
		}
	}
	if n := countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunFailed); n != len(want) {
		t.Fatalf("%d failed scheduled runs, want %d", n, len(want))
	}

	// A success — a manual run — resets the streak and the backoff: the
	// next instants run again, until the third failure backs off anew.
	if run, err := h.RunNow(c.ID); err != nil || run.Status != store.RunSucceeded {
		t.Fatalf("manual run = %+v, %v", run, err)
	}
	h.Queue(c.ID) // its occurrence completed: the next tick is not coalesced into it
	if got := getConn(t, h, c.ID); !got.BackoffUntil.IsZero() || got.Streak.FailCount != 0 || got.Streak.LastRunStatus != store.RunSucceeded {
		t.Fatalf("after a success: backoff %s, streak %+v", got.BackoffUntil, got.Streak)
	}
	got = ran(20, 24)
	want = []int{20, 21, 22, 24}
	if len(got) != len(want) || got[0] != 20 || got[1] != 21 || got[2] != 22 || got[3] != 24 {
		t.Fatalf("instants that ran after the success %v, want %v", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		interval time.Duration
		count    int
		limit    time.Duration
		want     time.Duration
	}{
		{time.Minute, 1, time.Hour, 0},
		{time.Minute, 2, time.Hour, 0},
		{time.Minute, 3, time.Hour, 2 * time.Minute},
		{time.Minute, 4, time.Hour, 4 * time.Minute},
		{time.Minute, 7, time.Hour, 32 * time.Minute},
		{time.Minute, 8, time.Hour, time.Hour},
		{time.Minute, 1000, time.Hour, time.Hour},
		{time.Hour, 6, 0, 16 * time.Hour},
		{time.Hour, 7, 0, runner.DefaultBackoffCap},
		{time.Hour, 3, 0, 2 * time.Hour},
	} {
		if got := runner.BackoffDelay(tc.interval, tc.count, tc.limit); got != tc.want {
			t.Errorf("BackoffDelay(%s, %d, %s) = %s, want %s", tc.interval, tc.count, tc.limit, got, tc.want)
		}
	}
}

// A credential the provider refuses (the demo with a token whose hash is
// not token_sha256 answers sdk.CredentialRejected) makes exactly one
// scheduled run fail credential_rejected; then the schedule is held —
// skipped_held, no run however many intervals pass — and capturing the
// right token releases it: the next scheduled run succeeds.
func TestRejectedCredentialHoldsTheScheduleUntilACapture(t *testing.T) {
	t.Parallel()
	h := newHost(t) // the host env has no DEMO_TOKEN: it cannot stand in
	ctx := context.Background()
	const wrong = "wrong-token-" + canary // a canary too: it must not leak either
	c := h.CreateDemo(demoConfig(nil), "@every 10m")
	h.SetToken(c.ID, wrong)
	if m, err := h.Store.GetCredentialMeta(ctx, c.ID); err != nil || m.Validity == nil || m.Validity.Valid {
		t.Fatalf("validity after capturing the wrong token = %+v, %v; want invalid", m.Validity, err)
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunFailed) == 1
	})
	failed := findRun(t, h.Finished(c.ID), store.TriggerScheduled, store.RunFailed)
	if failed.FailureCode != failure.CredentialRejected || failed.FailureMessage != "token rejected" {
		t.Fatalf("failed run = %+v, want %s \"token rejected\"", failed, failure.CredentialRejected)
	}
	h.WaitFor(30*time.Second, func() bool { return !h.Scheduler.Enrolled(c.ID) })
	held := getConn(t, h, c.ID)
	if held.Hold.Code != failure.CredentialRejected || held.Hold.RunID != failed.ID || !held.Hold.At.Equal(failed.EndedAt) {
		t.Fatalf("hold = %+v, want %s by run %s at %s", held.Hold, failure.CredentialRejected, failed.ID, failed.EndedAt)
	}
	if held.Streak.FailCode != failure.CredentialRejected || held.Streak.FailCount != 1 {
		t.Fatalf("streak = %+v, want 1 credential_rejected", held.Streak)
	}
	h.WaitFor(30*time.Second, func() bool { return enrollmentOf(t, h, c.ID).Outcome == store.SkippedHeld })
	e := enrollmentOf(t, h, c.ID)
	if !strings.Contains(e.Reason, "held after credential_rejected") {
		t.Errorf("enrollment reason %q does not name the hold", e.Reason)
	}
	for _, s := range []string{e.Reason, held.Hold.Message, failed.FailureMessage, h.Logs.String()} {
		if strings.Contains(s, canary) {
			t.Fatal("a token reached the enrollment report, the hold, the run or the logs")
		}
	}

	// Several intervals pass: nothing runs, nothing is queued.
	runs, launches := len(h.Runs(c.ID)), h.Launcher.Launches()
	for range 6 {
		h.Clock.Advance(10 * time.Minute)
		time.Sleep(20 * time.Millisecond) // room for a tick that must not come
	}
	if q := h.Queue(c.ID); len(q) != 0 {
		t.Fatalf("a held connection has occurrences queued: %+v", q)
	}
	if got := h.Runs(c.ID); len(got) != runs || h.Launcher.Launches() != launches {
		t.Fatalf("a held connection got %d more runs and %d more launches", len(got)-runs, h.Launcher.Launches()-launches)
	}

	// Capturing the right token releases the hold at once.
	h.SetToken(c.ID, canary)
	if got := getConn(t, h, c.ID); got.Hold.Held() {
		t.Fatalf("a capture left the hold: %+v", got.Hold)
	}
	if !h.Scheduler.Enrolled(c.ID) {
		t.Fatal("a capture did not re-enroll the held connection")
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		return countRuns(h.Finished(c.ID), store.TriggerScheduled, store.RunSucceeded) == 1
	})
	all := h.Finished(c.ID)
	if n := countRuns(all, store.TriggerScheduled, store.RunFailed); n != 1 {
		t.Fatalf("%d failed scheduled runs, want exactly 1: %+v", n, all)
	}
	if got := getConn(t, h, c.ID); got.Streak.FailCount != 0 || got.Streak.LastRunStatus != store.RunSucceeded {
		t.Fatalf("streak after the success = %+v", got.Streak)
	}
}
