package cli_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// compact is s as compact JSON.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return b.String()
}

// TestOpaqueJSONPassesThrough: what a connector or a user wrote as JSON
// (record data, a connection's config, a checkpoint's state, a connector's
// config schema) is printed byte for byte, with -o json and in the text
// output: keys in their order, an int64 beyond 2^53 not rounded through a
// float64, 1.50 not turned into 1.5.
func TestOpaqueJSONPassesThrough(t *testing.T) {
	t.Parallel()
	const data = `{"z":1,"big":9007199254740993,"a":{"y":1.50,"x":[-0,1e400]}}`
	record := `{"stream":"events","key":"1","data":` + data + `,"run_id":"r1","updated_at":""}`
	conn := `{"id":"c1","connector_key":"demo","label":"L","config":` + data + `,"schedule":"","schedule_source":"none","state":"active","created_at":"","updated_at":""}`
	checkpoint := `{"connection_id":"c1","present":true,"state":` + data + `,"bytes":60,"run_id":"r1","updated_at":"2025-01-02T03:04:05Z"}`
	connector := strings.TrimSuffix(connectorJSON, `}`) + `,"config_schema":` + data + `}`
	routes := map[string][]reply{
		"GET /v1/connections/c1/records":    {{body: list(record)}},
		"GET /v1/connections/c1":            {{body: conn}},
		"GET /v1/connections":               {{body: list(conn)}},
		"GET /v1/connections/c1/checkpoint": {{body: checkpoint}},
		"GET /v1/connectors/demo":           {{body: connector}},
	}
	for _, tt := range []struct {
		args []string
		// field picks the opaque value out of the -o json output; nil for
		// text output, which must hold data on one line.
		field func(out []byte) (json.RawMessage, error)
	}{
		{[]string{"records", "list", "c1", "-o", "json"}, func(out []byte) (json.RawMessage, error) {
			var v []struct{ Data json.RawMessage }
			err := json.Unmarshal(out, &v)
			if len(v) != 1 {
				return nil, err
			}
			return v[0].Data, err
		}},
		{[]string{"records", "list", "c1"}, nil},
		{[]string{"connection", "show", "c1", "-o", "json"}, func(out []byte) (json.RawMessage, error) {
			var v struct{ Config json.RawMessage }
			return v.Config, json.Unmarshal(out, &v)
		}},
		{[]string{"connection", "list", "-o", "json"}, func(out []byte) (json.RawMessage, error) {
			var v []struct{ Config json.RawMessage }
			err := json.Unmarshal(out, &v)
			if len(v) != 1 {
				return nil, err
			}
			return v[0].Config, err
		}},
		{[]string{"connection", "show", "c1"}, nil},
		{[]string{"connection", "state", "c1", "-o", "json"}, func(out []byte) (json.RawMessage, error) {
			var v struct{ State json.RawMessage }
			return v.State, json.Unmarshal(out, &v)
		}},
		{[]string{"connection", "state", "c1"}, nil},
		{[]string{"connector", "show", "demo", "-o", "json"}, func(out []byte) (json.RawMessage, error) {
			var v struct {
				ConfigSchema json.RawMessage `json:"config_schema"`
			}
			return v.ConfigSchema, json.Unmarshal(out, &v)
		}},
		{[]string{"connector", "show", "demo"}, nil},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, newFakeAPI(routes), options{}, tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if tt.field == nil {
				if !strings.Contains(res.stdout, data) {
					t.Errorf("stdout lacks %s:\n%s", data, res.stdout)
				}
				return
			}
			got, err := tt.field([]byte(res.stdout))
			if err != nil || got == nil {
				t.Fatalf("%v:\n%s", err, res.stdout)
			}
			if c := compact(t, string(got)); c != data {
				t.Errorf("printed %s, want %s", c, data)
			}
		})
	}
	t.Run("config sent as written", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(map[string][]reply{
			"POST /v1/connections":     {{status: 201, body: conn}},
			"PATCH /v1/connections/c1": {{body: conn}},
		})
		for _, args := range [][]string{
			{"connection", "create", "--connector", "demo", "--label", "L", "--config", `{"fail_at":9007199254740993}`},
			{"connection", "update", "c1", "--config", `{"fail_at":9007199254740993}`},
		} {
			if res := runCLI(t, api, options{}, args...); res.code != 0 {
				t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
			}
		}
		for _, c := range api.Calls() {
			if !strings.Contains(c.Body, `"fail_at":9007199254740993`) {
				t.Errorf("%s %s sent %s", c.Method, c.Path, c.Body)
			}
		}
	})
}
