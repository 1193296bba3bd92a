package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// populated is a connection with something in every table that hangs off
// it.
type populated struct {
	conn      store.Connection
	runs      []string // finished run + the run holding the expired lease
	records   int
	auditID   string
	leaseRun  string
	cipherLen int
}

// populate gives c records, a checkpoint, an active credential, an
// enrollment entry, a finished run, an audit event and an expired lease.
func (f *fixture) populate(c store.Connection, nRecords int) populated {
	f.t.Helper()
	r := f.runningRun(c.ID)
	keys := make([]string, nRecords)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%04d", i)
	}
	f.commit(c.ID, r.ID, "items", 1, []byte("cp-"+c.ID), keys...)
	must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunSucceeded}))(f.t) // releases its lease
	ct := "sealed-" + c.ID
	f.capture(c.ID, ct)
	must(f.s.UpsertEnrollment(f.ctx, store.EnrollmentEntry{ConnectionID: c.ID, ConnectorKey: c.ConnectorKey, Outcome: store.Enrolled}))(f.t)
	ev := must(f.s.AppendAudit(f.ctx, store.AuditEvent{
		Actor: "operator", Operation: "connection.create", TargetKind: "connection", TargetID: c.ID, Outcome: store.AuditSucceeded,
	}))(f.t)
	// A lease that will have expired: a crashed run that nobody reclaimed.
	stale := f.run(c.ID)
	f.lease(c.ID, stale.ID, "host-dead", time.Minute)
	c = must(f.s.GetConnection(f.ctx, c.ID))(f.t) // with the run's streak
	return populated{conn: c, runs: []string{r.ID, stale.ID}, records: nRecords, auditID: ev.ID, leaseRun: stale.ID, cipherLen: len(ct)}
}

// intact fails t unless everything populate stored for p is still there.
func (f *fixture) intact(t *testing.T, p populated) {
	t.Helper()
	diff(t, "connection", p.conn, must(f.s.GetConnection(f.ctx, p.conn.ID))(t))
	if got := len(f.allRecords(p.conn.ID, "")); got != p.records {
		t.Errorf("records = %d, want %d", got, p.records)
	}
	cp, ok, err := f.s.GetCheckpoint(f.ctx, p.conn.ID)
	if err != nil || !ok || string(cp) != "cp-"+p.conn.ID {
		t.Errorf("GetCheckpoint = %q, %v, %v; want cp-%s", cp, ok, err, p.conn.ID)
	}
	cred := must(f.s.GetCredential(f.ctx, p.conn.ID))(t)
	if cred.State != store.CredentialActive || len(cred.Ciphertext) != p.cipherLen {
		t.Errorf("credential state %s with %d ciphertext bytes, want active with %d", cred.State, len(cred.Ciphertext), p.cipherLen)
	}
	if !f.enrolled(p.conn.ID) {
		t.Errorf("enrollment entry of %s missing", p.conn.ID)
	}
	if !f.leased(p.conn.ID) {
		t.Errorf("lease of %s missing", p.conn.ID)
	}
}

// gone fails t unless the connection and everything it owned is gone,
// while its runs and audit events remain.
func (f *fixture) gone(t *testing.T, p populated) {
	t.Helper()
	id := p.conn.ID
	_, err := f.s.GetConnection(f.ctx, id)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	_, err = f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: id})
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	_, _, err = f.s.GetCheckpoint(f.ctx, id)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	_, err = f.s.GetCredentialMeta(f.ctx, id)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	_, err = f.s.GetCredential(f.ctx, id)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	if has := must(f.s.HasActiveCredential(f.ctx, id))(t); has {
		t.Error("HasActiveCredential = true after delete")
	}
	for _, c := range must(f.s.ListCredentialCiphertexts(f.ctx, "", store.MaxPageSize))(t) {
		if c.ConnectionID == id {
			t.Error("ciphertext of the deleted connection is still listed")
		}
	}
	if f.enrolled(id) {
		t.Error("enrollment entry survived")
	}
	if f.leased(id) {
		t.Error("lease survived")
	}
	// History survives: runs and audit events.
	page := must(f.s.ListRuns(f.ctx, store.RunFilter{ConnectionID: id}))(t)
	if len(page.Runs) != len(p.runs) {
		t.Errorf("runs after delete = %d, want %d kept", len(page.Runs), len(p.runs))
	}
	for _, r := range p.runs {
		must(f.s.GetRun(f.ctx, r))(t)
	}
	events := must(f.s.ListAudit(f.ctx, store.AuditFilter{TargetKind: "connection", TargetID: id}))(t)
	if len(events.Events) != 1 || events.Events[0].ID != p.auditID {
		t.Errorf("audit events after delete = %+v, want the one appended before", events.Events)
	}
}

func (f *fixture) enrolled(id string) bool {
	for _, e := range must(f.s.ListEnrollment(f.ctx))(f.t) {
		if e.ConnectionID == id {
			return true
		}
	}
	return false
}

func (f *fixture) leased(id string) bool {
	for _, l := range must(f.s.ListLeases(f.ctx))(f.t) {
		if l.ConnectionID == id {
			return true
		}
	}
	return false
}

func testDeleteConnectionCascade(t *testing.T, f *fixture) {
	a := f.populate(f.connection("alpha"), 3)
	b := f.populate(f.connection("alpha"), 2)
	f.advance(2 * time.Minute) // both stale leases expire

	got := must(f.s.DeleteConnection(f.ctx, a.conn.ID))(t)
	diff(t, "deletion report", store.ConnectionDeletion{Connection: a.conn, Records: 3, Checkpoint: true, Credential: true}, got)
	f.gone(t, a)
	f.intact(t, b)
}

func testDeleteConnectionRefusedWhileLeased(t *testing.T, f *fixture) {
	p := f.populate(f.connection("alpha"), 2)
	// The stale lease has not expired yet: a run still holds it.
	_, err := f.s.DeleteConnection(f.ctx, p.conn.ID)
	wantErr(t, err, store.ErrLeaseHeld, failure.RunActive)
	var held *store.LeaseHeldError
	if !asErr(err, &held) || held.Lease.RunID != p.leaseRun || held.Lease.Holder != "host-dead" {
		t.Errorf("error = %#v, want a *LeaseHeldError naming run %s", err, p.leaseRun)
	}
	f.intact(t, p)

	// Once the run lets go, the delete goes through.
	if err := f.s.ReleaseLease(f.ctx, p.conn.ID, p.leaseRun); err != nil {
		t.Fatal(err)
	}
	must(f.s.DeleteConnection(f.ctx, p.conn.ID))(t)
	_, err = f.s.GetConnection(f.ctx, p.conn.ID)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
}

// testDeleteConnectionIsOneTransaction interrupts the delete at every
// cancellation check it makes: after each failed attempt everything is
// still there, after the one that succeeds everything is gone.
func testDeleteConnectionIsOneTransaction(t *testing.T, f *fixture) {
	p := f.populate(f.connection("alpha"), 250)
	f.advance(2 * time.Minute) // the stale lease expires: it no longer blocks
	interruptEverywhere(t, func(ctx context.Context) error {
		_, err := f.s.DeleteConnection(ctx, p.conn.ID)
		return err
	}, func(n int, err error) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("attempt %d: error = %v, want context.Canceled", n, err)
			}
			f.intact(t, p)
			return
		}
		f.gone(t, p)
	})
}

func testDeleteConnectionNotFound(t *testing.T, f *fixture) {
	_, err := f.s.DeleteConnection(f.ctx, "conn_never_existed")
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)

	c := f.connection("alpha")
	must(f.s.DeleteConnection(f.ctx, c.ID))(t)
	_, err = f.s.DeleteConnection(f.ctx, c.ID)
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
}

func testConnectionIsolation(t *testing.T, f *fixture) {
	a, b := f.connection("alpha"), f.connection("alpha")

	// Leases: each connection has its own; holding A's does not block B.
	ra, rb := f.runningRun(a.ID), f.runningRun(b.ID)
	_, err := f.s.AcquireLease(f.ctx, store.LeaseRequest{ConnectionID: b.ID, RunID: ra.ID, Holder: "host-a", TTL: time.Hour})
	wantErr(t, err, store.ErrRunNotFound, "")

	// Records and checkpoints: same stream and key, different values.
	f.commit(a.ID, ra.ID, "items", 1, []byte("cp-a"), "k1", "k2")
	f.commit(b.ID, rb.ID, "items", 2, []byte("cp-b"), "k1")
	err = f.s.CommitBatch(f.ctx, b.ID, ra.ID, []store.Record{{Stream: "items", Key: "k9", Data: json.RawMessage(`1`)}}, []byte("x"))
	wantErr(t, err, store.ErrRunNotFound, "")
	recs := func(id string) map[string]string {
		out := map[string]string{}
		for _, r := range f.allRecords(id, "") {
			var v struct{ V int }
			if err := json.Unmarshal(r.Data, &v); err != nil {
				t.Fatal(err)
			}
			out[r.Stream+"/"+r.Key] = fmt.Sprintf("%d by %s", v.V, r.RunID)
		}
		return out
	}
	diff(t, "records of A", map[string]string{"items/k1": "1 by " + ra.ID, "items/k2": "1 by " + ra.ID}, recs(a.ID))
	diff(t, "records of B", map[string]string{"items/k1": "2 by " + rb.ID}, recs(b.ID))
	for id, want := range map[string]string{a.ID: "cp-a", b.ID: "cp-b"} {
		cp, _, err := f.s.GetCheckpoint(f.ctx, id)
		if err != nil || string(cp) != want {
			t.Errorf("checkpoint of %s = %q, %v; want %q", id, cp, err, want)
		}
	}

	// Credentials: A's does not make B eligible.
	f.capture(a.ID, "sealed-a")
	if must(f.s.HasActiveCredential(f.ctx, b.ID))(t) {
		t.Error("B has an active credential after capturing A's")
	}
	_, err = f.s.GetCredentialMeta(f.ctx, b.ID)
	wantErr(t, err, store.ErrCredentialNotFound, "")

	// Schedule and state.
	sched := store.Schedule{Spec: "@daily"}
	must(f.s.UpdateConnection(f.ctx, a.ID, store.ConnectionPatch{Schedule: &sched}))(t)
	must(f.s.SetConnectionState(f.ctx, a.ID, store.ConnectionPaused))(t)
	diff(t, "B untouched", b, must(f.s.GetConnection(f.ctx, b.ID))(t))

	// Runs are listed per connection.
	for id, want := range map[string]string{a.ID: ra.ID, b.ID: rb.ID} {
		page := must(f.s.ListRuns(f.ctx, store.RunFilter{ConnectionID: id}))(t)
		if len(page.Runs) != 1 || page.Runs[0].ID != want {
			t.Errorf("runs of %s = %+v, want only %s", id, page.Runs, want)
		}
	}

	// Releasing A's lease with B's run fails; A's run still holds it.
	err = f.s.ReleaseLease(f.ctx, a.ID, rb.ID)
	wantErr(t, err, store.ErrLeaseNotHeld, "")
	if !f.leased(a.ID) || !f.leased(b.ID) {
		t.Error("a lease went missing")
	}
}
