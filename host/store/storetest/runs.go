package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

func testRuns(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	_, err := f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: "conn_missing", Trigger: store.TriggerManual})
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)

	t0 := f.now()
	r := must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerScheduled, HostID: "host-a"}))(t)
	want := store.Run{
		ID: r.ID, ConnectionID: c.ID, Trigger: store.TriggerScheduled, Attempt: 1,
		Status: store.RunQueued, CreatedAt: t0, HostID: "host-a",
	}
	diff(t, "created", want, r)
	if r.ID[:4] != "run_" {
		t.Errorf("id %q is not run_<ulid>", r.ID)
	}

	t1 := f.advance(time.Second)
	f.lease(c.ID, r.ID, "host-a", time.Hour)
	r = must(f.s.MarkRunRunning(f.ctx, r.ID, nil))(t)
	want.Status, want.StartedAt = store.RunRunning, t1
	diff(t, "running", want, r)

	f.commit(c.ID, r.ID, "items", 1, nil, "a", "b", "c")
	f.commit(c.ID, r.ID, "items", 2, nil, "a", "a") // counted as emitted, even when a key repeats
	want.Records = 5

	t2 := f.advance(time.Second)
	res := store.RunResult{Status: store.RunFailed, FailureCode: failure.ConnectorFailed, FailureMessage: "upstream 503"}
	r = must(f.s.FinishRun(f.ctx, r.ID, res))(t)
	want.Status, want.FailureCode, want.FailureMessage, want.EndedAt = store.RunFailed, failure.ConnectorFailed, "upstream 503", t2
	diff(t, "finished", want, r)
	diff(t, "get", want, must(f.s.GetRun(f.ctx, r.ID))(t))

	retry := must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerRetry, Attempt: 2, RetryOf: r.ID}))(t)
	if retry.Attempt != 2 || retry.RetryOf != r.ID || retry.Trigger != store.TriggerRetry {
		t.Errorf("retry = %+v", retry)
	}

	_, err = f.s.GetRun(f.ctx, "run_missing")
	wantErr(t, err, store.ErrRunNotFound, "")
	if msg := store.RunNotFoundMessage(err); !strings.Contains(msg, `"run_missing"`) {
		t.Errorf("not-found message %q does not name the run", msg)
	}
	_, err = f.s.MarkRunRunning(f.ctx, "run_missing", nil)
	wantErr(t, err, store.ErrRunNotFound, "")
	_, err = f.s.FinishRun(f.ctx, "run_missing", store.RunResult{Status: store.RunSucceeded})
	wantErr(t, err, store.ErrRunNotFound, "")
}

func testRunTransitions(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	// runIn returns a run in status from.
	runIn := func(t *testing.T, from store.RunStatus) store.Run {
		r := f.run(c.ID)
		switch from {
		case store.RunQueued:
			return r
		case store.RunRefused:
			return must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: from, FailureCode: failure.RunActive}))(t)
		}
		r = must(f.s.MarkRunRunning(f.ctx, r.ID, nil))(t)
		if from == store.RunRunning {
			return r
		}
		code := failure.Code("")
		if from != store.RunSucceeded {
			code = failure.Cancelled
		}
		return must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: from, FailureCode: code}))(t)
	}
	all := []store.RunStatus{store.RunQueued, store.RunRunning, store.RunSucceeded, store.RunFailed, store.RunRefused, store.RunCancelled}
	allowed := map[store.RunStatus][]store.RunStatus{ // to → from
		store.RunRunning:   {store.RunQueued},
		store.RunSucceeded: {store.RunRunning},
		store.RunFailed:    {store.RunQueued, store.RunRunning},
		store.RunCancelled: {store.RunQueued, store.RunRunning},
		store.RunRefused:   {store.RunQueued},
	}
	for _, from := range all {
		for _, to := range all[1:] {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				r := runIn(t, from)
				var err error
				var got store.Run
				if to == store.RunRunning {
					got, err = f.s.MarkRunRunning(f.ctx, r.ID, nil)
				} else {
					res := store.RunResult{Status: to, FailureCode: failure.RunActive, FailureMessage: "x"}
					if to == store.RunSucceeded {
						res = store.RunResult{Status: to}
					}
					got, err = f.s.FinishRun(f.ctx, r.ID, res)
				}
				if slices.Contains(allowed[to], from) {
					if err != nil {
						t.Fatal(err)
					}
					if got.Status != to {
						t.Errorf("status = %s, want %s", got.Status, to)
					}
					diff(t, "stored", got, must(f.s.GetRun(f.ctx, r.ID))(t))
					return
				}
				wantErr(t, err, store.ErrRunState, "")
				var se *store.RunStateError
				if !errors.As(err, &se) || se.Status != from || se.RunID != r.ID {
					t.Errorf("error = %#v, want *RunStateError{%s, %s}", err, r.ID, from)
				}
				diff(t, "unchanged", r, must(f.s.GetRun(f.ctx, r.ID))(t))
			})
		}
	}
}

func testRunListOrderAndPaging(t *testing.T, f *fixture) {
	a, b := f.connection("alpha"), f.connection("alpha")
	var created []store.Run // oldest first
	for i := range 11 {
		if i%3 == 0 {
			f.advance(time.Second) // some runs share a timestamp, some do not
		}
		conn := a.ID
		if i%2 == 1 {
			conn = b.ID
		}
		var r store.Run
		switch i % 5 {
		case 2: // a scheduled run, then its retry
			r = must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: conn, Trigger: store.TriggerScheduled, HostID: "host-a"}))(t)
		case 3:
			r = must(f.s.CreateRun(f.ctx, store.NewRun{ConnectionID: conn, Trigger: store.TriggerRetry, Attempt: 2,
				RetryOf: created[i-1].ID, HostID: "host-a"}))(t)
		default:
			r = f.run(conn)
		}
		if i%4 == 0 {
			r = must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunRefused, FailureCode: failure.CredentialsRequired}))(t)
		}
		created = append(created, r)
	}
	newestFirst := func(keep func(store.Run) bool) []string {
		out := []string{}
		for i := len(created) - 1; i >= 0; i-- {
			if keep(created[i]) {
				out = append(out, created[i].ID)
			}
		}
		return out
	}
	for name, tc := range map[string]struct {
		filter store.RunFilter
		want   []string
	}{
		"all":           {store.RunFilter{}, newestFirst(func(store.Run) bool { return true })},
		"by connection": {store.RunFilter{ConnectionID: b.ID}, newestFirst(func(r store.Run) bool { return r.ConnectionID == b.ID })},
		"by status":     {store.RunFilter{Status: store.RunRefused}, newestFirst(func(r store.Run) bool { return r.Status == store.RunRefused })},
		"by both": {store.RunFilter{ConnectionID: a.ID, Status: store.RunQueued}, newestFirst(func(r store.Run) bool {
			return r.ConnectionID == a.ID && r.Status == store.RunQueued
		})},
		"by trigger": {store.RunFilter{Trigger: store.TriggerScheduled}, newestFirst(func(r store.Run) bool {
			return r.Trigger == store.TriggerScheduled
		})},
		"by trigger retry": {store.RunFilter{Trigger: store.TriggerRetry}, newestFirst(func(r store.Run) bool {
			return r.Trigger == store.TriggerRetry
		})},
		"by trigger and connection": {store.RunFilter{Trigger: store.TriggerManual, ConnectionID: b.ID}, newestFirst(func(r store.Run) bool {
			return r.Trigger == store.TriggerManual && r.ConnectionID == b.ID
		})},
		"unknown connection": {store.RunFilter{ConnectionID: "conn_missing"}, []string{}},
	} {
		for _, limit := range []int{1, 3, 100} {
			t.Run(fmt.Sprintf("%s/limit %d", name, limit), func(t *testing.T) {
				got := readAllPages(t, limit, len(created), func(cursor string) ([]store.Run, string) {
					filter := tc.filter
					filter.Cursor, filter.Limit = cursor, limit
					page := must(f.s.ListRuns(f.ctx, filter))(t)
					return page.Runs, page.Next
				}, func(r store.Run) string { return r.ID })
				diff(t, "runs, newest first", tc.want, got)
			})
		}
	}
	_, err := f.s.ListRuns(f.ctx, store.RunFilter{Cursor: "not-a-cursor"})
	wantErr(t, err, store.ErrInvalid, "")
}

func testRunValidation(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	for name, n := range map[string]store.NewRun{
		"no connection":      {Trigger: store.TriggerManual},
		"unknown trigger":    {ConnectionID: c.ID, Trigger: "cron"},
		"negative attempt":   {ConnectionID: c.ID, Trigger: store.TriggerManual, Attempt: -1},
		"retry without of":   {ConnectionID: c.ID, Trigger: store.TriggerRetry, Attempt: 2},
		"retry_of not retry": {ConnectionID: c.ID, Trigger: store.TriggerManual, RetryOf: "run_x"},
		"host id not utf-8":  {ConnectionID: c.ID, Trigger: store.TriggerManual, HostID: "\xff"},
	} {
		t.Run("create "+name, func(t *testing.T) {
			_, err := f.s.CreateRun(f.ctx, n)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	r := f.run(c.ID)
	for name, res := range map[string]store.RunResult{
		"not terminal":          {Status: store.RunRunning},
		"unknown status":        {Status: "done"},
		"failed without code":   {Status: store.RunFailed},
		"succeeded with code":   {Status: store.RunSucceeded, FailureCode: failure.ConnectorFailed},
		"succeeded with reason": {Status: store.RunSucceeded, FailureMessage: "why"},
	} {
		t.Run("finish "+name, func(t *testing.T) {
			_, err := f.s.FinishRun(f.ctx, r.ID, res)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	diff(t, "run after invalid finishes", r, must(f.s.GetRun(f.ctx, r.ID))(t))
	if page := must(f.s.ListRuns(f.ctx, store.RunFilter{}))(t); len(page.Runs) != 1 {
		t.Errorf("invalid creates stored runs: %d", len(page.Runs))
	}
}

func testLeases(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r1, r2 := f.run(c.ID), f.run(c.ID)

	t0 := f.now()
	g := f.lease(c.ID, r1.ID, "host-a", time.Minute)
	want := store.Lease{ConnectionID: c.ID, RunID: r1.ID, Holder: "host-a", AcquiredAt: t0, ExpiresAt: t0.Add(time.Minute)}
	diff(t, "grant", store.LeaseGrant{Lease: want}, g)
	diff(t, "listed", []store.Lease{want}, must(f.s.ListLeases(f.ctx))(t))

	// Another run is refused with run_active and told who holds it.
	_, err := f.s.AcquireLease(f.ctx, store.LeaseRequest{ConnectionID: c.ID, RunID: r2.ID, Holder: "host-b", TTL: time.Minute})
	wantErr(t, err, store.ErrLeaseHeld, failure.RunActive)
	var held *store.LeaseHeldError
	if !errors.As(err, &held) {
		t.Fatalf("error %v is not a *LeaseHeldError", err)
	}
	diff(t, "held lease in error", want, held.Lease)

	// The holder re-acquiring extends it.
	t1 := f.advance(30 * time.Second)
	g = f.lease(c.ID, r1.ID, "host-a", time.Minute)
	want.ExpiresAt = t1.Add(time.Minute)
	diff(t, "re-acquired", store.LeaseGrant{Lease: want}, g)

	// Renew: only by its run.
	t2 := f.advance(30 * time.Second)
	_, err = f.s.RenewLease(f.ctx, c.ID, r2.ID, time.Minute)
	wantErr(t, err, store.ErrLeaseNotHeld, "")
	l := must(f.s.RenewLease(f.ctx, c.ID, r1.ID, 2*time.Minute))(t)
	want.ExpiresAt = t2.Add(2 * time.Minute)
	diff(t, "renewed", want, l)
	_, err = f.s.RenewLease(f.ctx, c.ID, r1.ID, 0)
	wantErr(t, err, store.ErrInvalid, "")

	// Release: only by its run, once.
	wantErr(t, f.s.ReleaseLease(f.ctx, c.ID, r2.ID), store.ErrLeaseNotHeld, "")
	if err := f.s.ReleaseLease(f.ctx, c.ID, r1.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, f.s.ReleaseLease(f.ctx, c.ID, r1.ID), store.ErrLeaseNotHeld, "")
	_, err = f.s.RenewLease(f.ctx, c.ID, r1.ID, time.Minute)
	wantErr(t, err, store.ErrLeaseNotHeld, "")
	if got := must(f.s.ListLeases(f.ctx))(t); len(got) != 0 {
		t.Errorf("leases after release = %+v", got)
	}
	f.lease(c.ID, r2.ID, "host-b", time.Minute) // free again

	// Finishing the run that holds the lease releases it with the run.
	must(f.s.FinishRun(f.ctx, r2.ID, store.RunResult{Status: store.RunCancelled, FailureCode: failure.Cancelled}))(t)
	if got := must(f.s.ListLeases(f.ctx))(t); len(got) != 0 {
		t.Errorf("leases after the holder finished = %+v", got)
	}
	wantErr(t, f.s.ReleaseLease(f.ctx, c.ID, r2.ID), store.ErrLeaseNotHeld, "")

	// Guards on the request.
	other := f.connection("alpha")
	done := must(f.s.FinishRun(f.ctx, f.run(other.ID).ID, store.RunResult{Status: store.RunCancelled, FailureCode: failure.Cancelled}))(t)
	for name, tc := range map[string]struct {
		req    store.LeaseRequest
		target error
		code   failure.Code
	}{
		"unknown connection":  {store.LeaseRequest{ConnectionID: "conn_missing", RunID: r1.ID, Holder: "h", TTL: time.Minute}, store.ErrConnectionNotFound, failure.ConnectionNotFound},
		"unknown run":         {store.LeaseRequest{ConnectionID: other.ID, RunID: "run_missing", Holder: "h", TTL: time.Minute}, store.ErrRunNotFound, ""},
		"run of another conn": {store.LeaseRequest{ConnectionID: other.ID, RunID: r1.ID, Holder: "h", TTL: time.Minute}, store.ErrRunNotFound, ""},
		"finished run":        {store.LeaseRequest{ConnectionID: other.ID, RunID: done.ID, Holder: "h", TTL: time.Minute}, store.ErrRunState, ""},
		"no holder":           {store.LeaseRequest{ConnectionID: other.ID, RunID: done.ID, TTL: time.Minute}, store.ErrInvalid, ""},
		"no ttl":              {store.LeaseRequest{ConnectionID: other.ID, RunID: done.ID, Holder: "h"}, store.ErrInvalid, ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.s.AcquireLease(f.ctx, tc.req)
			wantErr(t, err, tc.target, tc.code)
		})
	}
	if f.leased(other.ID) {
		t.Error("a refused request left a lease")
	}
}

// testLeaseContention races many runs of one connection for its lease:
// exactly one wins, every other gets run_active.
func testLeaseContention(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	const n = 16
	runs := make([]store.Run, n)
	for i := range runs {
		runs[i] = f.run(c.ID)
	}
	var (
		wg      sync.WaitGroup
		startCh = make(chan struct{})
		errs    = make([]error, n)
	)
	for i := range runs {
		wg.Go(func() {
			<-startCh
			_, errs[i] = f.s.AcquireLease(f.ctx, store.LeaseRequest{
				ConnectionID: c.ID, RunID: runs[i].ID, Holder: fmt.Sprintf("host-%d", i), TTL: time.Minute,
			})
		})
	}
	close(startCh)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("runs %d and %d both acquired the lease", winner, i)
			}
			winner = i
		case failure.CodeOf(err) != failure.RunActive || !errors.Is(err, store.ErrLeaseHeld):
			t.Errorf("run %d: %v, want run_active", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no run acquired the lease")
	}
	leases := must(f.s.ListLeases(f.ctx))(t)
	if len(leases) != 1 || leases[0].RunID != runs[winner].ID {
		t.Errorf("leases = %+v, want one held by run %d", leases, winner)
	}
}

func testLeaseExpiryTakeover(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	stale, next := f.runningRun(c.ID), f.run(c.ID)
	old := must(f.s.ListLeases(f.ctx))(t)[0]

	// Not yet expired: refused. At exactly expires_at it has expired.
	f.advance(time.Hour - time.Second)
	_, err := f.s.AcquireLease(f.ctx, store.LeaseRequest{ConnectionID: c.ID, RunID: next.ID, Holder: "host-b", TTL: time.Minute})
	wantErr(t, err, store.ErrLeaseHeld, failure.RunActive)
	t1 := f.advance(time.Second)
	if !old.Expired(t1) {
		t.Fatalf("lease expiring at %s not expired at %s", old.ExpiresAt, t1)
	}

	g := f.lease(c.ID, next.ID, "host-b", time.Minute)
	diff(t, "takeover", store.LeaseGrant{
		Lease:    store.Lease{ConnectionID: c.ID, RunID: next.ID, Holder: "host-b", AcquiredAt: t1, ExpiresAt: t1.Add(time.Minute)},
		Replaced: &old,
	}, g)

	// The run that lost its lease can no longer write, renew or release.
	err = f.s.CommitBatch(f.ctx, c.ID, stale.ID, []store.Record{{Stream: "s", Key: "k", Data: []byte(`1`)}}, []byte("cp"))
	wantErr(t, err, store.ErrLeaseNotHeld, "")
	_, err = f.s.RenewLease(f.ctx, c.ID, stale.ID, time.Hour)
	wantErr(t, err, store.ErrLeaseNotHeld, "")
	wantErr(t, f.s.ReleaseLease(f.ctx, c.ID, stale.ID), store.ErrLeaseNotHeld, "")
	if _, ok, _ := f.s.GetCheckpoint(f.ctx, c.ID); ok {
		t.Error("the fenced run moved the checkpoint")
	}
}

func testLeaseReclaim(t *testing.T, f *fixture) {
	var conns []store.Connection
	for range 4 {
		conns = append(conns, f.connection("alpha"))
	}
	lease := func(i int, holder string, ttl time.Duration) store.Lease {
		return f.lease(conns[i].ID, f.run(conns[i].ID).ID, holder, ttl).Lease
	}
	a0 := lease(0, "host-a", time.Hour)
	a1 := lease(1, "host-a", time.Minute)
	b2 := lease(2, "host-b", time.Minute)
	b3 := lease(3, "host-b", time.Hour)
	byID := func(ls ...store.Lease) []store.Lease {
		slices.SortFunc(ls, func(x, y store.Lease) int { return strings.Compare(x.ConnectionID, y.ConnectionID) })
		return ls
	}

	_, err := f.s.ReclaimLeases(f.ctx, store.ReclaimFilter{})
	wantErr(t, err, store.ErrInvalid, "")

	// A host restarting reclaims what its previous incarnation held.
	diff(t, "reclaimed by holder", byID(a0, a1), must(f.s.ReclaimLeases(f.ctx, store.ReclaimFilter{Holder: "host-a"}))(t))
	diff(t, "left", byID(b2, b3), must(f.s.ListLeases(f.ctx))(t))

	// Expired leases of any holder.
	now := f.advance(2 * time.Minute)
	diff(t, "reclaimed by expiry", []store.Lease{b2}, must(f.s.ReclaimLeases(f.ctx, store.ReclaimFilter{ExpiredBy: now}))(t))
	diff(t, "left after expiry", []store.Lease{b3}, must(f.s.ListLeases(f.ctx))(t))
	if got := must(f.s.ReclaimLeases(f.ctx, store.ReclaimFilter{Holder: "host-a", ExpiredBy: now}))(t); len(got) != 0 {
		t.Errorf("second reclaim returned %+v", got)
	}
}
