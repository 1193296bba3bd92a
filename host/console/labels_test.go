package console_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/store"
)

// row returns the <tr> of a page with the given id attribute.
func row(t *testing.T, p page, id string) string {
	t.Helper()
	start := strings.Index(p.Body, `<tr id="`+id+`"`)
	if start < 0 {
		t.Fatalf("no row %s:\n%s", id, p.Body)
	}
	end := strings.Index(p.Body[start:], "</tr>")
	if end < 0 {
		t.Fatalf("row %s does not end", id)
	}
	return p.Body[start : start+end]
}

// auditRowOf returns the audit page's row of the event with operation
// op on target.
func auditRowOf(t *testing.T, p page, op, target string) string {
	t.Helper()
	for _, r := range strings.Split(p.Body, `<tr class="audit-event"`)[1:] {
		r, _, _ = strings.Cut(r, "</tr>")
		if strings.Contains(r, "<code>"+op+"</code>") && strings.Contains(r, target) {
			return r
		}
	}
	t.Fatalf("no %s event on %s:\n%s", op, target, p.Body)
	return ""
}

// TestConnectionLabels: the runs, enrollment and audit pages show each
// connection's label, linking to it, beside its id; a deleted
// connection's id is shown as deleted, without a link.
func TestConnectionLabels(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	kept := e.demo("Kept <label>", nil)
	gone := e.demo("Gone label", nil)
	keptRun := storedRuns(t, e.env, kept.ID, store.TriggerScheduled, "host_test", 1)[0]
	goneRun := storedRuns(t, e.env, gone.ID, store.TriggerScheduled, "host_test", 1)[0]
	if _, err := e.api.DeleteConnection(e.ctx(), gone.ID); err != nil {
		t.Fatal(err)
	}
	keptLink := `<a href="/ui/connections/` + kept.ID + `" class="conn-label">Kept &lt;label&gt;</a>`
	goneMark := `<code class="id">` + gone.ID + `</code> <span class="muted conn-deleted">(deleted)</span>`

	runs := e.get("/ui/runs")
	enrollment := e.get("/ui/enrollment")
	audit := e.get("/ui/audit?operation=connection.create")
	for _, p := range []page{runs, enrollment, audit} {
		mustContain(t, p, http.StatusOK)
	}
	for _, tc := range []struct {
		name string
		row  func() string
		want []string
		not  []string
	}{
		{"runs, kept", func() string { return row(t, runs, "run-"+keptRun.ID) }, []string{keptLink, kept.ID}, []string{"(deleted)"}},
		{"runs, deleted", func() string { return row(t, runs, "run-"+goneRun.ID) }, []string{goneMark},
			[]string{`href="/ui/connections/` + gone.ID + `"`, "Gone label"}},
		{"enrollment, kept", func() string { return row(t, enrollment, "enrollment-"+kept.ID) }, []string{keptLink}, nil},
		{"audit, kept", func() string { return auditRowOf(t, audit, "connection.create", kept.ID) }, []string{keptLink}, nil},
		{"audit, deleted", func() string { return auditRowOf(t, audit, "connection.create", gone.ID) }, []string{goneMark},
			[]string{`href="/ui/connections/` + gone.ID + `"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.row()
			for _, w := range tc.want {
				if !strings.Contains(r, w) {
					t.Errorf("row lacks %q:\n%s", w, r)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(r, n) {
					t.Errorf("row holds %q:\n%s", n, r)
				}
			}
		})
	}
}

var (
	tableRE = regexp.MustCompile(`(?s)<div class="table-wrap cards">\s*<table id="([a-z-]+)">(.*?)</table>`)
	tdRE    = regexp.MustCompile(`<td\b[^>]*>`)
	thRE    = regexp.MustCompile(`<th scope="col">([^<]*)</th>`)
)

// TestCardTables: the tables that turn into cards at phone width carry
// the class that does it, and every cell of them is labelled with its
// column's heading (data-label, shown before the cell at phone width).
func TestCardTables(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("cards", map[string]any{"records": 2})
	e.setToken(conn.ID, "cards-token-0123456789")
	e.demo("bare", nil) // no credential: a row on the attention page
	run, err := e.api.TriggerRun(e.ctx(), conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.waitRun(run.ID)
	for _, tc := range []struct {
		path   string
		tables []string
	}{
		{"/ui/connections", []string{"connections"}},
		{"/ui/runs", []string{"runs"}},
		{"/ui/attention", []string{"attention"}},
		{"/ui/audit", []string{"audit"}},
		{"/ui/connectors", []string{"connectors"}},
		{"/ui/enrollment", []string{"enrollment"}},
		{"/ui/connections/" + conn.ID + "/records", []string{"records"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			p := e.get(tc.path)
			mustContain(t, p, http.StatusOK)
			found := map[string]bool{}
			for _, m := range tableRE.FindAllStringSubmatch(p.Body, -1) {
				found[m[1]] = true
				var heads []string
				for _, h := range thRE.FindAllStringSubmatch(m[2], -1) {
					heads = append(heads, h[1])
				}
				cells := tdRE.FindAllString(m[2], -1)
				if len(cells) == 0 {
					t.Errorf("table %s has no cell", m[1])
				}
				for i, td := range cells {
					want := `data-label="` + heads[i%len(heads)] + `"`
					if !strings.Contains(td, want) {
						t.Errorf("table %s: cell %d is %s, want %s", m[1], i, td, want)
					}
				}
			}
			for _, id := range tc.tables {
				if !found[id] {
					t.Errorf("no card table %s", id)
				}
			}
		})
	}
}
