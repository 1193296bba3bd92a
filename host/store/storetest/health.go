package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// finish ends a new run of connID with res: a queued run for a refusal,
// a running one (leased) otherwise. It returns the final row.
func (f *fixture) finish(connID string, res store.RunResult) store.Run {
	f.t.Helper()
	var r store.Run
	if res.Status == store.RunRefused {
		r = f.run(connID)
	} else {
		r = f.runningRun(connID)
	}
	out, err := f.s.FinishRun(f.ctx, r.ID, res)
	if err != nil {
		f.t.Fatalf("FinishRun(%s, %+v): %v", r.ID, res, err)
	}
	return out
}

func failed(code failure.Code) store.RunResult {
	return store.RunResult{Status: store.RunFailed, FailureCode: code, FailureMessage: "failed with " + string(code)}
}

func refused(code failure.Code) store.RunResult {
	return store.RunResult{Status: store.RunRefused, FailureCode: code, FailureMessage: "refused with " + string(code)}
}

func (f *fixture) conn(id string) store.Connection {
	f.t.Helper()
	return must(f.s.GetConnection(f.ctx, id))(f.t)
}

// A connection's streak counts the latest runs in a row that ended with
// one failure code, since the first of them; a new code restarts it, a
// success clears it, and runs that say nothing about the connection
// (cancelled, host_shutdown, run_active, connection_paused) leave it as
// it was.
func testStreak(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	diff(t, "new connection's streak", store.Streak{}, f.conn(c.ID).Streak)
	first := f.finish(c.ID, failed(failure.Internal))
	f.advance(time.Minute)
	f.finish(c.ID, failed(failure.Internal))
	f.advance(time.Minute)
	third := f.finish(c.ID, failed(failure.Internal))
	st := f.conn(c.ID).Streak
	if st.LastRunStatus != store.RunFailed || st.FailCode != failure.Internal || st.FailCount != 3 ||
		!st.FailSince.Equal(first.EndedAt) || !st.LastRunAt.Equal(third.EndedAt) {
		t.Fatalf("after three internal failures: %+v (first ended %s, third %s)", st, first.EndedAt, third.EndedAt)
	}

	// Runs that are not the connection's doing leave it as it was.
	f.advance(time.Minute)
	for _, res := range []store.RunResult{
		{Status: store.RunCancelled, FailureCode: failure.Cancelled, FailureMessage: "cancelled by operator"},
		{Status: store.RunCancelled, FailureCode: failure.HostShutdown, FailureMessage: "host is shutting down"},
		failed(failure.HostShutdown),
		refused(failure.RunActive),
		refused(failure.ConnectionPaused),
	} {
		f.finish(c.ID, res)
		diff(t, "streak after a run ended "+string(res.Status)+"/"+string(res.FailureCode), st, f.conn(c.ID).Streak)
	}

	// A new code restarts the count, refused or failed alike.
	f.advance(time.Minute)
	other := f.finish(c.ID, refused(failure.CredentialsRequired))
	st = f.conn(c.ID).Streak
	if st.LastRunStatus != store.RunRefused || st.FailCode != failure.CredentialsRequired || st.FailCount != 1 ||
		!st.FailSince.Equal(other.EndedAt) {
		t.Fatalf("after a new code: %+v", st)
	}
	f.advance(time.Minute)
	f.finish(c.ID, failed(failure.CredentialsRequired))
	if st := f.conn(c.ID).Streak; st.FailCount != 2 || !st.FailSince.Equal(other.EndedAt) {
		t.Fatalf("the same code, failed after refused: %+v", st)
	}

	// A success clears it.
	f.advance(time.Minute)
	ok := f.finish(c.ID, store.RunResult{Status: store.RunSucceeded})
	want := store.Streak{LastRunStatus: store.RunSucceeded, LastRunAt: ok.EndedAt}
	diff(t, "streak after a success", want, f.conn(c.ID).Streak)

	// Another connection's runs are not this one's.
	d := f.connection("alpha")
	f.finish(d.ID, failed(failure.Internal))
	diff(t, "streak after another connection failed", want, f.conn(c.ID).Streak)
}

// A run finished with Hold holds its connection in the same transaction:
// the hold names the code, message, instant and run; the schedule's
// generation moves and its pending scheduled occurrences go; RecordTicks
// answers TickHeld from then on. A second hold keeps the first.
func testHold(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	due := f.now().Truncate(time.Second).Add(time.Minute)
	diff(t, "tick before the hold", []store.TickOutcome{store.TickRecorded}, f.record(f.tick(c, due, 0)))
	before := f.conn(c.ID)

	res := refused(failure.StaticSecretUnavailable)
	res.Hold = true
	run := f.finish(c.ID, res)
	got := f.conn(c.ID)
	want := store.Hold{Code: failure.StaticSecretUnavailable, Message: res.FailureMessage, At: run.EndedAt, RunID: run.ID}
	diff(t, "hold", want, got.Hold)
	if !got.Hold.Held() {
		t.Fatal("Held() = false for a held connection")
	}
	if got.ScheduleGen <= before.ScheduleGen {
		t.Fatalf("the hold left the schedule generation at %d (was %d)", got.ScheduleGen, before.ScheduleGen)
	}
	if q := f.queue(c.ID); len(q) != 0 {
		t.Fatalf("the hold left the scheduled occurrence pending: %+v", q)
	}
	for _, at := range []time.Time{due.Add(time.Hour), due.Add(24 * time.Hour)} {
		diff(t, "tick of a held connection", []store.TickOutcome{store.TickHeld}, f.record(f.tick(c, at, 0)))
	}
	if q := f.queue(c.ID); len(q) != 0 {
		t.Fatalf("a held connection's tick queued %+v", q)
	}
	if got := f.conn(c.ID); !got.LastDueAt.IsZero() {
		t.Fatalf("a held tick moved the watermark to %s", got.LastDueAt)
	}

	// Another hold keeps the first; a failure without Hold keeps it too.
	f.advance(time.Minute)
	again := refused(failure.CredentialsRequired)
	again.Hold = true
	f.finish(c.ID, again)
	f.finish(c.ID, failed(failure.Internal))
	diff(t, "hold after more failures", want, f.conn(c.ID).Hold)

	// A connection not held is not affected.
	other := f.connection("alpha")
	diff(t, "another connection's tick", []store.TickOutcome{store.TickRecorded}, f.record(f.tick(other, due, 0)))

	// A success (a manual run of an operator) releases it and moves the
	// schedule again, so the scheduler enrolls it afresh.
	gen := f.conn(c.ID).ScheduleGen
	f.finish(c.ID, store.RunResult{Status: store.RunSucceeded})
	got = f.conn(c.ID)
	if got.Hold.Held() || got.ScheduleGen <= gen {
		t.Fatalf("after a success: hold %+v, generation %d (was %d)", got.Hold, got.ScheduleGen, gen)
	}
	diff(t, "tick after the release", []store.TickOutcome{store.TickRecorded}, f.record(f.tick(c, due.Add(48*time.Hour), 0)))
}

// BackoffUntil is stored with the run; ticks due before it are held, ticks
// due at or after it are recorded; a success clears it.
func testBackoff(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	until := f.trunc(f.now().Add(3 * time.Hour))
	res := failed(failure.Internal)
	res.BackoffUntil = until
	f.finish(c.ID, res)
	got := f.conn(c.ID)
	if !got.BackoffUntil.Equal(until) || got.Hold.Held() {
		t.Fatalf("after a backed-off failure: backoff %s (want %s), hold %+v", got.BackoffUntil, until, got.Hold)
	}
	diff(t, "ticks before the backoff", []store.TickOutcome{store.TickHeld, store.TickHeld},
		[]store.TickOutcome{f.record(f.tick(c, until.Add(-2*time.Hour), 0))[0], f.record(f.tick(c, until.Add(-time.Microsecond), 0))[0]})
	if q := f.queue(c.ID); len(q) != 0 {
		t.Fatalf("a tick before the backoff queued %+v", q)
	}
	diff(t, "tick at the backoff", []store.TickOutcome{store.TickRecorded}, f.record(f.tick(c, until, 0)))
	if q := f.queue(c.ID); len(q) != 1 || !q[0].DueAt.Equal(until) {
		t.Fatalf("queue after the tick at the backoff: %+v", q)
	}

	// A later failure without a backoff keeps it; one with a later
	// backoff moves it.
	d := f.connection("alpha")
	res.BackoffUntil = until
	f.finish(d.ID, res)
	f.finish(d.ID, failed(failure.Internal))
	if got := f.conn(d.ID); !got.BackoffUntil.Equal(until) {
		t.Fatalf("a failure without a backoff changed it to %s", got.BackoffUntil)
	}
	later := until.Add(time.Hour)
	res.BackoffUntil = later
	f.finish(d.ID, res)
	if got := f.conn(d.ID); !got.BackoffUntil.Equal(later) {
		t.Fatalf("backoff = %s, want %s", got.BackoffUntil, later)
	}
	diff(t, "tick between the two backoffs", []store.TickOutcome{store.TickHeld}, f.record(f.tick(d, until, 0)))
	f.finish(d.ID, store.RunResult{Status: store.RunSucceeded})
	if got := f.conn(d.ID); !got.BackoffUntil.IsZero() || got.Streak.FailCount != 0 {
		t.Fatalf("after a success: backoff %s, streak %+v", got.BackoffUntil, got.Streak)
	}
	diff(t, "tick after the success", []store.TickOutcome{store.TickRecorded}, f.record(f.tick(d, until, 0)))
}

// Each operator action releases the holds it addresses, in its own
// transaction, and no other; each clears the backoff.
func testHoldRelease(t *testing.T, f *fixture) {
	type op struct {
		name string
		// credential: the connection needs an active credential first.
		credential bool
		// paused: the connection is paused after the hold.
		paused   bool
		do       func(t *testing.T, c store.Connection)
		releases []failure.Code
		// keepsBackoff: the action leaves a backoff as it is.
		keepsBackoff bool
	}
	ops := []op{
		{name: "capture", do: func(t *testing.T, c store.Connection) { f.capture(c.ID, "new") },
			releases: store.CredentialHoldCodes},
		{name: "rotate", credential: true, do: func(t *testing.T, c store.Connection) {
			must(f.s.RotateCredential(f.ctx, sealed(c.ID, "rotated")))(t)
		}, releases: store.CredentialHoldCodes},
		{name: "validity ok", credential: true, do: func(t *testing.T, c store.Connection) {
			must(f.s.SetCredentialValidity(f.ctx, c.ID, true, ""))(t)
		}, releases: []failure.Code{failure.CredentialRejected}},
		{name: "validity rejected", credential: true, do: func(t *testing.T, c store.Connection) {
			must(f.s.SetCredentialValidity(f.ctx, c.ID, false, "provider said no"))(t)
		}, keepsBackoff: true},
		{name: "new config", do: func(t *testing.T, c store.Connection) {
			must(f.s.UpdateConnection(f.ctx, c.ID, store.ConnectionPatch{Config: json.RawMessage(`{"region":"us"}`)}))(t)
		}, releases: []failure.Code{failure.InvalidConfig}},
		// Submitting a config is the operator's answer even when it
		// equals the stored one as JSON ({"records": 5.0} and 5 are equal
		// JSON, not equal to a connector that decodes an int64).
		{name: "same config", do: func(t *testing.T, c store.Connection) {
			must(f.s.UpdateConnection(f.ctx, c.ID, store.ConnectionPatch{Config: json.RawMessage(`{"region":"eu"}`)}))(t)
		}, releases: []failure.Code{failure.InvalidConfig}},
		{name: "label", do: func(t *testing.T, c store.Connection) {
			l := "renamed"
			must(f.s.UpdateConnection(f.ctx, c.ID, store.ConnectionPatch{Label: &l}))(t)
		}, keepsBackoff: true},
		{name: "new schedule", do: func(t *testing.T, c store.Connection) {
			sch := store.Schedule{Spec: "@every 5m"}
			must(f.s.UpdateConnection(f.ctx, c.ID, store.ConnectionPatch{Schedule: &sch}))(t)
		}},
		{name: "resume", paused: true, do: func(t *testing.T, c store.Connection) {
			must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionActive))(t)
		}},
		{name: "clear connector_not_found", do: func(t *testing.T, c store.Connection) {
			if _, _, err := f.s.ClearHold(f.ctx, c.ID, failure.ConnectorNotFound); err != nil {
				t.Fatal(err)
			}
		}, releases: []failure.Code{failure.ConnectorNotFound}},
		{name: "clear any", do: func(t *testing.T, c store.Connection) {
			if _, _, err := f.s.ClearHold(f.ctx, c.ID); err != nil {
				t.Fatal(err)
			}
		}, releases: store.HoldCodes},
	}
	for _, o := range ops {
		for _, code := range store.HoldCodes {
			t.Run(o.name+"/"+string(code), func(t *testing.T) {
				c := f.connection("alpha")
				if o.credential {
					f.capture(c.ID, "old")
				}
				until := f.trunc(f.now().Add(time.Hour))
				res := refused(code)
				res.Hold, res.BackoffUntil = true, until
				f.finish(c.ID, res)
				if o.paused {
					must(f.s.SetConnectionState(f.ctx, c.ID, store.ConnectionPaused))(t)
				}
				o.do(t, c)
				got := f.conn(c.ID)
				release := false
				for _, r := range o.releases {
					release = release || r == code
				}
				if got.Hold.Held() == release {
					t.Fatalf("%s of a connection held after %s: hold %+v, want released=%v", o.name, code, got.Hold, release)
				}
				if got.Hold.Held() && got.Hold.Code != code {
					t.Fatalf("hold code changed to %s", got.Hold.Code)
				}
				keep := o.keepsBackoff && !release
				if keep != got.BackoffUntil.Equal(until) || (!keep && !got.BackoffUntil.IsZero()) {
					t.Fatalf("%s: backoff %s, want kept=%v (%s)", o.name, got.BackoffUntil, keep, until)
				}
			})
		}
	}

	// ClearHold of a connection neither held nor backed off changes
	// nothing, and says so.
	c := f.connection("alpha")
	if _, changed, err := f.s.ClearHold(f.ctx, c.ID); err != nil || changed {
		t.Fatalf("ClearHold of a free connection: changed=%v err=%v", changed, err)
	}
	_, _, err := f.s.ClearHold(f.ctx, "conn_missing")
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
}

// Hold is for the codes only a person can fix.
func testHoldValidation(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	for _, code := range []failure.Code{failure.Internal, failure.RunActive, failure.Cancelled, "connector_failed"} {
		r := f.run(c.ID)
		res := refused(code)
		res.Hold = true
		_, err := f.s.FinishRun(f.ctx, r.ID, res)
		wantErr(t, err, store.ErrInvalid, "")
		if got := must(f.s.GetRun(f.ctx, r.ID))(t); got.Status != store.RunQueued {
			t.Fatalf("a refused Hold finished the run: %+v", got)
		}
	}
	for _, code := range store.HoldCodes {
		if !store.IsHoldCode(code) {
			t.Fatalf("IsHoldCode(%s) = false", code)
		}
		r := f.run(c.ID)
		res := refused(code)
		res.Hold = true
		must(f.s.FinishRun(f.ctx, r.ID, res))(t)
	}
	if got := f.conn(c.ID); got.Hold.Code != store.HoldCodes[0] {
		t.Fatalf("hold = %+v, want the first code %s", got.Hold, store.HoldCodes[0])
	}
}

// A run the reap of a dead host fails host_crashed counts in its
// connection's streak exactly as FinishRun counts it (it follows a
// host_crashed finished by the runner's Recover, and ends a success), in
// the reap's transaction; the reap holds nothing and sets no backoff.
func testStreakCountsReapedRuns(t *testing.T, f *fixture) {
	must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-a"}))(t) // the fixture's runs are host-a's
	must(f.s.RegisterHost(f.ctx, store.NewHost{ID: "host-self"}))(t)
	c, d := f.connection("alpha"), f.connection("alpha")
	first := f.finish(c.ID, failed(failure.HostCrashed)) // as Recover's failRun ends it
	f.finish(d.ID, store.RunResult{Status: store.RunSucceeded})
	f.advance(time.Minute)
	rc, rd := f.runningRun(c.ID), f.runningRun(d.ID)

	f.advance(time.Minute)
	must(f.s.HeartbeatHost(f.ctx, "host-self", 0))(t)
	reaps := must(f.s.ReapHosts(f.ctx, "host-self", f.now().Add(-30*time.Second)))(t)
	if len(reaps) != 1 || reaps[0].Host.ID != "host-a" || len(reaps[0].Runs) != 2 {
		t.Fatalf("reaped %+v", reaps)
	}
	ended := map[string]store.Run{}
	for _, r := range reaps[0].Runs {
		if r.Status != store.RunFailed || r.FailureCode != failure.HostCrashed || r.EndedAt.IsZero() {
			t.Fatalf("reaped run %+v", r)
		}
		ended[r.ID] = r
	}
	if _, ok := ended[rc.ID]; !ok {
		t.Fatalf("run %s not reaped: %+v", rc.ID, reaps[0].Runs)
	}
	if _, ok := ended[rd.ID]; !ok {
		t.Fatalf("run %s not reaped: %+v", rd.ID, reaps[0].Runs)
	}
	for _, tc := range []struct {
		conn string
		want store.Streak
	}{
		{c.ID, store.Streak{LastRunStatus: store.RunFailed, LastRunAt: ended[rc.ID].EndedAt,
			FailCode: failure.HostCrashed, FailCount: 2, FailSince: first.EndedAt}},
		{d.ID, store.Streak{LastRunStatus: store.RunFailed, LastRunAt: ended[rd.ID].EndedAt,
			FailCode: failure.HostCrashed, FailCount: 1, FailSince: ended[rd.ID].EndedAt}},
	} {
		got := f.conn(tc.conn)
		diff(t, "streak of "+tc.conn+" after the reap", tc.want, got.Streak)
		if got.Hold.Held() || !got.BackoffUntil.IsZero() {
			t.Errorf("the reap held or backed off %s: hold %+v, backoff %s", tc.conn, got.Hold, got.BackoffUntil)
		}
	}
}
