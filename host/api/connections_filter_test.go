package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
)

// TestListConnectionsHealthFilter: ?health= keeps the connections whose
// derived health has that verdict; it combines with the other filters,
// a filtered page may be short while its next continues, and an
// unknown verdict is a typed 400 naming the field.
func TestListConnectionsHealthFilter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	needs := e.createDemo(map[string]any{"records": 1}, farSchedule)
	neverRun := e.createDemo(map[string]any{"records": 1}, farSchedule)
	e.setToken(neverRun.ID, "tok-health-filter-0123")
	paused := e.createDemo(map[string]any{"records": 1}, farSchedule)
	e.ok(http.StatusOK, "POST", "/v1/connections/"+paused.ID+"/pause", nil, nil)
	needs2 := e.createDemo(map[string]any{"records": 1}, farSchedule)

	// all follows every page of a list and returns the ids in order and
	// the number of pages read.
	all := func(t *testing.T, q url.Values) ([]string, int) {
		t.Helper()
		var ids []string
		pages := 0
		for {
			var l apitypes.List[apitypes.Connection]
			e.ok(http.StatusOK, "GET", "/v1/connections?"+q.Encode(), nil, &l)
			pages++
			for _, c := range l.Items {
				if c.Health == nil || c.Health.Verdict != q.Get("health") && q.Get("health") != "" {
					t.Errorf("%s: %s has health %+v", q.Encode(), c.ID, c.Health)
				}
				ids = append(ids, c.ID)
			}
			if l.Next == "" {
				return ids, pages
			}
			q.Set("cursor", l.Next)
		}
	}

	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
		pages int // 0: not checked
	}{
		{"needs_credential", url.Values{"health": {"needs_credential"}}, []string{needs.ID, needs2.ID}, 1},
		{"never_run", url.Values{"health": {"never_run"}}, []string{neverRun.ID}, 1},
		{"paused", url.Values{"health": {"paused"}}, []string{paused.ID}, 1},
		{"a verdict no connection has", url.Values{"health": {"healthy"}}, nil, 1},
		{"with connector", url.Values{"health": {"paused"}, "connector": {"demo"}}, []string{paused.ID}, 1},
		{"with state", url.Values{"health": {"needs_credential"}, "state": {"paused"}}, nil, 1},
		// One connection a page: the scan reads on past connections of
		// other verdicts, so each page holds a match, and the last
		// page's next (after needs2, the last connection) ends the list.
		{"paged", url.Values{"health": {"needs_credential"}, "limit": {"1"}}, []string{needs.ID, needs2.ID}, 2},
		{"paged, two a page", url.Values{"health": {"needs_credential"}, "limit": {"2"}}, []string{needs.ID, needs2.ID}, 1},
		{"no filter", url.Values{}, []string{needs.ID, neverRun.ID, paused.ID, needs2.ID}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, pages := all(t, tc.query)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ids %v, want %v", got, tc.want)
			}
			if tc.pages != 0 && pages != tc.pages {
				t.Errorf("%d pages, want %d", pages, tc.pages)
			}
		})
	}

	for _, bad := range []string{"sick", "HEALTHY", "needs-credential"} {
		t.Run("unknown "+bad, func(t *testing.T) {
			r := e.call("GET", "/v1/connections?health="+url.QueryEscape(bad), nil)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.Status, r)
			}
			if b := r.ErrorBody(t); b.Code != apitypes.CodeInvalidRequest || b.Field != "health" {
				t.Errorf("error %+v, want invalid_request on field health", b)
			}
		})
	}
}
