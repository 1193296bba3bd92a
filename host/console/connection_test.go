package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/client"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/schedule"
)

// TestSetupPagesRender: every connection and credential page renders
// with the ids the browser test relies on, labels on every input and
// no inline code.
func TestSetupPagesRender(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("render me", map[string]any{"records": 2})
	e.setToken(conn.ID, "render-token-0123456789")
	run, err := e.api.TriggerRun(e.ctx(), conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.waitRun(run.ID); r.Status != "succeeded" {
		t.Fatalf("run %+v", r)
	}
	base := "/ui/connections/" + conn.ID
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/ui/connections", append(ids("connections-filter", "connections", "connection-"+conn.ID, "create-connection",
			"connector_key", "label", "config", "schedule", "jitter", "create-button"), "/ui/runs/"+run.ID, "healthy")},
		{"/ui/connections?health=healthy&connector=demo", ids("connections", "connection-"+conn.ID)},
		{base, append(ids("connection-id", "connection-state", "health-verdict", "health-action", "run-form", "run-button",
			"credential-panel", "credential-state", "credential-link", "edit-connection", "edit-config", "edit-schedule",
			"edit-jitter", "save-button", "pause-form", "revoke-link", "delete-link", "records-link", "runs-link", "explain",
			"config-schema", "checkpoint-reset-link"), "<h1>render me</h1>", `&#34;records&#34;: 2`, "DEMO_TOKEN")},
		{base + "/credential", append(ids("credential-form", "value-DEMO_TOKEN", "credential-submit", "credential-revoke-link",
			"credential-delete-link", "credential-state"), `name="value.DEMO_TOKEN"`, `autocomplete="new-password"`, `type="password"`)},
		{base + "/revoke", ids("confirm-form", "confirm-button")},
		{base + "/delete", ids("confirm-form", "confirm-button")},
		{base + "/checkpoint/reset", ids("confirm-form", "confirm-button")},
		{base + "/credential/revoke", ids("confirm-form", "confirm-button")},
		{base + "/credential/delete", ids("confirm-form", "confirm-button")},
	} {
		t.Run(tc.path, func(t *testing.T) {
			p := e.get(tc.path)
			mustContain(t, p, http.StatusOK, tc.want...)
			noInlineCode(t, p)
			labelled(t, p)
			uniqueIDs(t, p)
		})
	}

	// A paused connection offers resume instead of pause.
	if _, err := e.api.PauseConnection(e.ctx(), conn.ID); err != nil {
		t.Fatal(err)
	}
	p := e.get(base)
	mustContain(t, p, http.StatusOK, ids("resume-form")...)
	if strings.Contains(p.Body, `id="pause-form"`) {
		t.Errorf("a paused connection offers pause")
	}
}

// TestConnectionsFilter: the filter form narrows the list by connector
// and health; a filter the API refuses is said in the filter form.
func TestConnectionsFilter(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	needs := e.demo("needs", nil)
	ready := e.demo("ready", nil)
	e.setToken(ready.ID, "filter-token-0123456789")
	for _, tc := range []struct {
		query    string
		status   int
		has, not []string
	}{
		{"", http.StatusOK, []string{needs.ID, ready.ID}, nil},
		{"health=needs_credential", http.StatusOK, []string{needs.ID, `href="/ui/connections/` + needs.ID + `/credential"`}, []string{ready.ID}},
		{"health=never_run", http.StatusOK, []string{ready.ID}, []string{needs.ID}},
		{"health=healthy", http.StatusOK, []string{`id="connections-empty"`}, []string{needs.ID, ready.ID}},
		{"connector=demo&health=never_run", http.StatusOK, []string{ready.ID}, []string{needs.ID}},
		{"health=sick", http.StatusBadRequest, []string{`id="form-error"`, "invalid_request"}, []string{needs.ID}},
		{"connector=nosuch", http.StatusNotFound, []string{`id="form-error"`, "connector_not_found"}, []string{needs.ID}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			p := e.get("/ui/connections?" + tc.query)
			mustContain(t, p, tc.status, tc.has...)
			for _, n := range tc.not {
				if strings.Contains(p.Body, `id="connection-`+n+`"`) {
					t.Errorf("%s lists %s", tc.query, n)
				}
			}
		})
	}
	// The chosen filters stay selected.
	p := e.get("/ui/connections?health=never_run")
	mustContain(t, p, http.StatusOK, `<option value="never_run" selected>`)
}

// TestCreateConnectionForm: a created connection is stored as the form
// said and the browser goes to it; each refusal re-renders the list with
// the API's typed error beside its field and the submitted values kept.
func TestCreateConnectionForm(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	p := e.post("/ui/connections", form("connector_key", "demo", "label", "made by form",
		"config", `{"records": 3}`, "schedule", "@every 1h", "jitter", "30s"))
	loc := redirect(t, p, `/ui/connections/[^/]+`)
	id := strings.TrimPrefix(loc, "/ui/connections/")
	got := e.conn(id)
	if got.Label != "made by form" || got.Schedule != "@every 1h" || got.Jitter != "30s" || string(got.Config) != `{"records":3}` {
		t.Errorf("stored %+v", got)
	}
	mustContain(t, e.get(loc), http.StatusOK, "Connection made by form created.", "<h1>made by form</h1>")

	// An empty config is none.
	loc = redirect(t, e.post("/ui/connections", form("connector_key", "demo", "label", "no config")), `/ui/connections/[^/]+`)
	if got := e.conn(strings.TrimPrefix(loc, "/ui/connections/")); string(got.Config) != "{}" {
		t.Errorf("empty config stored as %s", got.Config)
	}

	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string // "" : #form-error
		code   string
	}{
		{"config not JSON", form("connector_key", "demo", "label", "x", "config", `{"records":`), 400, "config", "invalid_request"},
		{"config not an object", form("connector_key", "demo", "label", "x", "config", `[1]`), 400, "config", "invalid_request"},
		{"config against the schema", form("connector_key", "demo", "label", "x", "config", `{"records": -1}`), 400, "config", "invalid_config"},
		{"bad schedule", form("connector_key", "demo", "label", "x", "schedule", "every tuesday"), 400, "schedule", "invalid_request"},
		{"bad jitter", form("connector_key", "demo", "label", "x", "schedule", "@every 1h", "jitter", "soon"), 400, "jitter", "invalid_request"},
		{"unknown connector", form("connector_key", "nosuch", "label", "x"), 400, "connector_key", "connector_not_found"},
		{"no connector", form("label", "x"), 400, "connector_key", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := e.api.ListConnections(e.ctx(), client.ConnectionFilter{})
			if err != nil {
				t.Fatal(err)
			}
			p := e.post("/ui/connections", tc.form)
			mustContain(t, p, tc.status, ids("create-connection")...)
			msg := fieldError(p, tc.field)
			if !strings.HasPrefix(msg, tc.code+":") {
				t.Errorf("error beside %s: %q, want code %s\n%s", tc.field, msg, tc.code, p.Body)
			}
			for _, k := range []string{"label", "schedule", "jitter"} {
				if v := tc.form.Get(k); v != "" && !strings.Contains(p.Body, `name="`+k+`" value="`+v+`"`) {
					t.Errorf("re-rendered form lost %s=%q", k, v)
				}
			}
			after, err := e.api.ListConnections(e.ctx(), client.ConnectionFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(after.Items) != len(before.Items) {
				t.Errorf("a refused form created a connection")
			}
		})
	}
}

// TestEditConnectionForm: the edit form changes what differs, clears
// the schedule back to the connector's default when emptied, and places
// each typed refusal beside its field with nothing stored.
func TestEditConnectionForm(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("before", map[string]any{"records": 2})
	path := "/ui/connections/" + conn.ID

	p := e.post(path, form("label", "after", "config", `{"records": 7}`, "schedule", "@every 2h", "jitter", "1m0s"))
	redirect(t, p, path)
	got := e.conn(conn.ID)
	if got.Label != "after" || string(got.Config) != `{"records":7}` || got.Schedule != "@every 2h" || got.Jitter != "1m0s" {
		t.Errorf("stored %+v", got)
	}
	mustContain(t, e.get(path), http.StatusOK, "Connection saved.", `value="after"`)

	// The form as rendered, sent back unchanged, changes nothing.
	before := e.conn(conn.ID)
	redirect(t, e.post(path, form("label", "after", "config", "{\n  \"records\": 7\n}", "schedule", "@every 2h", "jitter", "1m0s")), path)
	if got := e.conn(conn.ID); got.UpdatedAt != before.UpdatedAt {
		t.Errorf("an unchanged form updated the connection: %s → %s", before.UpdatedAt, got.UpdatedAt)
	}
	mustContain(t, e.get(path), http.StatusOK, "Nothing changed.")

	// An empty schedule clears the connection's own: the connector's
	// default is in force again.
	redirect(t, e.post(path, form("label", "after", "config", `{"records": 7}`, "schedule", "", "jitter", "")), path)
	got = e.conn(conn.ID)
	if got.Schedule != "" || got.Jitter != "" || got.ScheduleSource == "own" {
		t.Errorf("cleared schedule: %+v", got)
	}

	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
		code  string
	}{
		{"config not JSON", form("label", "after", "config", "records=3"), "config", "invalid_request"},
		{"config against the schema", form("label", "after", "config", `{"records": "many"}`), "config", "invalid_config"},
		{"bad schedule", form("label", "after", "config", `{"records": 7}`, "schedule", "* * *"), "schedule", "invalid_request"},
		{"bad jitter", form("label", "after", "config", `{"records": 7}`, "schedule", "@every 1h", "jitter", "-5s"), "jitter", "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.conn(conn.ID)
			p := e.post(path, tc.form)
			mustContain(t, p, http.StatusBadRequest, ids("edit-connection", "connection-id")...)
			if msg := fieldError(p, tc.field); !strings.HasPrefix(msg, tc.code+":") {
				t.Errorf("error beside %s: %q, want code %s", tc.field, msg, tc.code)
			}
			if v := tc.form.Get("schedule"); v != "" && !strings.Contains(p.Body, `id="edit-schedule" name="schedule" value="`+v+`"`) {
				t.Errorf("re-rendered form lost schedule %q", v)
			}
			if got := e.conn(conn.ID); got.UpdatedAt != before.UpdatedAt || string(got.Config) != string(before.Config) {
				t.Errorf("a refused edit changed the connection: %+v", got)
			}
		})
	}
}

// TestConnectionLifecycleForms: pause, resume, revoke and delete through
// the console; resuming a revoked connection is the typed conflict.
func TestConnectionLifecycleForms(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("lifecycle", nil)
	path := "/ui/connections/" + conn.ID
	state := func() string { return e.conn(conn.ID).State }

	redirect(t, e.post(path+"/pause", nil), path)
	if s := state(); s != "paused" {
		t.Fatalf("after pause: %s", s)
	}
	mustContain(t, e.get(path), http.StatusOK, "Connection paused", `id="connection-state">paused<`, `id="health-verdict">paused<`)
	redirect(t, e.post(path+"/resume", nil), path)
	if s := state(); s != "active" {
		t.Fatalf("after resume: %s", s)
	}

	mustContain(t, e.get(path+"/revoke"), http.StatusOK, "lifecycle", `action="`+path+`/revoke"`)
	redirect(t, e.post(path+"/revoke", nil), path)
	if s := state(); s != "revoked" {
		t.Fatalf("after revoke: %s", s)
	}
	p := e.get(path)
	mustContain(t, p, http.StatusOK, "Connection revoked", `id="connection-state">revoked<`)
	if strings.Contains(p.Body, `id="revoke-link"`) || strings.Contains(p.Body, `id="resume-form"`) {
		t.Errorf("a revoked connection offers revoke or resume")
	}
	mustContain(t, e.post(path+"/resume", nil), http.StatusConflict, `id="error-code">conflict<`)
	if s := state(); s != "revoked" {
		t.Fatalf("after a refused resume: %s", s)
	}

	redirect(t, e.post(path+"/delete", nil), "/ui/connections")
	mustContain(t, e.get("/ui/connections"), http.StatusOK, "Connection "+conn.ID+" deleted")
	if _, err := e.api.GetConnection(e.ctx(), conn.ID); apiCode(err) != "connection_not_found" {
		t.Errorf("after delete: %v", err)
	}
}

// TestConnectionNotFound: every page and form of a connection that does
// not exist is the typed 404 page.
func TestConnectionNotFound(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	base := "/ui/connections/conn_nosuch"
	for _, tc := range []struct{ method, path string }{
		{"GET", base}, {"GET", base + "/credential"}, {"GET", base + "/revoke"}, {"GET", base + "/delete"},
		{"GET", base + "/checkpoint/reset"}, {"GET", base + "/credential/revoke"}, {"GET", base + "/credential/delete"},
		{"POST", base}, {"POST", base + "/pause"}, {"POST", base + "/resume"}, {"POST", base + "/runs"},
		{"POST", base + "/credential"}, {"POST", base + "/revoke"}, {"POST", base + "/delete"},
		{"POST", base + "/checkpoint/reset"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var p page
			if tc.method == "GET" {
				p = e.get(tc.path)
			} else {
				p = e.post(tc.path, form("label", "x", "value.DEMO_TOKEN", "not-found-0123456789"))
			}
			mustContain(t, p, http.StatusNotFound, `id="error-code">connection_not_found<`)
		})
	}
}

// TestRunButton: a run that starts goes to its page; a refused run goes
// to the refused run's page with the typed refusal as a flash.
func TestRunButton(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	ready := e.demo("ready", map[string]any{"records": 1})
	e.setToken(ready.ID, "run-button-0123456789")
	loc := redirect(t, e.post("/ui/connections/"+ready.ID+"/runs", nil), `/ui/runs/run_[0-9A-Z]+`)
	run := e.waitRun(strings.TrimPrefix(loc, "/ui/runs/"))
	if run.ConnectionID != ready.ID || run.Trigger != "manual" || run.Status != "succeeded" {
		t.Errorf("run %+v", run)
	}

	// A revoked connection's launch is refused, recorded as a run: the
	// browser goes to it, with the typed refusal as a flash.
	if _, err := e.api.RevokeConnection(e.ctx(), ready.ID); err != nil {
		t.Fatal(err)
	}
	loc = redirect(t, e.post("/ui/connections/"+ready.ID+"/runs", nil), `/ui/runs/run_[0-9A-Z]+`)
	refused, err := e.api.GetRun(e.ctx(), strings.TrimPrefix(loc, "/ui/runs/"))
	if err != nil {
		t.Fatal(err)
	}
	if refused.Status != "refused" || refused.FailureCode != "connection_revoked" || refused.ConnectionID != ready.ID {
		t.Errorf("refused run %+v", refused)
	}
	// The flash rides on the next page the browser gets.
	mustContain(t, e.get("/ui/connections"), http.StatusOK, "Run refused: connection_revoked: ", refused.ID)
}

// TestCheckpointReset: the confirmed reset clears the checkpoint.
func TestCheckpointReset(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("checkpointed", map[string]any{"records": 2})
	e.setToken(conn.ID, "checkpoint-0123456789")
	run, err := e.api.TriggerRun(e.ctx(), conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.waitRun(run.ID)
	path := "/ui/connections/" + conn.ID
	mustContain(t, e.get(path), http.StatusOK, ids("checkpoint-state", "checkpoint-reset-link")...)
	mustContain(t, e.get(path+"/checkpoint/reset"), http.StatusOK, ids("confirm-form", "confirm-button")...)
	redirect(t, e.post(path+"/checkpoint/reset", nil), path)
	cp, err := e.api.GetCheckpoint(e.ctx(), conn.ID)
	if err != nil || cp.Present {
		t.Fatalf("after reset: %+v %v", cp, err)
	}
	p := e.get(path)
	mustContain(t, p, http.StatusOK, "Checkpoint reset", "the next run starts from scratch")
	if strings.Contains(p.Body, `id="checkpoint-reset-link"`) {
		t.Errorf("no checkpoint, but a reset link")
	}
	// Resetting nothing says so.
	redirect(t, e.post(path+"/checkpoint/reset", nil), path)
	mustContain(t, e.get(path), http.StatusOK, "There was no checkpoint to reset.")
}

// TestConnectorMissing: a connection whose connector left the catalog
// still has its pages, with the missing connector said where its schema
// and credential names would be; the credential form is not offered.
func TestConnectorMissing(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("orphan", nil)
	empty, _ := catalog.Scan(context.Background(), t.TempDir(), e.h.Launcher.L, catalog.Options{CheckSchedule: schedule.Check})
	e.h.Catalog.Replace(empty)

	path := "/ui/connections/" + conn.ID
	mustContain(t, e.get("/ui/connections"), http.StatusOK, `id="connection-`+conn.ID+`"`, "connector_missing", `id="no-connectors"`)
	mustContain(t, e.get(path), http.StatusOK, `id="health-verdict">connector_missing<`, `id="config-schema"`, "connector_not_found: ")
	p := e.get(path + "/credential")
	mustContain(t, p, http.StatusOK, `id="connector-error"`)
	if strings.Contains(p.Body, `id="credential-form"`) {
		t.Errorf("a credential form without the connector's names")
	}
	mustContain(t, e.post(path+"/credential", form("value.DEMO_TOKEN", "orphan-value-0123456789")), http.StatusConflict,
		`id="error-code">connector_not_found<`)
	if c := e.credential(conn.ID); c.State != "none" {
		t.Errorf("stored %+v", c)
	}
}
