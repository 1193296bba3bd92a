package api_test

import (
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/version"
	"github.com/google/go-cmp/cmp"
)

// TestVersionEndpoint: GET /v1/version is this binary's build, behind the
// operator token, and documented field for field.
func TestVersionEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var got version.Info
	e.ok(http.StatusOK, "GET", "/v1/version", nil, &got)
	if diff := cmp.Diff(version.Get(), got); diff != "" {
		t.Errorf("version (-want +got):\n%s", diff)
	}
	if got.Version == "" || got.Go != runtime.Version() || got.OS != runtime.GOOS || got.Arch != runtime.GOARCH {
		t.Errorf("version = %+v", got)
	}
	if r := e.callToken("GET", "/v1/version", nil, ""); r.Status != http.StatusUnauthorized {
		t.Errorf("without a token: %s", r)
	}

	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	e.ok(http.StatusOK, "GET", "/v1/openapi.json", nil, &doc)
	var props []string
	for p := range doc.Components.Schemas["BuildInfo"].Properties {
		props = append(props, p)
	}
	slices.Sort(props)
	if diff := cmp.Diff(jsonFields(version.Info{}), props); diff != "" {
		t.Errorf("version.Info fields (-) vs BuildInfo properties (+):\n%s", diff)
	}
}

// TestEmptyLabelRefused: an empty or blank label is a 400 invalid_request
// naming the field, at create and at update, and nothing changes.
func TestEmptyLabelRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(nil, "")
	tests := []struct {
		name, method, path, body string
	}{
		{"create without label", "POST", "/v1/connections", `{"connector_key":"demo"}`},
		{"create with empty label", "POST", "/v1/connections", `{"connector_key":"demo","label":""}`},
		{"create with blank label", "POST", "/v1/connections", `{"connector_key":"demo","label":"  \t"}`},
		{"update to empty label", "PATCH", "/v1/connections/" + c.ID, `{"label":""}`},
		{"update to blank label", "PATCH", "/v1/connections/" + c.ID, `{"label":" "}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.path, tt.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("got %s", r)
			}
			if b := r.ErrorBody(t); b.Code != apitypes.CodeInvalidRequest || b.Field != "label" {
				t.Errorf("error body %+v", b)
			}
		})
	}
	var list apitypes.List[apitypes.Connection]
	e.ok(http.StatusOK, "GET", "/v1/connections", nil, &list)
	if len(list.Items) != 1 || list.Items[0].Label != c.Label {
		t.Errorf("connections after the refusals: %+v", list.Items)
	}
	var updated apitypes.Connection
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, `{"label":"renamed"}`, &updated)
	if updated.Label != "renamed" {
		t.Errorf("label = %q", updated.Label)
	}
}

// TestRunEventsCountReceivedAndCommitted: progress and records events say
// how many records the host received and how many of those are
// committed, so a follower never reads "24/60, 0 records" as a
// contradiction.
func TestRunEventsCountReceivedAndCommitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 12, "record_delay_ms": 20}, "")
	e.setToken(c.ID, "tok-received")
	var run apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)
	_, body := e.openEvents(run.ID)
	events, _ := readSSE(t, body)
	var progress, records int
	var received int64
	for _, ev := range events {
		switch d := ev.Data; ev.Event {
		case "progress":
			if d.Received < d.Records || d.Received < received {
				t.Errorf("progress event received %d (before: %d), committed %d", d.Received, received, d.Records)
			}
			received = d.Received
			if d.Received > 0 {
				progress++
			}
		case "records":
			records++
			// Received goes on while a commit runs: it is never less.
			if d.Received < d.Records || d.Records == 0 {
				t.Errorf("records event received %d, committed %d", d.Received, d.Records)
			}
			// By stream, summing to the total: the run page's live rows.
			var sum int64
			for _, n := range d.StreamRecords {
				sum += n
			}
			if sum != d.Records || d.StreamRecords["events"] == 0 {
				t.Errorf("records event by stream %v, committed %d", d.StreamRecords, d.Records)
			}
		}
	}
	if progress == 0 || records == 0 {
		t.Fatalf("%d progress and %d records events", progress, records)
	}
	if end := events[len(events)-1].Data; end.Kind != "end" || end.Records != 12 {
		t.Errorf("end %+v", end)
	}
}

// TestNoHTMLEscaping: the API sends text as written ("> fortune", not
// "\u003e fortune"): it serves application/json with nosniff, never HTML.
func TestNoHTMLEscaping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	r := e.call("POST", "/v1/connections", apitypes.ConnectionCreateRequest{ConnectorKey: "demo", Label: "> fortune & <b>"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %s", r)
	}
	for _, b := range []string{string(r.Body), string(e.call("GET", "/v1/connections", nil).Body)} {
		if !strings.Contains(b, `"label":"> fortune & <b>"`) || strings.Contains(b, `\u003e`) {
			t.Errorf("body escapes HTML: %.300s", b)
		}
	}
}
