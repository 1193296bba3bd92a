package console_test

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
)

var nextPageRE = regexp.MustCompile(`id="next-page" href="([^"]+)"`)

// nextPage returns the page's #next-page link ("" when it has none).
func nextPage(t *testing.T, p page) string {
	t.Helper()
	m := nextPageRE.FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// storedRuns creates n runs of connID straight in the store, each ended
// failed, with the trigger and host given: history the runs page lists
// without spawning a connector per row.
func storedRuns(t *testing.T, e *env, connID string, trigger store.RunTrigger, hostID string, n int) []store.Run {
	t.Helper()
	ctx := context.Background()
	var out []store.Run
	for range n {
		nr := store.NewRun{ConnectionID: connID, Trigger: trigger, HostID: hostID, ScheduledFor: e.h.Clock.Now()}
		if trigger == store.TriggerRetry {
			first, err := e.h.Store.CreateRun(ctx, store.NewRun{ConnectionID: connID, Trigger: store.TriggerScheduled, HostID: hostID})
			if err != nil {
				t.Fatal(err)
			}
			nr.RetryOf, nr.Attempt = first.ID, 2
		}
		r, err := e.h.Store.CreateRun(ctx, nr)
		if err != nil {
			t.Fatal(err)
		}
		r, err = e.h.Store.FinishRun(ctx, r.ID, store.RunResult{Status: store.RunFailed, FailureCode: failure.ConnectorFailed,
			FailureMessage: "injected"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestAttentionPage(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	p := e.get("/ui/")
	if p.Status != http.StatusSeeOther || p.Location() != "/ui/attention" {
		t.Fatalf("/ui/: %s %q", p, p.Location())
	}
	mustContain(t, e.get("/ui/attention"), http.StatusOK, `id="attention-empty"`)

	c := e.h.CreateDemo(map[string]any{}, "")
	p = e.get("/ui/attention")
	mustContain(t, p, http.StatusOK, `<table id="attention">`, `id="attention-`+c.ID+`"`, "needs_credential",
		`href="/ui/connections/`+c.ID+`"`, "<time datetime=")
	if strings.Contains(p.Body, `id="attention-empty"`) {
		t.Errorf("a list with an entry says it is empty")
	}
}

func TestEnrollmentPage(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	mustContain(t, e.get("/ui/enrollment"), http.StatusOK, `id="enrollment-empty"`)
	c := e.h.CreateDemo(map[string]any{}, "@every 1h")
	mustContain(t, e.get("/ui/enrollment"), http.StatusOK, `<table id="enrollment">`, `id="enrollment-`+c.ID+`"`,
		"demo", "<time datetime=")
}

func TestRunsFilters(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	a := e.h.CreateDemo(map[string]any{"records": 3}, "")
	e.h.SetToken(a.ID, "token-runs-filter")
	b := e.h.CreateDemo(map[string]any{}, "")
	manual, err := e.h.RunNow(a.ID)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := e.h.Trigger(b.ID)
	if err == nil {
		refused, _ = e.h.Wait(refused.ID)
	}
	if refused.Status != store.RunRefused {
		t.Fatalf("run without a credential: %+v", refused)
	}
	scheduled := storedRuns(t, e, a.ID, store.TriggerScheduled, "host_other", 1)[0]
	retry := storedRuns(t, e, b.ID, store.TriggerRetry, "host_other", 1)[0]
	retried := retry.RetryOf

	all := []string{manual.ID, refused.ID, scheduled.ID, retry.ID, retried}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"none", "", all},
		{"connection", "connection=" + a.ID, []string{manual.ID, scheduled.ID}},
		{"trigger manual", "trigger=manual", []string{manual.ID, refused.ID}},
		{"trigger scheduled", "trigger=scheduled", []string{scheduled.ID, retried}},
		{"trigger retry", "trigger=retry", []string{retry.ID}},
		{"status", "status=refused", []string{refused.ID}},
		{"host", "host=host_other", []string{scheduled.ID, retry.ID, retried}},
		{"all four", "connection=" + b.ID + "&trigger=retry&status=failed&host=host_other", []string{retry.ID}},
		{"nothing matches", "connection=" + a.ID + "&status=cancelled", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.get("/ui/runs?" + tt.query)
			mustContain(t, p, http.StatusOK, `id="runs-filter"`, `<label for="filter-trigger">`)
			for _, id := range all {
				has := strings.Contains(p.Body, `id="run-`+id+`"`)
				if want := slices.Contains(tt.want, id); has != want {
					t.Errorf("run %s listed %v, want %v", id, has, want)
				}
			}
			if len(tt.want) == 0 {
				mustContain(t, p, http.StatusOK, `id="runs-empty"`)
			}
		})
	}

	// The filter suggests the connections and hosts there are.
	mustContain(t, e.get("/ui/runs"), http.StatusOK, `<datalist id="connections-list">`, `<option value="`+a.ID+`">demo (demo)</option>`,
		`<datalist id="hosts-list"><option value="host_test">`)

	// A filter the API refuses shows its typed error beside the input,
	// with the API's status.
	bad := []struct {
		name, query string
		status      int
		says        []string
	}{
		{"unknown status", "status=done", http.StatusBadRequest, []string{`id="error-status"`, "invalid_request", `<option value="done" selected>`}},
		{"unknown trigger", "trigger=cron", http.StatusBadRequest, []string{`id="error-trigger"`, "invalid_request", "manual, scheduled, retry"}},
		{"connection naming none", "connection=conn_nope", http.StatusNotFound, []string{`id="error-connection"`, "connection_not_found", "conn_nope"}},
		{"host naming none", "host=host_nope", http.StatusNotFound, []string{`id="error-host"`, "not_found"}},
		{"bad cursor", "cursor=x", http.StatusBadRequest, []string{`id="form-error"`, "invalid_cursor", "(field cursor)"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			mustContain(t, e.get("/ui/runs?"+tt.query), tt.status, append([]string{`id="runs-filter"`}, tt.says...)...)
		})
	}
}

func TestRunsPaging(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{}, "")
	runs := storedRuns(t, e, c.ID, store.TriggerScheduled, "host_test", 53)
	seen := map[string]bool{}
	path := "/ui/runs?connection=" + c.ID + "&trigger=scheduled"
	pages := 0
	for path != "" {
		p := e.get(path)
		mustContain(t, p, http.StatusOK, `<table id="runs">`)
		pages++
		for _, r := range runs {
			if strings.Contains(p.Body, `id="run-`+r.ID+`"`) {
				if seen[r.ID] {
					t.Errorf("run %s on two pages", r.ID)
				}
				seen[r.ID] = true
			}
		}
		next := nextPage(t, p)
		if next != "" && (!strings.Contains(next, "connection="+c.ID) || !strings.Contains(next, "trigger=scheduled")) {
			t.Fatalf("the next page drops the filters: %q", next)
		}
		if next != "" && !strings.Contains(p.Body, `id="run-`) {
			t.Fatalf("an empty page links a next one")
		}
		path = next
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if pages != 2 || len(seen) != len(runs) {
		t.Errorf("%d of %d runs over %d pages, want all over 2", len(seen), len(runs), pages)
	}
}

func TestRecordsPage(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c := e.h.CreateDemo(map[string]any{"records": 30, "echo_env": []string{"DEMO_TOKEN"}}, "")
	e.h.SetToken(c.ID, "token-records-page")
	run, err := e.h.RunNow(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	base := "/ui/connections/" + c.ID + "/records"

	p := e.get(base + "?stream=events")
	mustContain(t, p, http.StatusOK, `id="records-filter"`, `<label for="stream">`, `<option value="events" selected>`,
		`<option value="env">`, `<table id="records">`, `class="record"`, `href="/ui/runs/`+run.ID+`"`, "<time datetime=",
		`class="record-data"`, `&#34;id&#34;: 0`)
	if n := strings.Count(p.Body, `class="record"`); n != 25 {
		t.Errorf("first page: %d records, want 25", n)
	}
	next := nextPage(t, p)
	if !strings.Contains(next, "stream=events") || !strings.Contains(next, "cursor=") {
		t.Fatalf("next page %q", next)
	}
	p = e.get(next)
	mustContain(t, p, http.StatusOK, `id="first-page"`)
	if n := strings.Count(p.Body, `class="record"`); n != 5 || nextPage(t, p) != "" {
		t.Errorf("last page: %d records, next %q; want 5 and none", n, nextPage(t, p))
	}

	// The env stream holds one record, keyed by name.
	mustContain(t, e.get(base+"?stream=env"), http.StatusOK, `<code class="id">DEMO_TOKEN</code>`)
	// A stream the connector does not declare: the API's 404 beside the
	// chooser.
	mustContain(t, e.get(base+"?stream=nope"), http.StatusNotFound, `id="error-stream"`, "not_found", "streams: events, env")
	mustContain(t, e.get("/ui/connections/conn_nope/records"), http.StatusNotFound, `id="error-code">connection_not_found<`)
}

func TestAuditPage(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	var ids []string
	for range 52 {
		ids = append(ids, e.h.CreateDemo(map[string]any{}, "").ID)
	}
	e.h.SetToken(ids[0], "token-audit-page")

	p := e.get("/ui/audit?target=" + ids[0])
	mustContain(t, p, http.StatusOK, `id="audit-filter"`, `<label for="filter-target">`, `<table id="audit">`,
		`class="audit-event"`, "connection.create", "credential.capture", `href="/ui/connections/`+ids[0]+`"`, "<time datetime=")
	if strings.Contains(p.Body, ids[1]) {
		t.Errorf("the target filter lets another connection's events through")
	}
	p = e.get("/ui/audit?operation=credential.capture")
	if n := strings.Count(p.Body, `class="audit-event"`); n != 1 {
		t.Errorf("operation filter: %d events, want 1", n)
	}

	seen := 0
	path := "/ui/audit?operation=connection.create"
	for pages := 0; path != ""; pages++ {
		if pages == 3 {
			t.Fatal("paging does not end")
		}
		p := e.get(path)
		mustContain(t, p, http.StatusOK, `<table id="audit">`)
		seen += strings.Count(p.Body, `class="audit-event"`)
		path = nextPage(t, p)
		if path != "" && !strings.Contains(path, "operation=connection.create") {
			t.Fatalf("the next page drops the filter: %q", path)
		}
	}
	if seen != 52 {
		t.Errorf("%d connection.create events over the pages, want 52", seen)
	}
	mustContain(t, e.get("/ui/audit?cursor=nope"), http.StatusBadRequest, "invalid_cursor", `id="form-error"`)
	mustContain(t, e.get("/ui/audit?operation=nothing.such"), http.StatusOK, `id="audit-empty"`)
}

func TestActivityPagesNeedASession(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	for _, path := range []string{"/ui/attention", "/ui/enrollment", "/ui/runs", "/ui/runs/run_x", "/ui/audit",
		"/ui/connections/conn_x/records"} {
		p := e.get(path)
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location(), "/ui/signin?next=") {
			t.Errorf("%s without a session: %s %q", path, p, p.Location())
		}
	}
}

// waitStatus waits (bounded) until the run has the status.
func waitStatus(t *testing.T, e *env, runID string, status store.RunStatus) {
	t.Helper()
	e.h.WaitFor(30*time.Second, func() bool {
		r, err := e.h.Store.GetRun(context.Background(), runID)
		return err == nil && r.Status == status
	})
}
