package cli_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const rejectedJSON = `{"file":"/p/bad","field":"connector_key","reason":"connector_key \"Bad Key\" is not a valid key"}`

// connector list --all asks for the rejected files and shows them (file,
// field, reason); connector rescan posts and prints the report.
func TestConnectorListAllAndRescan(t *testing.T) {
	t.Parallel()
	listAll := `{"items":[` + connectorJSON + `],"next":"","rejected":[` + rejectedJSON + `]}`
	report := `{"plugin_dir":"/p","connectors":2,"added":["extra"],"reregistered":["demo"],"removed":[],"rejected":[` + rejectedJSON + `]}`
	tests := []struct {
		name     string
		args     []string
		routes   map[string][]reply
		json     string   // stdout JSON, or
		contains []string // text stdout
		call     call
	}{
		{
			name:   "list --all json",
			args:   []string{"connector", "list", "--all", "-o", "json"},
			routes: map[string][]reply{"GET /v1/connectors": {{body: listAll}}},
			json:   `{"connectors":[` + connectorJSON + `],"rejected":[` + rejectedJSON + `]}`,
			call:   call{Method: "GET", Path: "/v1/connectors", Query: "all=true"},
		},
		{
			name:   "list --all json with nothing: empty arrays, no cursor",
			args:   []string{"connector", "list", "--all", "-o", "json"},
			routes: map[string][]reply{"GET /v1/connectors": {{body: `{"items":null,"next":""}`}}},
			json:   `{"connectors":[],"rejected":[]}`,
			call:   call{Method: "GET", Path: "/v1/connectors", Query: "all=true"},
		},
		{
			name:     "list --all text",
			args:     []string{"connector", "list", "--all"},
			routes:   map[string][]reply{"GET /v1/connectors": {{body: listAll}}},
			contains: []string{"demo", "rejected plugin files: 1", "FILE", "FIELD", "REASON", "/p/bad", "connector_key", `"Bad Key" is not a valid key`},
			call:     call{Method: "GET", Path: "/v1/connectors", Query: "all=true"},
		},
		{
			name:     "list --all with none rejected",
			args:     []string{"connector", "list", "--all"},
			routes:   map[string][]reply{"GET /v1/connectors": {{body: `{"items":[],"next":"","rejected":[]}`}}},
			contains: []string{"rejected plugin files: 0"},
			call:     call{Method: "GET", Path: "/v1/connectors", Query: "all=true"},
		},
		{
			name:   "rescan json",
			args:   []string{"connector", "rescan", "-o", "json"},
			routes: map[string][]reply{"POST /v1/connectors/rescan": {{body: report}}},
			json:   report,
			call:   call{Method: "POST", Path: "/v1/connectors/rescan"},
		},
		{
			name:     "rescan text",
			args:     []string{"connector", "rescan"},
			routes:   map[string][]reply{"POST /v1/connectors/rescan": {{body: report}}},
			contains: []string{"/p", "extra", "demo", "/p/bad"},
			call:     call{Method: "POST", Path: "/v1/connectors/rescan"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(tc.routes)
			res := runCLI(t, api, options{}, tc.args...)
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %s", res.code, res.stderr)
			}
			if tc.json != "" {
				jsonEqual(t, tc.json, res.stdout)
			}
			for _, s := range tc.contains {
				if !strings.Contains(res.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, res.stdout)
				}
			}
			if diff := cmp.Diff([]call{tc.call}, api.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}
