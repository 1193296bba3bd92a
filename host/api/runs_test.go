package api_test

import (
	"bufio"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
)

// openEvents opens the run's event stream.
func (e *env) openEvents(runID string) (*http.Response, *bufio.Reader) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+"/v1/runs/"+runID+"/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("events: status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("events: content type %q", ct)
	}
	return resp, bufio.NewReader(resp.Body)
}

// TestRunEventsFollowADemoRunToItsEnd: a manual trigger answers 202 with
// the run, and the event stream shows a status snapshot, live progress
// and record counts, heartbeats, and a final end event with the run's
// final status and record count — then closes. Following a finished run
// yields just its end.
func TestRunEventsFollowADemoRunToItsEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 12, "record_delay_ms": 40}, "")
	e.setToken(c.ID, "tok-events")

	var run apitypes.Run
	r := e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)
	if run.ID == "" || run.Trigger != "manual" || (run.Status != "running" && run.Status != "queued") {
		t.Fatalf("triggered %+v", run)
	}
	if loc := r.Header.Get("Location"); loc != "/v1/runs/"+run.ID {
		t.Errorf("Location %q", loc)
	}
	_, body := e.openEvents(run.ID)
	events, heartbeats := readSSE(t, body)
	if len(events) < 3 {
		t.Fatalf("events %+v", events)
	}
	if first := events[0]; first.Event != "status" || first.Data.RunID != run.ID || first.Data.ConnectionID != c.ID {
		t.Errorf("first event %+v", first)
	}
	kinds := map[string]int{}
	for _, ev := range events {
		if ev.Event != ev.Data.Kind {
			t.Errorf("event %q carries kind %q", ev.Event, ev.Data.Kind)
		}
		kinds[ev.Event]++
	}
	if kinds["progress"] == 0 || kinds["records"] == 0 || kinds["end"] != 1 {
		t.Errorf("event kinds %v", kinds)
	}
	end := events[len(events)-1]
	if end.Event != "end" || end.Data.Status != "succeeded" || end.Data.Records != 12 || end.Data.At == "" {
		t.Errorf("end %+v", end)
	}
	if heartbeats == 0 {
		t.Error("no heartbeat during a run longer than the heartbeat interval")
	}

	_, body = e.openEvents(run.ID)
	events, _ = readSSE(t, body)
	if len(events) != 1 || events[0].Event != "end" || events[0].Data.Status != "succeeded" || events[0].Data.Records != 12 {
		t.Errorf("following a finished run: %+v", events)
	}
}

// TestCancelRunEndsItCancelled: cancel answers with the final row; a
// second trigger meanwhile is refused run_active with its run id; a
// second cancel is a conflict.
func TestCancelRunEndsItCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 100000, "record_delay_ms": 20}, "")
	e.setToken(c.ID, "tok-cancel")
	var run apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)

	r := e.call("POST", "/v1/connections/"+c.ID+"/runs", nil)
	if r.Status != http.StatusConflict {
		t.Fatalf("second trigger: %s", r)
	}
	body := r.ErrorBody(t)
	if body.Code != "run_active" || body.RunID == "" || body.RunID == run.ID {
		t.Errorf("second trigger refusal %+v", body)
	}
	// The refusal names the run that holds the connection (the one to
	// cancel), not the refused one; so does the refused run's row.
	if want := "active run (run " + run.ID + ")"; !strings.Contains(body.Message, want) {
		t.Errorf("refusal message %q does not contain %q", body.Message, want)
	}
	var refused apitypes.Run
	e.ok(http.StatusOK, "GET", "/v1/runs/"+body.RunID, nil, &refused)
	if refused.Status != "refused" || !strings.Contains(refused.FailureMessage, run.ID) || strings.Contains(refused.FailureMessage, body.RunID) {
		t.Errorf("refused run row %+v", refused)
	}

	var done apitypes.Run
	e.ok(http.StatusOK, "POST", "/v1/runs/"+run.ID+"/cancel", nil, &done)
	if done.Status != "cancelled" || done.FailureCode != "cancelled" || done.EndedAt == "" {
		t.Errorf("cancelled %+v", done)
	}
	r = e.call("POST", "/v1/runs/"+run.ID+"/cancel", nil)
	if r.Status != http.StatusConflict || r.ErrorBody(t).Code != apitypes.CodeConflict {
		t.Errorf("second cancel: %s", r)
	}
	// The lease is released: a new run starts.
	var again apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &again)
	e.ok(http.StatusOK, "POST", "/v1/runs/"+again.ID+"/cancel", nil, &done)
}

// TestRunsAndRecordsPaging: runs come newest first with filters; records
// page with a cursor until next is empty.
func TestRunsAndRecordsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 25}, "")
	other := e.createDemo(nil, "")
	e.setToken(c.ID, "tok-paging")
	var first, second apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &first)
	e.waitRun(first.ID)
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &second)
	e.waitRun(second.ID)
	var refused apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+other.ID+"/runs", nil, &refused)
	if got := e.waitRun(refused.ID); got.Status != "refused" || got.FailureCode != "credentials_required" {
		t.Fatalf("no credential: %+v", got)
	}

	var runs apitypes.List[apitypes.Run]
	e.ok(http.StatusOK, "GET", "/v1/runs?connection="+c.ID, nil, &runs)
	if len(runs.Items) != 2 || runs.Items[0].ID != second.ID || runs.Items[1].ID != first.ID {
		t.Fatalf("runs newest first: %+v", runs.Items)
	}
	e.ok(http.StatusOK, "GET", "/v1/runs?status=refused", nil, &runs)
	if len(runs.Items) != 1 || runs.Items[0].ID != refused.ID || runs.Items[0].FailureCode != "credentials_required" {
		t.Fatalf("refused runs: %+v", runs.Items)
	}
	e.ok(http.StatusOK, "GET", "/v1/runs?trigger=manual&connection="+c.ID, nil, &runs)
	if len(runs.Items) != 2 || runs.Items[0].ID != second.ID || runs.Items[0].Trigger != "manual" {
		t.Fatalf("manual runs: %+v", runs.Items)
	}
	e.ok(http.StatusOK, "GET", "/v1/runs?trigger=scheduled", nil, &runs)
	if len(runs.Items) != 0 {
		t.Fatalf("scheduled runs of a host that scheduled none: %+v", runs.Items)
	}
	e.ok(http.StatusOK, "GET", "/v1/runs?limit=2", nil, &runs)
	if len(runs.Items) != 2 || runs.Next == "" {
		t.Fatalf("page 1: %+v", runs)
	}
	e.ok(http.StatusOK, "GET", "/v1/runs?limit=2&cursor="+runs.Next, nil, &runs)
	if len(runs.Items) != 1 || runs.Next != "" || runs.Items[0].ID != first.ID {
		t.Fatalf("page 2: %+v", runs)
	}

	seen := map[string]bool{}
	cursor := ""
	pages := 0
	for {
		var page apitypes.List[apitypes.Record]
		e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/records?stream=events&limit=10&cursor="+cursor, nil, &page)
		pages++
		for _, rec := range page.Items {
			if rec.Stream != "events" || rec.RunID == "" || rec.UpdatedAt == "" || rec.Data == nil {
				t.Fatalf("record %+v", rec)
			}
			seen[rec.Key] = true
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != 25 || pages != 3 {
		t.Errorf("%d records over %d pages, want 25 over 3", len(seen), pages)
	}
}

// TestConnectionsPaging: connections come oldest first, a page at a time,
// with the filters applied across pages.
func TestConnectionsPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var want []string
	for range 5 {
		want = append(want, e.createDemo(nil, "").ID)
	}
	e.ok(http.StatusOK, "POST", "/v1/connections/"+want[1]+"/pause", nil, nil)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"limit=2", want},
		{"limit=1000", want},
		{"limit=2&state=active", []string{want[0], want[2], want[3], want[4]}},
		{"limit=1&state=paused&connector=demo", []string{want[1]}},
		{"limit=3&state=revoked&connector=demo", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(want) {
					t.Fatal("paging does not end")
				}
				var page apitypes.List[apitypes.Connection]
				e.ok(http.StatusOK, "GET", "/v1/connections?"+tc.query+"&cursor="+cursor, nil, &page)
				for _, c := range page.Items {
					got = append(got, c.ID)
				}
				if page.Next == "" {
					break
				}
				cursor = page.Next
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestKeysetRoutes: info names key ids and never key material; rewrap
// reports what it re-encrypted.
func TestKeysetRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(nil, "")
	e.setToken(c.ID, "tok-keyset")
	var info apitypes.KeysetInfo
	r := e.ok(http.StatusOK, "GET", "/v1/keyset", nil, &info)
	if info.PrimaryKeyID == 0 || len(info.Keys) != 1 || !info.Keys[0].Primary || info.KEK != "cleartext" || info.Encrypted {
		t.Errorf("keyset %+v", info)
	}
	if strings.Contains(string(r.Body), "value") || strings.Contains(string(r.Body), "key_data") {
		t.Errorf("keyset info holds key material: %s", r.Body)
	}
	var rep apitypes.RewrapReport
	e.ok(http.StatusOK, "POST", "/v1/keyset/rewrap", nil, &rep)
	if rep.Scanned != 1 || rep.Current != 1 || rep.Rewrapped != 0 || rep.Quarantined == nil || rep.Failed == nil {
		t.Errorf("rewrap %+v", rep)
	}
	// The fake keyset refuses rotation: a 500 with no detail.
	r = e.call("POST", "/v1/keyset/rotate", nil)
	if r.Status != http.StatusInternalServerError || r.ErrorBody(t).Code != apitypes.CodeInternal || r.ErrorBody(t).Message != "internal error" {
		t.Errorf("failed rotation: %s", r)
	}
}

// TestHTTPMetrics: requests are counted by route pattern, not by path.
func TestHTTPMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	e.call("GET", "/v1/connections/conn_a", nil)
	e.call("GET", "/v1/connections/conn_b", nil)
	r := e.ok(http.StatusOK, "GET", "/metrics", nil, nil)
	want := `connhost_http_requests_total{code="404",route="GET /v1/connections/{id}"} 2`
	if !strings.Contains(string(r.Body), want) {
		t.Errorf("metrics lack %q:\n%s", want, r.Body)
	}
	if strings.Contains(string(r.Body), "conn_a") {
		t.Error("a connection id became a label")
	}
}

// TestRecordsListInEmitOrder: the demo emits events 0..11; they list in
// that order ("2" before "10"), across pages.
func TestRecordsListInEmitOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 12}, "")
	e.setToken(c.ID, "tok-emit-order")
	var run apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)
	if r, err := e.h.Wait(run.ID); err != nil || r.Records != 12 {
		t.Fatalf("run %+v %v", r, err)
	}
	var got []string
	cursor := ""
	for range 10 {
		var page apitypes.List[apitypes.Record]
		e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/records?stream=events&limit=5&cursor="+cursor, nil, &page)
		for _, r := range page.Items {
			got = append(got, r.Key)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}
	if !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}
