package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
)

func newHost(t *testing.T) *hosttest.Host {
	return hosttest.New(t, hosttest.Options{HostEnv: map[string]string{"PATH": os.Getenv("PATH")}})
}

func TestCreateConnectionRejectsBadInputWithoutChangingState(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	tests := map[string]struct {
		n     store.NewConnection
		field string
		code  failure.Code
	}{
		"invalid schedule":  {n: store.NewConnection{ConnectorKey: "demo", Label: "x", Schedule: store.Schedule{Spec: "every day"}}, field: "schedule"},
		"config not object": {n: store.NewConnection{ConnectorKey: "demo", Label: "x", Config: json.RawMessage(`[1]`)}, field: "config"},
		"config not JSON":   {n: store.NewConnection{ConnectorKey: "demo", Label: "x", Config: json.RawMessage(`{`)}, field: "config"},
		"negative jitter":   {n: store.NewConnection{ConnectorKey: "demo", Label: "x", Schedule: store.Schedule{Spec: "@every 1m", Jitter: -time.Second}}, field: "jitter"},
		"unknown connector": {n: store.NewConnection{ConnectorKey: "nope", Label: "x"}, code: failure.ConnectorNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := h.Control.CreateConnection(ctx, "operator", tc.n)
			var ie *control.InvalidError
			switch {
			case tc.field != "":
				if !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("error = %v, want invalid %s", err, tc.field)
				}
			default:
				if failure.CodeOf(err) != tc.code {
					t.Fatalf("error = %v, want %s", err, tc.code)
				}
			}
		})
	}
	conns, err := h.Store.ListConnections(ctx, store.ConnectionFilter{})
	if err != nil || len(conns) != 0 {
		t.Fatalf("bad input created %d connections (%v)", len(conns), err)
	}
}

func TestDeleteConnection(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 2}, "@every 1h")
	h.SetToken(c.ID, "tok-12345678")
	if !h.Scheduler.Enrolled(c.ID) {
		t.Fatal("not enrolled")
	}
	if _, err := h.RunNow(c.ID); err != nil {
		t.Fatal(err)
	}
	d, err := h.Control.DeleteConnection(ctx, "operator", c.ID)
	if err != nil || d.Records != 2 || !d.Checkpoint || !d.Credential {
		t.Fatalf("delete = %+v, %v", d, err)
	}
	if h.Scheduler.Enrolled(c.ID) {
		t.Fatal("deleted connection still scheduled")
	}
	if _, err := h.Store.GetCredentialMeta(ctx, c.ID); err == nil {
		t.Fatal("credential survived its connection")
	}
	if _, err := h.Control.DeleteConnection(ctx, "operator", c.ID); failure.CodeOf(err) != failure.ConnectionNotFound {
		t.Fatalf("second delete = %v", err)
	}
	page, err := h.Store.ListAudit(ctx, store.AuditFilter{TargetID: c.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, e := range page.Events {
		ops[e.Operation] = true
		// A succeeded run's row has no failure_code at all, not "".
		if e.Operation == "run.finish" && strings.Contains(string(e.Detail), "failure_code") {
			t.Errorf("run.finish of a succeeded run names a failure_code: %s", e.Detail)
		}
	}
	for _, op := range []string{"connection.create", "credential.capture", "run.finish", "connection.delete"} {
		if !ops[op] {
			t.Fatalf("audit lacks %s: %v", op, ops)
		}
	}
}

func TestDeleteRefusedWhileARunHoldsTheLease(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(map[string]any{"records": 50, "record_delay_ms": 100}, "")
	h.SetToken(c.ID, "tok-12345678")
	run, err := h.Trigger(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.WaitFor(30*time.Second, func() bool { r, _ := h.Store.GetRun(ctx, run.ID); return r.Status == store.RunRunning })
	if _, err := h.Control.DeleteConnection(ctx, "operator", c.ID); failure.CodeOf(err) != failure.RunActive {
		t.Fatalf("delete during a run = %v, want run_active", err)
	}
	if err := h.Runner.Cancel(run.ID); err != nil {
		t.Fatal(err)
	}
	h.Wait(run.ID)
	if _, err := h.Control.DeleteConnection(ctx, "operator", c.ID); err != nil {
		t.Fatalf("delete after the run = %v", err)
	}
}

// A manual run still waiting in the queue does not hold the connection:
// deleting it cancels the queued run in the same transaction.
func TestDeleteCancelsAQueuedRun(t *testing.T) {
	t.Parallel()
	h := hosttest.New(t, hosttest.Options{AllowHostEnv: true, MaxConcurrent: 1})
	ctx := context.Background()
	busy := h.CreateDemo(map[string]any{"records": 50, "record_delay_ms": 100}, "")
	waiting := h.CreateDemo(map[string]any{"records": 1}, "")
	h.SetToken(busy.ID, "tok-12345678")
	h.SetToken(waiting.ID, "tok-12345678")
	first, err := h.Trigger(busy.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.WaitFor(30*time.Second, func() bool { r, _ := h.Store.GetRun(ctx, first.ID); return r.Status == store.RunRunning })
	queued, err := h.Trigger(waiting.ID) // the only worker is busy
	if err != nil || queued.Status != store.RunQueued {
		t.Fatalf("trigger = %+v, %v", queued, err)
	}
	if _, err := h.Control.DeleteConnection(ctx, "operator", waiting.ID); err != nil {
		t.Fatalf("delete with a queued run = %v", err)
	}
	got, err := h.Store.GetRun(ctx, queued.ID)
	if err != nil || got.Status != store.RunCancelled || got.FailureCode != failure.ConnectionNotFound {
		t.Fatalf("queued run after the delete = %+v, %v", got, err)
	}
	if err := h.Runner.Cancel(first.ID); err != nil {
		t.Fatal(err)
	}
}
