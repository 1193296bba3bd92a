package runner_test

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
)

func newHost(t *testing.T) *hosttest.Host {
	return hosttest.New(t, hosttest.Options{HostEnv: hostEnv(nil), AllowHostEnv: true})
}

func slowConfig(records, delayMS int) map[string]any {
	return demoConfig(map[string]any{"records": records, "record_delay_ms": delayMS})
}

func TestTwoConnectionsOfOneConnectorRunConcurrently(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	a := h.CreateDemo(slowConfig(15, 100), "")
	b := h.CreateDemo(slowConfig(15, 100), "")
	h.SetToken(a.ID, canary)
	h.SetToken(b.ID, canary)
	qa, err := h.Trigger(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	qb, err := h.Trigger(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Both are running at once (the store's clock is the fake one, so
	// the rows' timestamps cannot show the overlap; their states can).
	h.WaitFor(30*time.Second, func() bool {
		ra, _ := h.Store.GetRun(ctx, qa.ID)
		rb, _ := h.Store.GetRun(ctx, qb.ID)
		if ra.Status.Terminal() || rb.Status.Terminal() {
			t.Fatalf("a run ended before the other started: a %s, b %s", ra.Status, rb.Status)
		}
		return ra.Status == store.RunRunning && rb.Status == store.RunRunning
	})
	if _, err := h.Wait(qa.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Wait(qb.ID); err != nil {
		t.Fatal(err)
	}
	// Each connection holds only its own records and checkpoint.
	for _, c := range []string{a.ID, b.ID} {
		page, err := h.Store.ListRecords(ctx, store.RecordQuery{ConnectionID: c, Stream: "events", Limit: 100})
		if err != nil || len(page.Records) != 15 {
			t.Fatalf("connection %s has %d event records (%v)", c, len(page.Records), err)
		}
		for _, r := range page.Records {
			if r.ConnectionID != c {
				t.Fatalf("record of %s listed under %s", r.ConnectionID, c)
			}
		}
	}
}

// One connection never overlaps itself: a manual trigger during its
// scheduled run is refused run_active.
func TestManualTriggerDuringScheduledRunIsRefusedRunActive(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(slowConfig(30, 100), "@every 1h")
	h.SetToken(c.ID, canary)
	base := h.Launcher.Launches() // the Check after capture
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool {
		if h.Launcher.Launches() != base+1 {
			return false
		}
		for _, r := range h.Runs(c.ID) {
			if r.Trigger == store.TriggerScheduled && r.Status == store.RunRunning {
				return true
			}
		}
		return false
	})
	before := h.Launcher.Launches()
	refused, err := h.Trigger(c.ID)
	if failure.CodeOf(err) != failure.RunActive {
		t.Fatalf("manual trigger during a scheduled run = %v, want run_active", err)
	}
	if r, _ := h.Store.GetRun(ctx, refused.ID); r.Status != store.RunRefused || r.FailureCode != failure.RunActive {
		t.Fatalf("refused run row = %+v", r)
	}
	// The refusal names the run that holds the connection, so an
	// operator can cancel it.
	active := findRun(t, h.Runs(c.ID), store.TriggerScheduled, store.RunRunning)
	if !strings.Contains(err.Error(), active.ID) {
		t.Fatalf("refusal %q does not name the active run %s", err, active.ID)
	}
	if h.Launcher.Launches() != before {
		t.Fatal("a child was spawned for the refused run")
	}
	h.WaitFor(30*time.Second, func() bool { return len(h.Finished(c.ID)) == 2 })
	sched := findRun(t, h.Runs(c.ID), store.TriggerScheduled, store.RunSucceeded)
	if sched.Records != int64(30+len(echoNames)) {
		t.Fatalf("scheduled run records = %d", sched.Records)
	}
}

func TestPausingOneOfTwoConnectionsStopsOnlyThatOne(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	a := h.CreateDemo(demoConfig(map[string]any{"records": 1}), "@every 10m")
	b := h.CreateDemo(demoConfig(map[string]any{"records": 1}), "@every 10m")
	h.SetToken(a.ID, canary)
	h.SetToken(b.ID, canary)
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(a.ID)) >= 1 && len(h.Finished(b.ID)) >= 1 })
	if _, err := h.Control.SetState(ctx, "operator", a.ID, store.ConnectionPaused); err != nil {
		t.Fatal(err)
	}
	runsA := len(h.Runs(a.ID))
	runsB := len(h.Finished(b.ID))
	h.AdvanceUntil(time.Minute, 90*time.Second, func() bool { return len(h.Finished(b.ID)) >= runsB+2 })
	if got := len(h.Runs(a.ID)); got != runsA {
		t.Fatalf("paused connection got %d more runs", got-runsA)
	}
	if h.Scheduler.Enrolled(a.ID) || !h.Scheduler.Enrolled(b.ID) {
		t.Fatal("pause touched the wrong job")
	}
	// Resume brings it back.
	if _, err := h.Control.SetState(ctx, "operator", a.ID, store.ConnectionActive); err != nil {
		t.Fatal(err)
	}
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Runs(a.ID)) > runsA })
}

type checkpointState struct {
	Next int `json:"next"`
}

// A crash between records and checkpoint never advances the checkpoint
// past unsaved records, and the next run resumes from it.
func TestCrashBetweenRecordsAndCheckpoint(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 1500, "crash_at": 1200, "fail_triggers": []string{"manual"}}, "")
	h.SetToken(c.ID, canary)
	crashed, err := h.RunNow(c.ID)
	if crashed.Status != store.RunFailed || crashed.FailureCode != failure.ConnectorCrashed {
		t.Fatalf("crashed run = %+v, %v", crashed, err)
	}
	raw, ok, err := h.Store.GetCheckpoint(ctx, c.ID)
	if err != nil || !ok {
		t.Fatalf("checkpoint: %v %v", ok, err)
	}
	var cp checkpointState
	if err := json.Unmarshal(raw, &cp); err != nil {
		t.Fatal(err)
	}
	if cp.Next != 1000 {
		t.Fatalf("checkpoint after crash = %d, want 1000 (the last one sent)", cp.Next)
	}
	// Every record the checkpoint covers is saved.
	saved := eventKeys(t, h, c.ID)
	// The crashed run's counts by stream are what it committed: every
	// key once, on events alone (echo_env is not configured).
	if want := map[string]int64{"events": int64(len(saved))}; !maps.Equal(crashed.StreamRecords, want) || crashed.Records != int64(len(saved)) {
		t.Fatalf("crashed run counts %d %v, want %v", crashed.Records, crashed.StreamRecords, want)
	}
	if got, err := h.Store.GetRun(ctx, crashed.ID); err != nil || !maps.Equal(got.StreamRecords, crashed.StreamRecords) {
		t.Fatalf("stored crashed run counts %v (%v), want %v", got.StreamRecords, err, crashed.StreamRecords)
	}
	for i := 0; i < cp.Next; i++ {
		if !saved[strconv.Itoa(i)] {
			t.Fatalf("checkpoint %d covers record %d, which is not saved", cp.Next, i)
		}
	}
	// A crash is retryable: the retry queued for the manual run resumes
	// and finishes everything.
	h.AdvanceUntil(time.Second, 60*time.Second, func() bool {
		for _, r := range h.Runs(c.ID) {
			if r.Trigger == store.TriggerRetry && r.Status.Terminal() {
				return true
			}
		}
		return false
	})
	retry := findRun(t, h.Runs(c.ID), store.TriggerRetry, store.RunSucceeded)
	if retry.RetryOf != crashed.ID {
		t.Fatalf("retry of %s, want %s", retry.RetryOf, crashed.ID)
	}
	saved = eventKeys(t, h, c.ID)
	if len(saved) != 1500 {
		t.Fatalf("%d records after resume, want 1500", len(saved))
	}
	raw, _, _ = h.Store.GetCheckpoint(ctx, c.ID)
	_ = json.Unmarshal(raw, &cp)
	if cp.Next != 1500 {
		t.Fatalf("final checkpoint %d", cp.Next)
	}
}

func eventKeys(t *testing.T, h *hosttest.Host, connID string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	q := store.RecordQuery{ConnectionID: connID, Stream: "events", Limit: 1000}
	for {
		page, err := h.Store.ListRecords(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			keys[r.Key] = true
		}
		if page.Next == "" {
			return keys
		}
		q.Cursor = page.Next
	}
}

// A retry resolves the credential again: a rotation between the failed
// scheduled run and its retry reaches the retry's child.
func TestRetryResolvesTheCredentialAgain(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 5, "fail_at": 1, "fail_triggers": []string{"scheduled"}, "echo_env": []string{"DEMO_TOKEN"}}, "@every 1h")
	h.SetToken(c.ID, "first-token")
	h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(c.ID)) >= 1 })
	findRun(t, h.Runs(c.ID), store.TriggerScheduled, store.RunFailed)
	h.SetToken(c.ID, "rotated-token") // rotate: an active credential exists
	meta, err := h.Store.GetCredentialMeta(ctx, c.ID)
	if err != nil || meta.RotatedAt.IsZero() {
		t.Fatalf("credential not rotated: %+v %v", meta, err)
	}
	h.AdvanceUntil(time.Second, 60*time.Second, func() bool {
		for _, r := range h.Runs(c.ID) {
			if r.Trigger == store.TriggerRetry && r.Status.Terminal() {
				return true
			}
		}
		return false
	})
	findRun(t, h.Runs(c.ID), store.TriggerRetry, store.RunSucceeded)
	if got := h.EnvRecords(c.ID)["DEMO_TOKEN"].SHA256; got != sha("rotated-token") {
		t.Fatal("the retry did not receive the rotated credential")
	}
}

func TestRefusalsAreRunRows(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	tests := map[string]struct {
		setup     func(id string)
		code      failure.Code
		atTrigger bool
	}{
		"never stored, env absent": {setup: func(string) {}, code: failure.CredentialsRequired},
		"connection revoked": {setup: func(id string) {
			if _, err := h.Control.SetState(ctx, "operator", id, store.ConnectionRevoked); err != nil {
				t.Fatal(err)
			}
		}, code: failure.ConnectionRevoked, atTrigger: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := h.CreateDemo(demoConfig(nil), "")
			tc.setup(c.ID)
			before := h.Launcher.Launches()
			queued, err := h.Trigger(c.ID)
			if tc.atTrigger {
				// Refused before it is queued: a refused row at once.
				if failure.CodeOf(err) != tc.code {
					t.Fatalf("trigger = %v, want %s", err, tc.code)
				}
			} else {
				// Queued, then refused by the launch seam before any
				// child starts.
				if err != nil || queued.Status != store.RunQueued {
					t.Fatalf("trigger = %+v, %v", queued, err)
				}
				if _, err := h.Wait(queued.ID); failure.CodeOf(err) != tc.code {
					t.Fatalf("run = %v, want %s", err, tc.code)
				}
			}
			run, _ := h.Store.GetRun(ctx, queued.ID)
			if run.Status != store.RunRefused || run.FailureCode != tc.code {
				t.Fatalf("run row = %+v", run)
			}
			if h.Launcher.Launches() != before {
				t.Fatal("a child was spawned for a refused run")
			}
		})
	}
	if _, err := h.Trigger("conn_does_not_exist"); failure.CodeOf(err) != failure.ConnectionNotFound {
		t.Fatalf("unknown connection = %v", err)
	}
}

func TestCancelAndShutdown(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	a := h.CreateDemo(slowConfig(600, 100), "")
	b := h.CreateDemo(slowConfig(600, 100), "")
	h.SetToken(a.ID, canary)
	h.SetToken(b.ID, canary)
	ha, err := h.Trigger(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	events, stop := h.Runner.Events().Subscribe(ha.ID)
	defer stop()
	hb, err := h.Trigger(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Follow a until records arrive, then cancel it.
	for ev := range events {
		if ev.Kind == runevents.KindProgress {
			break
		}
	}
	if err := h.Runner.Cancel(ha.ID); err != nil {
		t.Fatal(err)
	}
	ra, _ := h.Wait(ha.ID)
	if ra.Status != store.RunCancelled || ra.FailureCode != failure.Cancelled {
		t.Fatalf("cancelled run = %+v", ra)
	}
	if err := h.Runner.Cancel(ha.ID); err != runner.ErrNotActive {
		t.Fatalf("second cancel = %v", err)
	}
	h.WaitFor(20*time.Second, func() bool { r, _ := h.Store.GetRun(ctx, hb.ID); return r.Status == store.RunRunning })
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	h.Dispatch.Stop()
	if err := h.Runner.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Dispatch.Wait(sctx); err != nil {
		t.Fatal(err)
	}
	rb, _ := h.Wait(hb.ID)
	if rb.Status != store.RunCancelled || rb.FailureCode != failure.HostShutdown {
		t.Fatalf("run at shutdown = %+v", rb)
	}
	// The interrupted run is handed back: queued again as its retry, for
	// another host or the next start.
	q, err := h.Store.ListOccurrences(ctx, store.OccurrenceFilter{ConnectionID: b.ID})
	if err != nil || len(q) != 1 || q[0].Trigger != store.TriggerRetry || q[0].RetryOf != hb.ID || q[0].State != store.OccurrencePending {
		t.Fatalf("queue of the interrupted connection = %+v, %v", q, err)
	}
	leases, _ := h.Store.ListLeases(ctx)
	if len(leases) != 0 {
		t.Fatalf("leases left after shutdown: %+v", leases)
	}
	if pids := demoProcesses(t, h.PluginDir); len(pids) != 0 {
		t.Fatalf("children left after shutdown: %v", pids)
	}
	// A launch after shutdown is refused.
	if _, err := h.Runner.Launch(ctx, runner.Request{ConnectionID: a.ID, Trigger: store.TriggerManual}); failure.CodeOf(err) != failure.HostShutdown {
		t.Fatalf("launch after shutdown = %v", err)
	}
}

func TestRecoverMarksOrphanedRunsFailed(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(demoConfig(nil), "")
	// A run and lease left by a host that died.
	run, err := h.Store.CreateRun(ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerManual, HostID: "dead-host"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.AcquireLease(ctx, store.LeaseRequest{ConnectionID: c.ID, RunID: run.ID, Holder: "dead-host", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.MarkRunRunning(ctx, run.ID, nil); err != nil {
		t.Fatal(err)
	}
	n, err := h.Runner.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v", n, err)
	}
	got, _ := h.Store.GetRun(ctx, run.ID)
	if got.Status != store.RunFailed || got.FailureCode != failure.HostCrashed {
		t.Fatalf("orphaned run = %+v", got)
	}
	if leases, _ := h.Store.ListLeases(ctx); len(leases) != 0 {
		t.Fatalf("lease not reclaimed: %+v", leases)
	}
	// It counts in the connection's streak like any failure, and holds
	// nothing.
	conn := getConn(t, h, c.ID)
	if st := conn.Streak; st.LastRunStatus != store.RunFailed || !st.LastRunAt.Equal(got.EndedAt) || st.FailCode != failure.HostCrashed ||
		st.FailCount != 1 || !st.FailSince.Equal(got.EndedAt) || conn.Hold.Held() {
		t.Fatalf("after Recover: streak %+v hold %+v, want 1 host_crashed ending %s and no hold", st, conn.Hold, got.EndedAt)
	}
}

// A capture is followed by the connector's Check, stored as the
// credential's last validity result.
func TestCaptureRecordsValidity(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	tests := map[string]struct {
		token string
		valid bool
		msg   string
	}{
		"accepted token": {token: canary, valid: true, msg: "valid for demo"},
		"rejected token": {token: "wrong-token", valid: false, msg: "token rejected"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := h.CreateDemo(demoConfig(nil), "")
			capture, err := h.Control.SetCredential(ctx, "operator", c.ID, map[string]string{"DEMO_TOKEN": tc.token}, nil)
			if err != nil {
				t.Fatal(err)
			}
			meta := capture.Credential
			if meta.Validity == nil || meta.Validity.Valid != tc.valid || !strings.Contains(meta.Validity.Message, tc.msg) {
				t.Fatalf("validity = %+v, want valid=%v containing %q", meta.Validity, tc.valid, tc.msg)
			}
			if strings.Contains(meta.Validity.Message, tc.token) {
				t.Fatal("validity message holds the token")
			}
		})
	}
}

// A host the others declared dead (it stalled past the TTL) finds its
// lease gone at the next renewal: its run stops and its child is killed,
// rather than running beside the connection's next run elsewhere.
func TestLostLeaseStopsTheRun(t *testing.T) {
	t.Parallel()
	h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(nil), AllowHostEnv: true, LeaseTTL: 3 * time.Second})
	ctx := context.Background()
	c := h.CreateDemo(slowConfig(600, 100), "")
	h.SetToken(c.ID, canary)
	q, err := h.Trigger(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.WaitFor(30*time.Second, func() bool { r, _ := h.Store.GetRun(ctx, q.ID); return r.Status == store.RunRunning })
	// Another host reaps this one, as if its heartbeats had stopped.
	reaps, err := h.Store.ReapHosts(ctx, "host_other", h.Clock.Now().Add(time.Hour))
	if err != nil || len(reaps) != 1 || len(reaps[0].Runs) != 1 || len(reaps[0].Leases) != 1 {
		t.Fatalf("reap = %+v, %v", reaps, err)
	}
	// Within a renewal period (1 s) the run is no longer active here and
	// its child is gone.
	h.WaitFor(10*time.Second, func() bool {
		return len(h.Runner.Active()) == 0 && len(demoProcesses(t, h.PluginDir)) == 0
	})
	run, _ := h.Store.GetRun(ctx, q.ID)
	if run.Status != store.RunFailed || run.FailureCode != failure.HostCrashed {
		t.Fatalf("run = %+v, want failed host_crashed (the reaper's verdict)", run)
	}
	if !strings.Contains(h.Logs.String(), "lease was taken back") {
		t.Error("the lost lease is not logged")
	}
}

// A config the connector refuses at run time (a connector stricter than
// the schema the host checked, or a config stored before it) fails the
// run invalid_config, and says nothing of the credential: its validity
// stays as the last check left it.
func TestConfigRefusedByTheConnectorIsInvalidConfig(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(demoConfig(nil), "")
	h.SetToken(c.ID, canary)
	before, err := h.Store.GetCredentialMeta(ctx, c.ID)
	if err != nil || before.Validity == nil || !before.Validity.Valid {
		t.Fatalf("validity after capture = %+v, %v", before.Validity, err)
	}
	bad := json.RawMessage(`{"recrods": 5}`)
	if _, err := h.Store.UpdateConnection(ctx, c.ID, store.ConnectionPatch{Config: bad}); err != nil {
		t.Fatal(err)
	}
	run, err := h.RunNow(c.ID)
	if failure.CodeOf(err) != failure.InvalidConfig || run.FailureCode != failure.InvalidConfig {
		t.Fatalf("run = %+v, %v; want invalid_config", run, err)
	}
	h.Clock.Advance(time.Minute) // a new verdict would carry a new time
	if _, err := h.Runner.Check(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	after, _ := h.Store.GetCredentialMeta(ctx, c.ID)
	if after.Validity == nil || !after.Validity.Valid || !after.Validity.CheckedAt.Equal(before.Validity.CheckedAt) {
		t.Fatalf("a config error touched the credential's validity: %+v (before %+v)", after.Validity, before.Validity)
	}
}

// A run's counts by stream are the records it stored on each of the
// demo's streams ("events" and "env"), and sum to its count.
func TestRunCountsRecordsByStream(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(demoConfig(map[string]any{"records": 20}), "")
	h.SetToken(c.ID, canary)
	run, err := h.RunNow(c.ID)
	if err != nil || run.Status != store.RunSucceeded {
		t.Fatalf("run = %+v, %v", run, err)
	}
	stored := map[string]int64{}
	q := store.RecordQuery{ConnectionID: c.ID}
	for {
		page, err := h.Store.ListRecords(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Records {
			stored[r.Stream]++
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	if stored["events"] != 20 || stored["env"] != int64(len(echoNames)) {
		t.Fatalf("stored records by stream %v, want events 20 and env %d", stored, len(echoNames))
	}
	got, err := h.Store.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, n := range got.StreamRecords {
		sum += n
	}
	if !maps.Equal(got.StreamRecords, stored) || !maps.Equal(run.StreamRecords, stored) || sum != got.Records {
		t.Fatalf("run counts %v (returned %v, records %d), want %v", got.StreamRecords, run.StreamRecords, got.Records, stored)
	}
}
