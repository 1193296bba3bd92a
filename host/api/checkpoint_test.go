package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
)

// TestCheckpointShowAndReset, with the real demo plugin: lowering
// records leaves the checkpoint ahead (a run emits nothing); the
// checkpoint shows the run that committed it; after a reset the next run
// starts from scratch. A reset while a run holds the connection is
// refused run_active naming that run. Both are audited.
func TestCheckpointShowAndReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 60}, "")
	e.setToken(c.ID, "tok-checkpoint")
	run := func() store.Run {
		t.Helper()
		var r apitypes.Run
		e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &r)
		done, err := e.h.Wait(r.ID)
		if err != nil {
			t.Fatalf("run %s: %v", r.ID, err)
		}
		return done
	}

	var cp apitypes.Checkpoint
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/checkpoint", nil, &cp)
	if cp.Present || cp.ConnectionID != c.ID || cp.State != nil {
		t.Fatalf("fresh checkpoint %+v", cp)
	}
	first := run()
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/checkpoint", nil, &cp)
	if !cp.Present || string(cp.State) != `{"next":60}` || cp.RunID != first.ID || cp.UpdatedAt == "" || cp.Bytes != len(`{"next":60}`) {
		t.Fatalf("checkpoint after the first run %+v (state %s)", cp, cp.State)
	}

	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Config: ptr(map[string]any{"records": 20})}, nil)
	if r := run(); r.Records != 0 {
		t.Fatalf("with the checkpoint ahead, a run committed %d records", r.Records)
	}

	var reset apitypes.CheckpointReset
	e.ok(http.StatusOK, "DELETE", "/v1/connections/"+c.ID+"/checkpoint", nil, &reset)
	if !reset.Removed || reset.Previous == nil || string(reset.Previous.State) != `{"next":60}` {
		t.Fatalf("reset %+v", reset)
	}
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/checkpoint", nil, &cp)
	if cp.Present {
		t.Fatalf("checkpoint after the reset %+v", cp)
	}
	e.ok(http.StatusOK, "DELETE", "/v1/connections/"+c.ID+"/checkpoint", nil, &reset)
	if reset.Removed || reset.Previous != nil {
		t.Errorf("second reset %+v", reset)
	}
	again := run()
	if again.Records != 20 {
		t.Fatalf("after the reset the run committed %d records, want 20", again.Records)
	}
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/checkpoint", nil, &cp)
	if string(cp.State) != `{"next":20}` || cp.RunID != again.ID {
		t.Errorf("checkpoint after the fresh run %+v (state %s)", cp, cp.State)
	}

	// A run holds the connection: refused, naming it.
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Config: ptr(map[string]any{"records": 100000, "record_delay_ms": 20})}, nil)
	var slow apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &slow)
	e.h.WaitFor(time.Minute, func() bool {
		r, err := e.h.Store.GetRun(t.Context(), slow.ID)
		return err == nil && r.Status == store.RunRunning
	})
	r := e.call("DELETE", "/v1/connections/"+c.ID+"/checkpoint", nil)
	if b := r.ErrorBody(t); r.Status != http.StatusConflict || b.Code != "run_active" || !strings.Contains(b.Message, slow.ID) {
		t.Errorf("reset during a run: %s", r)
	}
	e.ok(http.StatusOK, "POST", "/v1/runs/"+slow.ID+"/cancel", nil, nil)

	var audit apitypes.List[apitypes.AuditEvent]
	e.ok(http.StatusOK, "GET", "/v1/audit?target="+c.ID+"&operation=connection.reset_state", nil, &audit)
	var got []string
	for _, ev := range audit.Items {
		got = append(got, ev.Outcome+" removed="+ev.Detail["removed"]+" run="+ev.Detail["run_id"]+" code="+ev.Detail["failure_code"])
	}
	want := []string{ // newest first
		"failed removed= run= code=run_active",
		"succeeded removed=false run= code=",
		"succeeded removed=true run=" + first.ID + " code=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if r := e.call("GET", "/v1/connections/conn_nope/checkpoint", nil); r.Status != http.StatusNotFound || r.ErrorBody(t).Code != "connection_not_found" {
		t.Errorf("unknown connection: %s", r)
	}
}
