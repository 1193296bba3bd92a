package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/console"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
)

// sseEvent is one received Server-Sent Event.
type sseEvent struct {
	Kind string
	Data apitypes.RunEvent
}

// openEvents opens the console's relay of a run's events with the
// browser c; the caller closes the body.
func openEvents(t *testing.T, e *env, c *http.Client, runID string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.srv.URL+"/ui/runs/"+runID+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readEvent reads the next event off an SSE stream, skipping comments
// (heartbeats); io.EOF at the stream's end.
func readEvent(t *testing.T, br *bufio.Reader) (sseEvent, string, error) {
	t.Helper()
	var ev sseEvent
	var raw strings.Builder
	for {
		line, err := br.ReadString('\n')
		raw.WriteString(line)
		if err != nil {
			return ev, raw.String(), err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.Kind != "" {
				return ev, raw.String(), nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.Kind = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		}
	}
}

func TestRunPage(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 4}, "")
	e.h.SetToken(c.ID, "token-run-page")
	run, err := e.h.RunNow(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	p := e.get("/ui/runs/" + run.ID)
	mustContain(t, p, http.StatusOK,
		`<section id="run-live"`, `data-events="/ui/runs/`+run.ID+`/events"`, `data-ended="true"`,
		`id="run-status" class="badge badge-succeeded"`, `>succeeded</span>`, `<span id="run-records">4</span>`, `id="run-progress"`,
		`<table id="run-streams">`, `<tr id="stream-events"`, `<tr id="stream-env"`,
		`id="run-connection" href="/ui/connections/`+c.ID+`"`, `<section class="panel" id="provenance"`,
		`id="credential-source">stored<`, "<code>DEMO_TOKEN</code>", "stored_credential",
		`id="run-trigger">manual<`, `id="run-attempt">1`, `<code>host_test</code>`, "<time datetime=")
	if !strings.Contains(p.Body, `<td class="stream-held">4</td>`) {
		t.Errorf("stream events does not count the run's 4 records:\n%s", p.Body)
	}
	if strings.Contains(p.Body, `id="cancel-form"`) || strings.Contains(p.Body, `id="failure-code"`) {
		t.Errorf("an ended, successful run offers a cancel or shows a failure")
	}

	// A refused run: its failure code and message, and the refusal.
	bare := e.h.CreateDemo(map[string]any{}, "")
	refused, err := e.h.Trigger(bare.ID)
	if err == nil {
		refused, _ = e.h.Wait(refused.ID)
	}
	p = e.get("/ui/runs/" + refused.ID)
	mustContain(t, p, http.StatusOK, `data-ended="true"`, `>refused</span>`,
		`<code id="failure-code">credentials_required</code>`, `id="failure-message"`, `id="provenance-refusal"`)

	mustContain(t, e.get("/ui/runs/run_nope"), http.StatusNotFound, `id="error-code">run_not_found<`)
	mustContain(t, e.get("/ui/runs/run_nope/events"), http.StatusNotFound, `id="error-code">run_not_found<`)
}

func TestRunPageOfADeletedConnection(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 1}, "")
	e.h.SetToken(c.ID, "token-deleted-conn")
	run, err := e.h.RunNow(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.Control.DeleteConnection(context.Background(), "operator", c.ID); err != nil {
		t.Fatal(err)
	}
	mustContain(t, e.get("/ui/runs/"+run.ID), http.StatusOK, `<span id="run-connection">`, "(deleted)", `id="streams-note"`)
}

// TestRunEventsRelay follows a slow run through the console: the relay
// streams (the first event arrives while the run is still going), ends
// with the run's end event, and answers 401 without a session.
func TestRunEventsRelay(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 20, "record_delay_ms": 100}, "")
	e.h.SetToken(c.ID, "token-events-relay")
	run, err := e.h.Trigger(c.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The live page before the end: it follows.
	waitStatus(t, e, run.ID, store.RunRunning)
	mustContain(t, e.get("/ui/runs/"+run.ID), http.StatusOK, `data-ended="false"`, `id="cancel-form"`, `>running</span>`)

	resp := openEvents(t, e, e.browser, run.ID)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("relay: %d %s: %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("the relay lacks the console's headers")
	}
	br := bufio.NewReader(resp.Body)
	first, _, err := readEvent(t, br)
	if err != nil {
		t.Fatal(err)
	}
	if first.Kind != "status" || first.Data.RunID != run.ID || first.Data.Status != "running" {
		t.Fatalf("first event %+v", first)
	}
	if r, err := e.h.Store.GetRun(context.Background(), run.ID); err != nil || r.Status.Terminal() {
		t.Fatalf("the first event came only after the run ended (%v, %v): the relay does not stream", r.Status, err)
	}
	kinds := map[string]int{}
	var last sseEvent
	for {
		ev, _, err := readEvent(t, br)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kinds[ev.Kind]++
		last = ev
	}
	if last.Kind != "end" || last.Data.Status != "succeeded" || last.Data.Records != 20 {
		t.Errorf("last event %+v, want end succeeded with 20 records", last)
	}
	if kinds["progress"] == 0 || kinds["records"] == 0 {
		t.Errorf("events by kind %v: want progress and records", kinds)
	}

	// Without a session: 401, never a redirect.
	anon := openEvents(t, e, e.newBrowser(), run.ID)
	anon.Body.Close()
	if anon.StatusCode != http.StatusUnauthorized {
		t.Errorf("relay without a session: %d, want 401", anon.StatusCode)
	}
}

func TestCancelRun(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 1000, "record_delay_ms": 100}, "")
	e.h.SetToken(c.ID, "token-cancel-run")
	run, err := e.h.Trigger(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, run.ID, store.RunRunning)
	path := "/ui/runs/" + run.ID + "/cancel"

	// A form without the session's token changes nothing.
	mustContain(t, e.post(path, url.Values{"csrf": {"not-the-token"}}), http.StatusForbidden, "csrf_refused")
	if r, err := e.h.Store.GetRun(context.Background(), run.ID); err != nil || r.Status != store.RunRunning {
		t.Fatalf("the refused cancel changed the run: %v %v", r.Status, err)
	}
	p := e.post(path, nil)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("cancel: %s", p)
	}
	if p.Location() != "/ui/runs/"+run.ID {
		t.Errorf("cancel goes to %q", p.Location())
	}
	got, _ := e.h.Wait(run.ID)
	if got.Status != store.RunCancelled {
		t.Fatalf("after cancel: %s", got.Status)
	}
	mustContain(t, e.get("/ui/runs/"+run.ID), http.StatusOK, "Run cancelled", `>cancelled</span>`, `id="failure-code">cancelled<`)

	// Cancelling an ended run is refused, and says so.
	p = e.post(path, nil)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("cancel of an ended run: %s", p)
	}
	mustContain(t, e.get("/ui/runs/"+run.ID), http.StatusOK, "Cancel refused: conflict")
}

func TestCancelRunCrossSiteRefused(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 1000, "record_delay_ms": 100}, "")
	e.h.SetToken(c.ID, "token-cancel-cross")
	run, err := e.h.Trigger(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e, run.ID, store.RunRunning)
	form := url.Values{"csrf": {e.csrf()}}
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/runs/"+run.ID+"/cancel", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site cancel: %d, want 403", resp.StatusCode)
	}
	if r, err := e.h.Store.GetRun(context.Background(), run.ID); err != nil || r.Status != store.RunRunning {
		t.Errorf("the refused cancel changed the run: %v %v", r.Status, err)
	}
	mustContain(t, e.post("/ui/runs/"+run.ID+"/cancel", nil), http.StatusSeeOther)
	if got, _ := e.h.Wait(run.ID); got.Status != store.RunCancelled {
		t.Errorf("after the same-origin cancel: %s", got.Status)
	}
}

// TestCanaryCredentialNeverShown runs a demo connection whose credential
// is a canary and reads every activity page, the relayed events and the
// host log: the canary is in none of them.
func TestCanaryCredentialNeverShown(t *testing.T) {
	const canary = "canary-activity-pages-7f3e9c1d5b"
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 5, "echo_env": []string{"DEMO_TOKEN"}, "record_delay_ms": 20}, "")
	e.h.SetToken(c.ID, canary)
	run, err := e.h.Trigger(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp := openEvents(t, e, e.browser, run.ID)
	events, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(events), "event: end") {
		t.Fatalf("the relay did not reach the end: %.500s", events)
	}
	if strings.Contains(string(events), canary) {
		t.Errorf("the relayed events hold the canary")
	}
	if _, err := e.h.Wait(run.ID); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ui/attention", "/ui/enrollment", "/ui/runs", "/ui/runs?connection=" + c.ID,
		"/ui/runs/" + run.ID, "/ui/connections/" + c.ID + "/records", "/ui/connections/" + c.ID + "/records?stream=env",
		"/ui/audit", "/ui/audit?target=" + c.ID} {
		p := e.get(path)
		if p.Status != http.StatusOK {
			t.Errorf("%s: %s", path, p)
		}
		if strings.Contains(p.Body, canary) {
			t.Errorf("%s holds the canary", path)
		}
		if strings.Contains(p.Body, testToken) {
			t.Errorf("%s holds the operator token", path)
		}
	}
	if strings.Contains(e.h.Logs.String(), canary) {
		t.Errorf("the host log holds the canary")
	}
	if strings.Contains(e.h.Logs.String(), testToken) {
		t.Errorf("the host log holds the operator token")
	}
}

// TestRunEventsRelayRequest checks what the relay asks of the API: the
// run's event stream with the operator token, and none of the
// browser's headers (its session cookie stays in the console).
func TestRunEventsRelayRequest(t *testing.T) {
	const token = "relay-test-operator-token-0123456789"
	got := make(chan http.Header, 1)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/runs/run_1":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"run_1","connection_id":"conn_1","trigger":"manual","attempt":1,"status":"running",`+
				`"failure_code":"","created_at":"2026-12-06T12:00:00Z","records":0,"host_id":"host_a"}`)
		case "/v1/runs/run_1/events":
			got <- r.Header.Clone()
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "event: end\ndata: {\"run_id\":\"run_1\",\"kind\":\"end\",\"status\":\"succeeded\"}\n\n")
		default:
			http.NotFound(w, r)
		}
	})
	con, err := console.New(console.Config{API: api, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar}
	code, _ := con.IssueSignIn()
	resp, err := browser.Get(srv.URL + "/ui/signin?code=" + url.QueryEscape(code))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/ui/runs/run_1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-From-Browser", "yes")
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "event: end") {
		t.Fatalf("relay: %d %q", resp.StatusCode, body)
	}
	h := <-got
	if h.Get("Authorization") != "Bearer "+token {
		t.Errorf("the API was not asked with the operator token")
	}
	for _, name := range []string{"Cookie", "X-From-Browser"} {
		if h.Get(name) != "" {
			t.Errorf("the browser's %s header reached the API", name)
		}
	}
	if strings.Contains(string(body), token) {
		t.Errorf("the relayed body holds the token")
	}
}
