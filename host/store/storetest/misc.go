package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

func testAudit(t *testing.T, f *fixture) {
	t0 := f.now()
	in := store.AuditEvent{
		ID: "caller-chosen", At: t0.Add(-time.Hour), // ignored: the store sets both
		Actor: "operator", Operation: "credential.capture", TargetKind: "credential", TargetID: "conn_1",
		Outcome: store.AuditSucceeded, Detail: json.RawMessage(`{"names":["API_TOKEN"],"kind":"static_secret"}`),
	}
	got := must(f.s.AppendAudit(f.ctx, in))(t)
	if !strings.HasPrefix(got.ID, "aud_") || got.ID == in.ID {
		t.Errorf("id = %q, want a store-made aud_ id", got.ID)
	}
	want := in
	want.ID, want.At = got.ID, t0
	diff(t, "appended", want, got)

	noDetail := must(f.s.AppendAudit(f.ctx, store.AuditEvent{
		Actor: "scheduler", Operation: "connection.enroll", TargetKind: "connection", TargetID: "conn_2", Outcome: store.AuditRefused,
	}))(t)
	diff(t, "default detail", json.RawMessage(`{}`), noDetail.Detail)

	page := must(f.s.ListAudit(f.ctx, store.AuditFilter{}))(t)
	if len(page.Events) != 2 || page.Events[0].ID != noDetail.ID || page.Events[1].ID != got.ID || page.Next != "" {
		t.Errorf("ListAudit = %+v, want both, newest first", page)
	}
	diff(t, "listed", want, page.Events[1])

	for name, e := range map[string]store.AuditEvent{
		"no actor":          {Operation: "x", TargetKind: "y", Outcome: store.AuditFailed},
		"no operation":      {Actor: "a", TargetKind: "y", Outcome: store.AuditFailed},
		"no target kind":    {Actor: "a", Operation: "x", Outcome: store.AuditFailed},
		"no outcome":        {Actor: "a", Operation: "x", TargetKind: "y"},
		"detail not object": {Actor: "a", Operation: "x", TargetKind: "y", Outcome: store.AuditFailed, Detail: json.RawMessage(`"s"`)},
		"detail not json":   {Actor: "a", Operation: "x", TargetKind: "y", Outcome: store.AuditFailed, Detail: json.RawMessage(`{`)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.s.AppendAudit(f.ctx, e)
			wantErr(t, err, store.ErrInvalid, "")
		})
	}
	if page := must(f.s.ListAudit(f.ctx, store.AuditFilter{}))(t); len(page.Events) != 2 {
		t.Errorf("invalid events were stored: %d events", len(page.Events))
	}
}

// testAuditAppendOnlyAPI checks the audit role offers no way to change or
// remove an event, and that nothing in Store does either.
func testAuditAppendOnlyAPI(t *testing.T, f *fixture) {
	audit := reflect.TypeFor[store.Audit]()
	var methods []string
	for i := range audit.NumMethod() {
		methods = append(methods, audit.Method(i).Name)
	}
	diff(t, "store.Audit methods", []string{"AppendAudit", "ListAudit"}, methods)

	full := reflect.TypeFor[store.Store]()
	for i := range full.NumMethod() {
		name := full.Method(i).Name
		if strings.Contains(name, "Audit") && name != "AppendAudit" && name != "ListAudit" {
			t.Errorf("store.Store has %s: the audit log must be append-only", name)
		}
	}

	// Every other operation leaves existing events as they were.
	c := f.connection("alpha")
	e := must(f.s.AppendAudit(f.ctx, store.AuditEvent{
		Actor: "operator", Operation: "connection.delete", TargetKind: "connection", TargetID: c.ID, Outcome: store.AuditSucceeded,
	}))(t)
	must(f.s.DeleteConnection(f.ctx, c.ID))(t)
	page := must(f.s.ListAudit(f.ctx, store.AuditFilter{TargetID: c.ID}))(t)
	diff(t, "event after its target was deleted", []store.AuditEvent{e}, page.Events)
}

func testAuditPaging(t *testing.T, f *fixture) {
	var want []string // newest first
	for i := range 13 {
		if i%4 == 0 {
			f.advance(time.Millisecond)
		}
		kind, op := "connection", "connection.update"
		if i%3 == 0 {
			kind, op = "credential", "credential.rotate"
		}
		e := must(f.s.AppendAudit(f.ctx, store.AuditEvent{
			Actor: "operator", Operation: op, TargetKind: kind, TargetID: fmt.Sprintf("conn_%d", i%2), Outcome: store.AuditSucceeded,
		}))(t)
		want = append([]string{fmt.Sprintf("%s|%s|%s", e.ID, kind+"/"+e.TargetID, op)}, want...)
	}
	filter := func(keep func(kind, target, op string) bool) []string {
		out := []string{}
		for _, w := range want {
			parts := strings.Split(w, "|")
			kt := strings.SplitN(parts[1], "/", 2)
			if keep(kt[0], kt[1], parts[2]) {
				out = append(out, parts[0])
			}
		}
		return out
	}
	for name, tc := range map[string]struct {
		f    store.AuditFilter
		want []string
	}{
		"all":       {store.AuditFilter{}, filter(func(string, string, string) bool { return true })},
		"target":    {store.AuditFilter{TargetKind: "connection", TargetID: "conn_1"}, filter(func(k, id, _ string) bool { return k == "connection" && id == "conn_1" })},
		"target id": {store.AuditFilter{TargetID: "conn_0"}, filter(func(_, id, _ string) bool { return id == "conn_0" })},
		"operation": {store.AuditFilter{Operation: "credential.rotate"}, filter(func(_, _, op string) bool { return op == "credential.rotate" })},
		"none":      {store.AuditFilter{Operation: "keyset.rotate"}, []string{}},
	} {
		for _, limit := range []int{1, 4, 100} {
			t.Run(fmt.Sprintf("%s/limit %d", name, limit), func(t *testing.T) {
				got := readAllPages(t, limit, len(want), func(cursor string) ([]store.AuditEvent, string) {
					af := tc.f
					af.Cursor, af.Limit = cursor, limit
					page := must(f.s.ListAudit(f.ctx, af))(t)
					return page.Events, page.Next
				}, func(e store.AuditEvent) string { return e.ID })
				diff(t, "events, newest first", tc.want, got)
			})
		}
	}
	_, err := f.s.ListAudit(f.ctx, store.AuditFilter{Cursor: "bm90LWpzb24"})
	wantErr(t, err, store.ErrInvalid, "")
}

func testEnrollment(t *testing.T, f *fixture) {
	a, b, c := f.connection("alpha"), f.connection("alpha"), f.connection("beta")
	t0 := f.now()
	report := []store.EnrollmentEntry{
		{ConnectionID: a.ID, ConnectorKey: "alpha", Outcome: store.Enrolled},
		{ConnectionID: b.ID, ConnectorKey: "alpha", Outcome: store.SkippedEnv, Reason: "API_TOKEN unset and no stored credential"},
	}
	if err := f.s.ReplaceEnrollment(f.ctx, report); err != nil {
		t.Fatal(err)
	}
	stamped := func(es []store.EnrollmentEntry, at time.Time) []store.EnrollmentEntry {
		out := make([]store.EnrollmentEntry, len(es))
		for i, e := range es {
			e.EvaluatedAt = at
			out[i] = e
		}
		return sortEntries(out)
	}
	diff(t, "first report", stamped(report, t0), must(f.s.ListEnrollment(f.ctx))(t))

	// Replacing drops entries not in the new report.
	t1 := f.advance(time.Minute)
	next := []store.EnrollmentEntry{{ConnectionID: c.ID, ConnectorKey: "beta", Outcome: store.SkippedNoSchedule}}
	if err := f.s.ReplaceEnrollment(f.ctx, next); err != nil {
		t.Fatal(err)
	}
	diff(t, "replaced report", stamped(next, t1), must(f.s.ListEnrollment(f.ctx))(t))

	// A credential captured later re-evaluates one connection.
	t2 := f.advance(time.Minute)
	up := store.EnrollmentEntry{ConnectionID: b.ID, ConnectorKey: "alpha", Outcome: store.Enrolled}
	got := must(f.s.UpsertEnrollment(f.ctx, up))(t)
	up.EvaluatedAt = t2
	diff(t, "upserted", up, got)
	t3 := f.advance(time.Minute)
	up2 := store.EnrollmentEntry{ConnectionID: b.ID, ConnectorKey: "alpha", Outcome: store.SkippedPaused}
	must(f.s.UpsertEnrollment(f.ctx, up2))(t)
	up2.EvaluatedAt = t3
	diff(t, "after upserts", sortEntries(append(stamped(next, t1), up2)), must(f.s.ListEnrollment(f.ctx))(t))

	// EnrollmentOf reads just the entries asked for, by connection id;
	// a connection without one and an unknown id are absent.
	all := must(f.s.ListEnrollment(f.ctx))(t)
	byID := map[string]store.EnrollmentEntry{}
	for _, e := range all {
		byID[e.ConnectionID] = e
	}
	diff(t, "EnrollmentOf one", map[string]store.EnrollmentEntry{b.ID: byID[b.ID]},
		must(f.s.EnrollmentOf(f.ctx, []string{b.ID, "conn_missing"}))(t))
	diff(t, "EnrollmentOf all", byID, must(f.s.EnrollmentOf(f.ctx, []string{a.ID, c.ID, b.ID, b.ID}))(t))
	if got := must(f.s.EnrollmentOf(f.ctx, nil))(t); len(got) != 0 {
		t.Errorf("EnrollmentOf(nil) = %v, want empty", got)
	}

	// A bad report changes nothing.
	before := must(f.s.ListEnrollment(f.ctx))(t)
	err := f.s.ReplaceEnrollment(f.ctx, []store.EnrollmentEntry{
		{ConnectionID: a.ID, ConnectorKey: "alpha", Outcome: store.Enrolled},
		{ConnectionID: "conn_missing", ConnectorKey: "alpha", Outcome: store.Enrolled},
	})
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	err = f.s.ReplaceEnrollment(f.ctx, []store.EnrollmentEntry{
		{ConnectionID: a.ID, ConnectorKey: "alpha", Outcome: store.Enrolled},
		{ConnectionID: a.ID, ConnectorKey: "alpha", Outcome: store.SkippedEnv},
	})
	wantErr(t, err, store.ErrInvalid, "")
	err = f.s.ReplaceEnrollment(f.ctx, []store.EnrollmentEntry{{ConnectionID: a.ID, ConnectorKey: "alpha"}})
	wantErr(t, err, store.ErrInvalid, "")
	_, err = f.s.UpsertEnrollment(f.ctx, store.EnrollmentEntry{ConnectionID: "conn_missing", ConnectorKey: "alpha", Outcome: store.Enrolled})
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	diff(t, "after bad reports", before, must(f.s.ListEnrollment(f.ctx))(t))

	// An empty report clears it.
	if err := f.s.ReplaceEnrollment(f.ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := must(f.s.ListEnrollment(f.ctx))(t); len(got) != 0 {
		t.Errorf("after empty report: %+v", got)
	}
}

// Hosts booting together each replace the report at once: every call
// succeeds and the report holds each connection once.
func testEnrollmentReplacedConcurrently(t *testing.T, f *fixture) {
	var entries []store.EnrollmentEntry
	for range 20 {
		c := f.connection("alpha")
		entries = append(entries, store.EnrollmentEntry{ConnectionID: c.ID, ConnectorKey: "alpha", Outcome: store.Enrolled})
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.s.ReplaceEnrollment(f.ctx, entries)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
	}
	if got := must(f.s.ListEnrollment(f.ctx))(t); len(got) != len(entries) {
		t.Fatalf("report holds %d entries, want %d", len(got), len(entries))
	}
}

// Hosts booting together register the same connector at once: one
// creates it, the others find it.
func testConnectorRegisteredConcurrently(t *testing.T, f *fixture) {
	var wg sync.WaitGroup
	ups := make([]store.ConnectorUpsert, 4)
	errs := make([]error, 4)
	for i := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ups[i], errs[i] = f.s.UpsertConnector(f.ctx, registration("together", "1.0.0", 'c'))
		}()
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		if ups[i].Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d hosts created the connector, want 1", created)
	}
}

func sortEntries(es []store.EnrollmentEntry) []store.EnrollmentEntry {
	slices.SortFunc(es, func(a, b store.EnrollmentEntry) int { return strings.Compare(a.ConnectionID, b.ConnectionID) })
	return es
}

func testLocks(t *testing.T, f *fixture) {
	t0 := f.now()
	l := must(f.s.AcquireLock(f.ctx, "job:conn_1", "host-a", time.Minute))(t)
	diff(t, "acquired", store.Lock{Name: "job:conn_1", Holder: "host-a", AcquiredAt: t0, ExpiresAt: t0.Add(time.Minute)}, l)

	_, err := f.s.AcquireLock(f.ctx, "job:conn_1", "host-b", time.Minute)
	wantErr(t, err, store.ErrLockHeld, "")
	must(f.s.AcquireLock(f.ctx, "job:conn_2", "host-b", time.Minute))(t) // other names are independent

	t1 := f.advance(30 * time.Second)
	l = must(f.s.AcquireLock(f.ctx, "job:conn_1", "host-a", time.Minute))(t)
	diff(t, "extended", store.Lock{Name: "job:conn_1", Holder: "host-a", AcquiredAt: t0, ExpiresAt: t1.Add(time.Minute)}, l)

	t2 := f.advance(time.Minute)
	l = must(f.s.AcquireLock(f.ctx, "job:conn_1", "host-b", time.Minute))(t)
	diff(t, "taken over after expiry", store.Lock{Name: "job:conn_1", Holder: "host-b", AcquiredAt: t2, ExpiresAt: t2.Add(time.Minute)}, l)

	wantErr(t, f.s.ReleaseLock(f.ctx, "job:conn_1", "host-a"), store.ErrLockNotHeld, "")
	if err := f.s.ReleaseLock(f.ctx, "job:conn_1", "host-b"); err != nil {
		t.Fatal(err)
	}
	must(f.s.AcquireLock(f.ctx, "job:conn_1", "host-a", time.Minute))(t)

	for name, call := range map[string]func() error{
		"no name":   func() error { _, err := f.s.AcquireLock(f.ctx, "", "h", time.Minute); return err },
		"no holder": func() error { _, err := f.s.AcquireLock(f.ctx, "n", "", time.Minute); return err },
		"no ttl":    func() error { _, err := f.s.AcquireLock(f.ctx, "n", "h", 0); return err },
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, call(), store.ErrInvalid, "") })
	}
}

// testTimestampsUTC runs the clock in a +05:00 zone: every time the store
// returns, fresh or read back, is the same instant in UTC.
func testTimestampsUTC(t *testing.T, f *fixture) {
	if f.clock.Now().Location() == time.UTC {
		t.Fatal("the suite clock must not be in UTC for this test to mean anything")
	}
	c := f.connection("alpha")
	r := f.runningRun(c.ID)
	f.commit(c.ID, r.ID, "s", 1, []byte("cp"), "k")
	f.capture(c.ID, "ct")
	must(f.s.SetCredentialValidity(f.ctx, c.ID, true, ""))(t)
	must(f.s.RotateCredential(f.ctx, sealed(c.ID, "ct2")))(t)
	must(f.s.SetCredentialValidity(f.ctx, c.ID, true, ""))(t)
	must(f.s.RevokeCredential(f.ctx, c.ID))(t)
	must(f.s.DeleteCredential(f.ctx, c.ID))(t)
	leases := must(f.s.ListLeases(f.ctx))(t) // read before FinishRun releases it
	must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunSucceeded}))(t)
	must(f.s.UpsertEnrollment(f.ctx, store.EnrollmentEntry{ConnectionID: c.ID, ConnectorKey: "alpha", Outcome: store.Enrolled}))(t)
	e := must(f.s.AppendAudit(f.ctx, store.AuditEvent{Actor: "a", Operation: "o", TargetKind: "k", Outcome: store.AuditSucceeded}))(t)
	lock := must(f.s.AcquireLock(f.ctx, "n", "h", time.Minute))(t)

	now := f.now()
	check := func(what string, ts ...time.Time) {
		t.Helper()
		for i, tm := range ts {
			if tm.IsZero() {
				t.Errorf("%s[%d] is zero", what, i)
				continue
			}
			if tm.Location() != time.UTC {
				t.Errorf("%s[%d] = %s, not in UTC", what, i, tm)
			}
			if !tm.Equal(now) && !tm.Equal(now.Add(time.Hour)) && !tm.Equal(now.Add(time.Minute)) {
				t.Errorf("%s[%d] = %s, not an instant the clock gave", what, i, tm)
			}
		}
	}
	conn := must(f.s.GetConnection(f.ctx, c.ID))(t)
	check("connection", conn.CreatedAt, conn.UpdatedAt)
	k := must(f.s.GetConnector(f.ctx, "alpha"))(t)
	check("connector", k.RegisteredAt, k.UpdatedAt)
	run := must(f.s.GetRun(f.ctx, r.ID))(t)
	check("run", run.CreatedAt, run.StartedAt, run.EndedAt)
	m := must(f.s.GetCredentialMeta(f.ctx, c.ID))(t)
	check("credential", m.CapturedAt, m.RotatedAt, m.RevokedAt, m.DeletedAt, m.UpdatedAt, m.Validity.CheckedAt)
	check("lease", leases[0].AcquiredAt, leases[0].ExpiresAt)
	check("record", f.allRecords(c.ID, "")[0].UpdatedAt)
	check("enrollment", must(f.s.ListEnrollment(f.ctx))(t)[0].EvaluatedAt)
	check("audit", e.At, must(f.s.ListAudit(f.ctx, store.AuditFilter{}))(t).Events[0].At)
	check("lock", lock.AcquiredAt, lock.ExpiresAt)
}

func testPing(t *testing.T, f *fixture) {
	if err := f.s.Ping(f.ctx); err != nil {
		t.Fatal(err)
	}
}
