package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
)

// TestOpenAPIRequiredMatchesOmitempty: a schema's required properties
// are exactly the fields its Go type always writes; a field that may be
// absent (omitempty: an absent time, an unset option) is not required.
// Absent values are omitted, never written as "".
func TestOpenAPIRequiredMatchesOmitempty(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string                   `json:"required"`
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{
		"Connection": apitypes.Connection{}, "Credential": apitypes.Credential{}, "Validity": apitypes.Validity{},
		"Run": apitypes.Run{}, "Host": apitypes.Host{}, "Record": apitypes.Record{}, "AuditEvent": apitypes.AuditEvent{},
		"EnrollmentEntry": apitypes.EnrollmentEntry{}, "RunEvent": apitypes.RunEvent{},
		"Checkpoint": apitypes.Checkpoint{}, "CheckpointReset": apitypes.CheckpointReset{},
		"ConnectionHealth": apitypes.Health{}, "Hold": apitypes.Hold{}, "Streak": apitypes.Streak{},
		"StreakFailures": apitypes.Failures{}, "AttentionItem": apitypes.AttentionItem{},
		"Provenance": apitypes.Provenance{}, "ProvenanceCredential": apitypes.ProvenanceCredential{},
		"EnvVar": apitypes.EnvVar{}, "Refusal": apitypes.Refusal{}, "Explain": apitypes.Explain{},
		"ExplainHealth": apitypes.ExplainHealth{}, "ExplainLaunch": apitypes.ExplainLaunch{},
	} {
		t.Run(name, func(t *testing.T) {
			s, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("schema %s missing", name)
			}
			rt := reflect.TypeOf(v)
			for i := range rt.NumField() {
				f := rt.Field(i)
				jname, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if !f.IsExported() || jname == "-" {
					continue
				}
				if _, ok := s.Properties[jname]; !ok {
					t.Errorf("%s.%s is not a property of the schema", name, jname)
				}
				omitted := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
				required := slices.Contains(s.Required, jname)
				if omitted == required {
					t.Errorf("%s.%s: omitempty %v, required %v", name, jname, omitted, required)
				}
			}
		})
	}
}

// TestAbsentTimesAreOmitted: a time not reached is absent from the JSON,
// never "".
func TestAbsentTimesAreOmitted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 1}, "")
	e.setToken(c.ID, "tok-absent-times")
	r := e.call("GET", "/v1/connections/"+c.ID+"/credential", nil)
	// A revoked connection's refused run: created and ended, never started.
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/revoke", nil, nil)
	refused := e.call("POST", "/v1/connections/"+c.ID+"/runs", nil).ErrorBody(t).RunID
	run := e.call("GET", "/v1/runs/"+refused, nil)
	for what, tc := range map[string]struct {
		body          []byte
		absent, there []string
	}{
		"credential":  {r.Body, []string{"rotated_at", "revoked_at"}, []string{"captured_at"}},
		"refused run": {run.Body, []string{"started_at"}, []string{"created_at", "ended_at"}},
	} {
		var m map[string]any
		if err := json.Unmarshal(tc.body, &m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for _, k := range tc.absent {
			if v, ok := m[k]; ok {
				t.Errorf("%s: %s = %q, want it absent", what, k, v)
			}
		}
		for _, k := range tc.there {
			if s, _ := m[k].(string); s == "" {
				t.Errorf("%s: %s missing", what, k)
			}
		}
	}
}
