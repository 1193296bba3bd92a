package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/client"
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
		{"health=needs_credential", http.StatusOK, []string{needs.ID}, []string{ready.ID}},
		{"health=never_run", http.StatusOK, []string{ready.ID}, []string{needs.ID}},
		{"health=healthy", http.StatusOK, []string{`id="connections-empty"`}, []string{needs.ID, ready.ID}},
		{"connector=demo&health=never_run", http.StatusOK, []string{ready.ID}, []string{needs.ID}},
		{"health=sick", http.StatusOK, []string{`id="form-error"`, "invalid_request"}, []string{needs.ID}},
		{"connector=nosuch", http.StatusOK, []string{`id="form-error"`, "connector_not_found"}, []string{needs.ID}},
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
