package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/connhost/connhost/host/cli"
	"github.com/connhost/connhost/host/server"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testToken = "test-operator-token"

// call is one request the fake API received.
type call struct {
	Method string
	Path   string
	Query  string
	Body   string
}

// reply is a canned response.
type reply struct {
	status int
	body   string
	sse    bool // text/event-stream
}

// fakeAPI answers "METHOD /path" with canned replies; several replies for
// one route are served in turn, the last one repeating. Unknown routes get
// a typed 404.
type fakeAPI struct {
	mu     sync.Mutex
	routes map[string][]reply
	calls  []call
	auth   []string
}

func newFakeAPI(routes map[string][]reply) *fakeAPI {
	own := make(map[string][]reply, len(routes)) // tests share route tables
	for k, v := range routes {
		own[k] = append([]reply(nil), v...)
	}
	return &fakeAPI{routes: own}
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.EscapedPath()
	f.mu.Lock()
	f.calls = append(f.calls, call{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(body)})
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	replies := f.routes[key]
	var rep reply
	switch len(replies) {
	case 0:
		rep = reply{status: 404, body: `{"error":{"code":"not_found","message":"no route ` + key + `"}}`}
	case 1:
		rep = replies[0]
	default:
		rep = replies[0]
		f.routes[key] = replies[1:]
	}
	f.mu.Unlock()
	if rep.sse {
		w.Header().Set("Content-Type", "text/event-stream")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	if rep.status == 0 {
		rep.status = 200
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (f *fakeAPI) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// result is one CLI invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

// options tune one invocation.
type options struct {
	stdin    string
	env      map[string]string
	terminal bool // stdout and stderr are terminals
	rt       func(*cli.Runtime)
}

// runCLI runs the CLI against the fake API.
func runCLI(t *testing.T, api http.Handler, o options, args ...string) result {
	t.Helper()
	env := map[string]string{cli.EnvToken: testToken}
	if api != nil {
		srv := httptest.NewServer(api)
		t.Cleanup(srv.Close)
		env[cli.EnvAddr] = srv.URL
	}
	for k, v := range o.env {
		env[k] = v
	}
	var stdout, stderr bytes.Buffer
	rt := cli.Runtime{
		Stdin:          strings.NewReader(o.stdin),
		Stdout:         &stdout,
		Stderr:         &stderr,
		StdoutTerminal: o.terminal,
		StderrTerminal: o.terminal,
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		Environ:      func() []string { return []string{"PATH=/bin"} },
		ReadToken:    func(string) (string, error) { return "", server.ErrNoToken },
		PollInterval: 1,
		Serve: func(context.Context, server.Config) error {
			return errors.New("serve not expected in this test")
		},
	}
	if o.rt != nil {
		o.rt(&rt)
	}
	code := cli.Run(context.Background(), args, rt)
	return result{stdout.String(), stderr.String(), code}
}

// jsonEqual compares JSON texts structurally.
func jsonEqual(t *testing.T, want, got string) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v\n%s", err, want)
	}
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
}

// Canned API bodies.
const (
	connectorJSON  = `{"connector_key":"demo","version":"1.0.0","display_name":"Demo","auth":{"kind":"static_secret","required":["DEMO_TOKEN"]},"env_passthrough":["DEMO_LABEL"],"streams":[{"name":"events","key_fields":["id"]}],"default_schedule":"@every 1m","auto_enroll":true,"sha256":"abc"}`
	connectionJSON = `{"id":"c1","connector_key":"demo","label":"L","config":{"records":5},"schedule":"@every 1s","schedule_in_force":"@every 1s","schedule_source":"own","state":"active","created_at":"2025-01-02T04:04:05+01:00","updated_at":"2025-01-02T03:04:05Z","enrollment":{"connection_id":"c1","connector_key":"demo","outcome":"enrolled","evaluated_at":"2025-01-02T03:04:05Z"},"coalesced_ticks":0}`
	credentialJSON = `{"present":true,"kind":"static_secret","state":"active","names":["DEMO_TOKEN"],"key_id":7,"captured_at":"2025-01-02T03:04:05Z"}`
	queuedRunJSON  = `{"id":"r1","connection_id":"c1","trigger":"manual","attempt":1,"status":"queued","failure_code":"","created_at":"2025-01-02T03:04:05Z","records":0,"host_id":""}`
	runningRunJSON = `{"id":"r1","connection_id":"c1","trigger":"manual","attempt":1,"status":"running","failure_code":"","created_at":"2025-01-02T03:04:05Z","started_at":"2025-01-02T03:04:05Z","host_id":"host_a","records":0}`
	doneRunJSON    = `{"id":"r1","connection_id":"c1","trigger":"manual","attempt":1,"status":"succeeded","failure_code":"","created_at":"2025-01-02T03:04:05Z","started_at":"2025-01-02T03:04:05Z","ended_at":"2025-01-02T03:04:06Z","host_id":"host_a","records":5}`
	failedRunJSON  = `{"id":"r1","connection_id":"c1","trigger":"manual","attempt":1,"status":"failed","failure_code":"connector_failed","failure_message":"token rejected","created_at":"2025-01-02T03:04:05Z","started_at":"2025-01-02T03:04:05Z","ended_at":"2025-01-02T03:04:06Z","host_id":"host_a","records":0}`
	eventsSSE      = "event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:05Z\",\"status\":\"running\"}\n\n" +
		"event: progress\ndata: {\"run_id\":\"r1\",\"kind\":\"progress\",\"at\":\"2025-01-02T03:04:05Z\",\"stream\":\"events\",\"done\":2,\"total\":5}\n\n" +
		"event: records\ndata: {\"run_id\":\"r1\",\"kind\":\"records\",\"at\":\"2025-01-02T03:04:06Z\",\"stream\":\"events\",\"records\":5}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:06Z\",\"status\":\"succeeded\",\"records\":5}\n\n"
	failedSSE = "event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:06Z\",\"status\":\"failed\",\"failure_code\":\"connector_failed\"}\n\n"
)

func list(items ...string) string {
	return `{"items":[` + strings.Join(items, ",") + `],"next":""}`
}

// TestJSONOutput: -o json prints the API's JSON, lists as arrays, and the
// request each command sends.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		stdin  string
		routes map[string][]reply
		want   string // stdout JSON
		calls  []call
	}{
		{
			name:   "connector list is an array",
			args:   []string{"connector", "list"},
			routes: map[string][]reply{"GET /v1/connectors": {{body: list(connectorJSON)}}},
			want:   `[` + connectorJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/connectors"}},
		},
		{
			name:   "empty list is [] not null",
			args:   []string{"connector", "list"},
			routes: map[string][]reply{"GET /v1/connectors": {{body: `{"items":null,"next":""}`}}},
			want:   `[]`,
			calls:  []call{{Method: "GET", Path: "/v1/connectors"}},
		},
		{
			name:   "connector show",
			args:   []string{"connector", "show", "demo"},
			routes: map[string][]reply{"GET /v1/connectors/demo": {{body: connectorJSON}}},
			want:   connectorJSON,
			calls:  []call{{Method: "GET", Path: "/v1/connectors/demo"}},
		},
		{
			name: "connection create",
			args: []string{"connection", "create", "--connector", "demo", "--label", "L", "--schedule", "*/1 * * * * *",
				"--jitter", "1500ms", "--config", `{"records":5}`},
			routes: map[string][]reply{"POST /v1/connections": {{status: 201, body: connectionJSON}}},
			want:   connectionJSON,
			calls: []call{{Method: "POST", Path: "/v1/connections",
				Body: `{"connector_key":"demo","label":"L","config":{"records":5},"schedule":"*/1 * * * * *","jitter":"1.5s"}`}},
		},
		{
			name:   "connection list with filters",
			args:   []string{"connection", "list", "--connector", "demo", "--state", "paused"},
			routes: map[string][]reply{"GET /v1/connections": {{body: list(connectionJSON)}}},
			want:   `[` + connectionJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/connections", Query: "connector=demo&state=paused"}},
		},
		{
			name:   "connection list by health",
			args:   []string{"connection", "list", "--health", "needs_credential", "--state", "active"},
			routes: map[string][]reply{"GET /v1/connections": {{body: list(connectionJSON)}}},
			want:   `[` + connectionJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/connections", Query: "health=needs_credential&state=active"}},
		},
		{
			name:   "connection list pages",
			args:   []string{"connection", "list", "--limit", "1", "--cursor", "cur1"},
			routes: map[string][]reply{"GET /v1/connections": {{body: `{"items":[` + connectionJSON + `],"next":"cur2"}`}}},
			want:   `[` + connectionJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/connections", Query: "cursor=cur1&limit=1"}},
		},
		{
			name:   "connection show",
			args:   []string{"connection", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1": {{body: connectionJSON}}},
			want:   connectionJSON,
			calls:  []call{{Method: "GET", Path: "/v1/connections/c1"}},
		},
		{
			name:   "connection update sends only given flags, empty schedule included",
			args:   []string{"connection", "update", "c1", "--schedule", "", "--label", "M"},
			routes: map[string][]reply{"PATCH /v1/connections/c1": {{body: connectionJSON}}},
			want:   connectionJSON,
			calls:  []call{{Method: "PATCH", Path: "/v1/connections/c1", Body: `{"label":"M","schedule":""}`}},
		},
		{
			name:   "connection update config and jitter",
			args:   []string{"connection", "update", "c1", "--config", `{"records":9}`, "--jitter", "2s"},
			routes: map[string][]reply{"PATCH /v1/connections/c1": {{body: connectionJSON}}},
			want:   connectionJSON,
			calls:  []call{{Method: "PATCH", Path: "/v1/connections/c1", Body: `{"config":{"records":9},"jitter":"2s"}`}},
		},
		{
			name:   "connection pause",
			args:   []string{"connection", "pause", "c1"},
			routes: map[string][]reply{"POST /v1/connections/c1/pause": {{body: connectionJSON}}},
			want:   connectionJSON,
			calls:  []call{{Method: "POST", Path: "/v1/connections/c1/pause"}},
		},
		{
			name:   "connection resume",
			args:   []string{"connection", "resume", "c1"},
			routes: map[string][]reply{"POST /v1/connections/c1/resume": {{body: connectionJSON}}},
			want:   connectionJSON,
			calls:  []call{{Method: "POST", Path: "/v1/connections/c1/resume"}},
		},
		{
			name:   "connection revoke",
			args:   []string{"connection", "revoke", "c1"},
			routes: map[string][]reply{"POST /v1/connections/c1/revoke": {{body: connectionJSON}}},
			want:   connectionJSON,
			calls:  []call{{Method: "POST", Path: "/v1/connections/c1/revoke"}},
		},
		{
			name:   "connection delete",
			args:   []string{"connection", "delete", "c1"},
			routes: map[string][]reply{"DELETE /v1/connections/c1": {{body: `{"id":"c1","records_deleted":5,"checkpoint_deleted":true,"credential_deleted":true}`}}},
			want:   `{"id":"c1","records_deleted":5,"checkpoint_deleted":true,"credential_deleted":true}`,
			calls:  []call{{Method: "DELETE", Path: "/v1/connections/c1"}},
		},
		{
			name:   "credential set reads stdin",
			args:   []string{"credential", "set", "c1"},
			stdin:  "# demo\n\nDEMO_TOKEN=a=b c\n",
			routes: map[string][]reply{"PUT /v1/connections/c1/credential": {{body: credentialJSON}}},
			want:   credentialJSON,
			calls:  []call{{Method: "PUT", Path: "/v1/connections/c1/credential", Body: `{"values":{"DEMO_TOKEN":"a=b c"}}`}},
		},
		{
			name:   "credential show",
			args:   []string{"credential", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/credential": {{body: credentialJSON}}},
			want:   credentialJSON,
			calls:  []call{{Method: "GET", Path: "/v1/connections/c1/credential"}},
		},
		{
			name:   "credential show of nothing has names []",
			args:   []string{"credential", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/credential": {{body: `{"present":false,"state":"none","names":null}`}}},
			want:   `{"present":false,"state":"none","names":[]}`,
			calls:  []call{{Method: "GET", Path: "/v1/connections/c1/credential"}},
		},
		{
			name:   "credential revoke",
			args:   []string{"credential", "revoke", "c1"},
			routes: map[string][]reply{"POST /v1/connections/c1/credential/revoke": {{body: credentialJSON}}},
			want:   credentialJSON,
			calls:  []call{{Method: "POST", Path: "/v1/connections/c1/credential/revoke"}},
		},
		{
			name:   "credential delete",
			args:   []string{"credential", "delete", "c1"},
			routes: map[string][]reply{"DELETE /v1/connections/c1/credential": {{body: credentialJSON}}},
			want:   credentialJSON,
			calls:  []call{{Method: "DELETE", Path: "/v1/connections/c1/credential"}},
		},
		{
			name:   "run without wait prints the queued run",
			args:   []string{"run", "c1"},
			routes: map[string][]reply{"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}}},
			want:   queuedRunJSON,
			calls:  []call{{Method: "POST", Path: "/v1/connections/c1/runs"}},
		},
		{
			name: "run --wait follows the events and prints the ended run",
			args: []string{"run", "c1", "--wait"},
			routes: map[string][]reply{
				"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
				"GET /v1/runs/r1/events":       {{sse: true, body: eventsSSE}},
				"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: doneRunJSON}},
			},
			want: doneRunJSON,
			calls: []call{
				{Method: "POST", Path: "/v1/connections/c1/runs"},
				{Method: "GET", Path: "/v1/runs/r1/events"},
				{Method: "GET", Path: "/v1/runs/r1"},
				{Method: "GET", Path: "/v1/runs/r1"},
			},
		},
		{
			name: "run --wait without an event stream polls",
			args: []string{"run", "c1", "--wait"},
			routes: map[string][]reply{
				"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
				"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: runningRunJSON}, {body: doneRunJSON}},
			},
			want: doneRunJSON,
			calls: []call{
				{Method: "POST", Path: "/v1/connections/c1/runs"},
				{Method: "GET", Path: "/v1/runs/r1/events"},
				{Method: "GET", Path: "/v1/runs/r1"},
				{Method: "GET", Path: "/v1/runs/r1"},
				{Method: "GET", Path: "/v1/runs/r1"},
			},
		},
		{
			name: "run --wait polls when the event stream breaks before the end",
			args: []string{"run", "c1", "--wait"},
			routes: map[string][]reply{
				"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
				"GET /v1/runs/r1/events":       {{sse: true, body: "event: status\ndata: {\"kind\":\"status\",\"status\":\"running\"}\n\n"}},
				"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: runningRunJSON}, {body: doneRunJSON}},
			},
			want: doneRunJSON,
			calls: []call{
				{Method: "POST", Path: "/v1/connections/c1/runs"},
				{Method: "GET", Path: "/v1/runs/r1/events"},
				{Method: "GET", Path: "/v1/runs/r1"},
				{Method: "GET", Path: "/v1/runs/r1"},
				{Method: "GET", Path: "/v1/runs/r1"},
			},
		},
		{
			name: "run --follow -o json prints only the run on stdout",
			args: []string{"run", "c1", "--follow"},
			routes: map[string][]reply{
				"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
				"GET /v1/runs/r1/events":       {{sse: true, body: eventsSSE}},
				"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: doneRunJSON}},
			},
			want: doneRunJSON,
			calls: []call{
				{Method: "POST", Path: "/v1/connections/c1/runs"},
				{Method: "GET", Path: "/v1/runs/r1/events"},
				{Method: "GET", Path: "/v1/runs/r1"},
				{Method: "GET", Path: "/v1/runs/r1"},
			},
		},
		{
			name:   "runs list",
			args:   []string{"runs", "list", "--connection", "c1", "--status", "succeeded", "--limit", "5"},
			routes: map[string][]reply{"GET /v1/runs": {{body: list(doneRunJSON, queuedRunJSON)}}},
			want:   `[` + doneRunJSON + `,` + queuedRunJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/runs", Query: "connection=c1&limit=5&status=succeeded"}},
		},
		{
			name:   "runs list by trigger",
			args:   []string{"runs", "list", "--trigger", "scheduled", "--status", "failed"},
			routes: map[string][]reply{"GET /v1/runs": {{body: list(doneRunJSON)}}},
			want:   `[` + doneRunJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/runs", Query: "status=failed&trigger=scheduled"}},
		},
		{
			name:   "runs list of a host",
			args:   []string{"runs", "list", "--host", "host_a"},
			routes: map[string][]reply{"GET /v1/runs": {{body: list(doneRunJSON)}}},
			want:   `[` + doneRunJSON + `]`,
			calls:  []call{{Method: "GET", Path: "/v1/runs", Query: "host=host_a"}},
		},
		{
			name: "hosts list",
			args: []string{"hosts", "list"},
			routes: map[string][]reply{"GET /v1/hosts": {{body: `{"hosts":[{"id":"host_a","addr":"127.0.0.1:7481","version":"v1","status":"live",` +
				`"started_at":"2025-01-02T03:04:05Z","last_seen":"2025-01-02T03:05:05Z","runs_active":2}]}`}}},
			want: `[{"id":"host_a","addr":"127.0.0.1:7481","version":"v1","status":"live","started_at":"2025-01-02T03:04:05Z",` +
				`"last_seen":"2025-01-02T03:05:05Z","runs_active":2}]`,
			calls: []call{{Method: "GET", Path: "/v1/hosts"}},
		},
		{
			name:   "runs show",
			args:   []string{"runs", "show", "r1"},
			routes: map[string][]reply{"GET /v1/runs/r1": {{body: doneRunJSON}}},
			want:   doneRunJSON,
			calls:  []call{{Method: "GET", Path: "/v1/runs/r1"}},
		},
		{
			name:   "runs cancel",
			args:   []string{"runs", "cancel", "r1"},
			routes: map[string][]reply{"POST /v1/runs/r1/cancel": {{body: doneRunJSON}}},
			want:   doneRunJSON,
			calls:  []call{{Method: "POST", Path: "/v1/runs/r1/cancel"}},
		},
		{
			name:   "records list",
			args:   []string{"records", "list", "c1", "--stream", "events", "--limit", "2"},
			routes: map[string][]reply{"GET /v1/connections/c1/records": {{body: `{"items":[{"stream":"events","key":"0","data":{"id":0},"run_id":"r1","updated_at":"2025-01-02T03:04:05Z"}],"next":"n1"}`}}},
			want:   `[{"stream":"events","key":"0","data":{"id":0},"run_id":"r1","updated_at":"2025-01-02T03:04:05Z"}]`,
			calls:  []call{{Method: "GET", Path: "/v1/connections/c1/records", Query: "limit=2&stream=events"}},
		},
		{
			// Not read as "the default": the server refuses it (400
			// invalid_request, field limit).
			name:   "records list sends a negative limit as it is",
			args:   []string{"records", "list", "c1", "--limit", "-1"},
			routes: map[string][]reply{"GET /v1/connections/c1/records": {{body: `{"items":[],"next":""}`}}},
			want:   `[]`,
			calls:  []call{{Method: "GET", Path: "/v1/connections/c1/records", Query: "limit=-1"}},
		},
		{
			name:   "enrollment is the report object",
			args:   []string{"enrollment"},
			routes: map[string][]reply{"GET /v1/enrollment": {{body: `{"connections":[{"connection_id":"c1","connector_key":"demo","outcome":"enrolled","evaluated_at":"2025-01-02T03:04:05Z"}]}`}}},
			want:   `{"connections":[{"connection_id":"c1","connector_key":"demo","outcome":"enrolled","evaluated_at":"2025-01-02T03:04:05Z"}]}`,
			calls:  []call{{Method: "GET", Path: "/v1/enrollment"}},
		},
		{
			name:   "empty enrollment",
			args:   []string{"enrollment"},
			routes: map[string][]reply{"GET /v1/enrollment": {{body: `{"connections":null}`}}},
			want:   `{"connections":[]}`,
			calls:  []call{{Method: "GET", Path: "/v1/enrollment"}},
		},
		{
			name:   "audit list",
			args:   []string{"audit", "list", "--target", "c1", "--operation", "credential.revoke"},
			routes: map[string][]reply{"GET /v1/audit": {{body: list(`{"id":"a1","at":"2025-01-02T03:04:05Z","actor":"operator","operation":"credential.revoke","target_kind":"connection","target_id":"c1","outcome":"succeeded"}`)}}},
			want:   `[{"id":"a1","at":"2025-01-02T03:04:05Z","actor":"operator","operation":"credential.revoke","target_kind":"connection","target_id":"c1","outcome":"succeeded"}]`,
			calls:  []call{{Method: "GET", Path: "/v1/audit", Query: "operation=credential.revoke&target=c1"}},
		},
		{
			name:   "keyset info",
			args:   []string{"keyset", "info"},
			routes: map[string][]reply{"GET /v1/keyset": {{body: `{"primary_key_id":7,"keys":[{"id":7,"status":"ENABLED","type":"AES256_GCM","primary":true}],"encrypted":true,"kek":"file"}`}}},
			want:   `{"primary_key_id":7,"keys":[{"id":7,"status":"ENABLED","type":"AES256_GCM","primary":true}],"encrypted":true,"kek":"file"}`,
			calls:  []call{{Method: "GET", Path: "/v1/keyset"}},
		},
		{
			name:   "keyset rotate",
			args:   []string{"keyset", "rotate"},
			routes: map[string][]reply{"POST /v1/keyset/rotate": {{body: `{"primary_key_id":8,"keys":null,"encrypted":true,"kek":"env"}`}}},
			want:   `{"primary_key_id":8,"keys":[],"encrypted":true,"kek":"env"}`,
			calls:  []call{{Method: "POST", Path: "/v1/keyset/rotate"}},
		},
		{
			name:   "keyset rewrap",
			args:   []string{"keyset", "rewrap"},
			routes: map[string][]reply{"POST /v1/keyset/rewrap": {{body: `{"primary_key_id":8,"scanned":3,"rewrapped":1,"current":1,"quarantined":["c9"],"failed":null}`}}},
			want:   `{"primary_key_id":8,"scanned":3,"rewrapped":1,"current":1,"quarantined":["c9"],"failed":[]}`,
			calls:  []call{{Method: "POST", Path: "/v1/keyset/rewrap"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(tt.routes)
			res := runCLI(t, api, options{stdin: tt.stdin}, append(tt.args, "-o", "json")...)
			if res.code != cli.ExitOK {
				t.Fatalf("exit %d, stderr:\n%s", res.code, res.stderr)
			}
			jsonEqual(t, tt.want, res.stdout)
			if diff := cmp.Diff(tt.calls, api.Calls()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			for _, a := range api.auth {
				if a != "Bearer "+testToken {
					t.Errorf("Authorization = %q", a)
				}
			}
		})
	}
}

// TestTextOutput: tables and key: value shows, timestamps in UTC, control
// characters from the server neutralised.
func TestTextOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		routes     map[string][]reply
		want       string
		wantStderr string
	}{
		{
			name:   "connector list table",
			args:   []string{"connector", "list"},
			routes: map[string][]reply{"GET /v1/connectors": {{body: list(connectorJSON)}}},
			want: "KEY   VERSION  AUTH           REQUIRED    STREAMS     DEFAULT SCHEDULE  AUTO-ENROLL\n" +
				"demo  1.0.0    static_secret  DEMO_TOKEN  events(id)  @every 1m         yes\n",
		},
		{
			name:   "connection show in UTC",
			args:   []string{"connection", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1": {{body: connectionJSON}}},
			want: "id:              c1\n" +
				"connector:       demo\n" +
				"label:           L\n" +
				"state:           active\n" +
				"schedule:        @every 1s (own)\n" +
				"jitter:          -\n" +
				"config:          {\"records\":5}\n" +
				"enrollment:      enrolled\n" +
				"next run:        -\n" +
				"coalesced ticks: 0\n" +
				"health:          -\n" +
				"reason:          -\n" +
				"action:          -\n" +
				"since:           -\n" +
				"hold:            -\n" +
				"backoff until:   -\n" +
				"created at:      2025-01-02T03:04:05Z\n" +
				"updated at:      2025-01-02T03:04:05Z\n",
		},
		{
			name: "connection show on its connector's default schedule",
			args: []string{"connection", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1": {{body: `{"id":"c1","connector_key":"demo","label":"L","config":{},` +
				`"schedule":"","schedule_in_force":"@every 1m","schedule_source":"connector_default","jitter":"10s","state":"active",` +
				`"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","next_run":"2025-01-02T03:05:05Z","coalesced_ticks":0}`}}},
			want: "id:              c1\n" +
				"connector:       demo\n" +
				"label:           L\n" +
				"state:           active\n" +
				"schedule:        @every 1m (connector default)\n" +
				"jitter:          10s\n" +
				"config:          {}\n" +
				"enrollment:      -\n" +
				"next run:        2025-01-02T03:05:05Z\n" +
				"coalesced ticks: 0\n" +
				"health:          -\n" +
				"reason:          -\n" +
				"action:          -\n" +
				"since:           -\n" +
				"hold:            -\n" +
				"backoff until:   -\n" +
				"created at:      2025-01-02T03:04:05Z\n" +
				"updated at:      2025-01-02T03:04:05Z\n",
		},
		{
			name: "control characters are replaced",
			args: []string{"connection", "list"},
			routes: map[string][]reply{"GET /v1/connections": {{body: list(
				`{"id":"c1","connector_key":"demo","label":"a\u001b[31mred\tx\u202e","config":{},"schedule":"","state":"active","created_at":"","updated_at":""}`)}}},
			want: "ID  CONNECTOR  LABEL         STATE   HEALTH  SCHEDULE  ENROLLMENT  NEXT RUN\n" +
				"c1  demo       a?[31mred?x?  active  -       -         -           -\n",
		},
		{
			name: "connection show with health, hold and backoff",
			args: []string{"connection", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1": {{body: `{"id":"c1","connector_key":"demo","label":"L","config":{},` +
				`"schedule":"","schedule_in_force":"@every 1m","schedule_source":"connector_default","state":"active",` +
				`"created_at":"2025-01-02T03:04:05Z","updated_at":"2025-01-02T03:04:05Z","coalesced_ticks":0,` +
				`"health":{"verdict":"credential_rejected","reason":"the provider rejected the credential","action":"capture a new credential: ` + "`connhost credential set c1`" + `","since":"2025-01-02T03:06:00.5Z","needs_person":true},` +
				`"hold":{"code":"credential_rejected","message":"token rejected","at":"2025-01-02T03:06:00Z","run_id":"r9"},` +
				`"backoff_until":"2025-01-02T04:00:00Z",` +
				`"streak":{"last_run_status":"failed","last_run_at":"2025-01-02T03:06:00Z","failures":{"code":"credential_rejected","count":1,"since":"2025-01-02T03:06:00Z"}}}`}}},
			want: "id:              c1\n" +
				"connector:       demo\n" +
				"label:           L\n" +
				"state:           active\n" +
				"schedule:        @every 1m (connector default)\n" +
				"jitter:          -\n" +
				"config:          {}\n" +
				"enrollment:      -\n" +
				"next run:        -\n" +
				"coalesced ticks: 0\n" +
				"health:          credential_rejected\n" +
				"reason:          the provider rejected the credential\n" +
				"action:          capture a new credential: `connhost credential set c1`\n" +
				"since:           2025-01-02T03:06:00Z\n" +
				"hold:            credential_rejected at 2025-01-02T03:06:00Z by run r9: token rejected\n" +
				"backoff until:   2025-01-02T04:00:00Z\n" +
				"created at:      2025-01-02T03:04:05Z\n" +
				"updated at:      2025-01-02T03:04:05Z\n",
		},
		{
			name: "attention table",
			args: []string{"attention"},
			routes: map[string][]reply{"GET /v1/attention": {{body: `{"items":[` +
				`{"connection_id":"c2","connector_key":"demo","label":"old","verdict":"credential_unavailable","reason":"revoked","action":"capture","since":"2025-01-02T03:04:05Z"},` +
				`{"connection_id":"c1","connector_key":"demo","label":"new","verdict":"needs_credential","reason":"no DEMO_TOKEN","action":"set it","since":"2025-01-03T03:04:05Z"}],"next":""}`}}},
			want: "CONNECTION  CONNECTOR  LABEL  HEALTH                  SINCE                 REASON         ACTION\n" +
				"c2          demo       old    credential_unavailable  2025-01-02T03:04:05Z  revoked        capture\n" +
				"c1          demo       new    needs_credential        2025-01-03T03:04:05Z  no DEMO_TOKEN  set it\n",
		},
		{
			name:   "attention empty",
			args:   []string{"attention"},
			routes: map[string][]reply{"GET /v1/attention": {{body: `{"items":[],"next":""}`}}},
			want:   "no connection needs a person\n",
		},
		{
			name:   "credential show prints metadata only",
			args:   []string{"credential", "show", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/credential": {{body: credentialJSON}}},
			want: "connection:  c1\n" +
				"present:     yes\n" +
				"kind:        static_secret\n" +
				"state:       active\n" +
				"names:       DEMO_TOKEN\n" +
				"key id:      7\n" +
				"captured at: 2025-01-02T03:04:05Z\n" +
				"rotated at:  -\n",
		},
		{
			name:   "runs list table with the next cursor on stderr",
			args:   []string{"runs", "list"},
			routes: map[string][]reply{"GET /v1/runs": {{body: `{"items":[` + failedRunJSON + `],"next":"cur2"}`}}},
			want: "ID  CONNECTION  TRIGGER  STATUS  FAILURE           RECORDS  HOST    SCHEDULED FOR  CREATED               STARTED               ENDED\n" +
				"r1  c1          manual   failed  connector_failed  0        host_a  -              2025-01-02T03:04:05Z  2025-01-02T03:04:05Z  2025-01-02T03:04:06Z\n",
			wantStderr: "more results: repeat with --cursor cur2\n",
		},
		{
			name: "hosts table",
			args: []string{"hosts", "list"},
			routes: map[string][]reply{"GET /v1/hosts": {{body: `{"hosts":[{"id":"host_b","addr":"127.0.0.1:7482","version":"v1","status":"live","started_at":"2025-01-02T03:04:05Z","last_seen":"2025-01-02T03:05:05Z","runs_active":3},` +
				`{"id":"host_a","addr":"127.0.0.1:7481","version":"v1","status":"crashed","started_at":"2025-01-02T03:00:00Z","last_seen":"2025-01-02T03:01:00Z","ended_at":"2025-01-02T03:01:20Z","runs_active":0}]}`}}},
			want: "ID      STATUS   ADDR            VERSION  STARTED               LAST SEEN             RUNS\n" +
				"host_b  live     127.0.0.1:7482  v1       2025-01-02T03:04:05Z  2025-01-02T03:05:05Z  3\n" +
				"host_a  crashed  127.0.0.1:7481  v1       2025-01-02T03:00:00Z  2025-01-02T03:01:00Z  0\n",
		},
		{
			name:   "enrollment table",
			args:   []string{"enrollment"},
			routes: map[string][]reply{"GET /v1/enrollment": {{body: `{"connections":[{"connection_id":"c1","connector_key":"demo","outcome":"skipped_env","reason":"no DEMO_TOKEN","evaluated_at":"2025-01-02T03:04:05.123Z"}]}`}}},
			want: "CONNECTION  CONNECTOR  OUTCOME      REASON         EVALUATED\n" +
				"c1          demo       skipped_env  no DEMO_TOKEN  2025-01-02T03:04:05Z\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, newFakeAPI(tt.routes), options{}, tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if diff := cmp.Diff(tt.want, res.stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantStderr, res.stderr); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFollow: --follow draws plain lines off a terminal, a bar on one, and
// exits 3 with the failure code when the run does not succeed.
func TestFollow(t *testing.T) {
	t.Parallel()
	ok := map[string][]reply{
		"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
		"GET /v1/runs/r1/events":       {{sse: true, body: eventsSSE}},
		"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: doneRunJSON}},
	}
	t.Run("plain lines", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(ok), options{}, "run", "c1", "--follow")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		wantLines := "2025-01-02T03:04:05Z status running\n" +
			"2025-01-02T03:04:05Z progress events 2/5 elapsed=0s\n" +
			"2025-01-02T03:04:06Z records committed=5 events elapsed=1s rate=5.0/s\n" +
			"2025-01-02T03:04:06Z end succeeded committed=5 elapsed=1s rate=5.0/s\n"
		if !strings.HasPrefix(res.stdout, wantLines) {
			t.Errorf("stdout does not start with the event lines:\n%s", res.stdout)
		}
		if !strings.Contains(res.stdout, "status:     succeeded\n") {
			t.Errorf("stdout lacks the final run:\n%s", res.stdout)
		}
	})
	t.Run("progress bar on a terminal", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(ok), options{terminal: true}, "run", "c1", "--follow")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		for _, want := range []string{"\rrunning [####........]  40% events 2/5  recv 0  committed 0  0s", "\rsucceeded [############] 100% events 5/5  recv 5  committed 5  1s 5.0/s"} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("stdout lacks %q:\n%q", want, res.stdout)
			}
		}
	})
	t.Run("json keeps stdout clean", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(ok), options{}, "run", "c1", "--follow", "-o", "json")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		jsonEqual(t, doneRunJSON, res.stdout)
		if !strings.Contains(res.stderr, "progress events 2/5") {
			t.Errorf("stderr lacks progress:\n%s", res.stderr)
		}
	})
	t.Run("failed run exits 3", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(map[string][]reply{
			"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
			"GET /v1/runs/r1/events":       {{sse: true, body: failedSSE}},
			"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: failedRunJSON}},
		})
		res := runCLI(t, api, options{}, "run", "c1", "--follow", "-o", "json")
		if res.code != cli.ExitRunFailed {
			t.Fatalf("exit %d, want %d: %s", res.code, cli.ExitRunFailed, res.stderr)
		}
		jsonEqual(t, failedRunJSON, res.stdout)
		if want := "error: connector_failed: run r1 failed: token rejected\n"; !strings.HasSuffix(res.stderr, want) {
			t.Errorf("stderr = %q, want suffix %q", res.stderr, want)
		}
	})
	t.Run("already ended run", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(map[string][]reply{
			"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
			"GET /v1/runs/r1/events":       {{sse: true, body: eventsSSE}},
			"GET /v1/runs/r1":              {{body: doneRunJSON}},
		})
		res := runCLI(t, api, options{}, "run", "c1", "--wait", "-o", "json")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		jsonEqual(t, doneRunJSON, res.stdout)
	})
}

// TestErrors: usage errors exit 2, API errors exit 1, both as
// "error: <code>: <message>".
func TestErrors(t *testing.T) {
	t.Parallel()
	refused := map[string][]reply{"POST /v1/connections/c1/runs": {{status: 409,
		body: `{"error":{"code":"static_secret_credential_unavailable","message":"the connection's credential is revoked","run_id":"r9"}}`}}}
	tests := []struct {
		name   string
		args   []string
		routes map[string][]reply
		env    map[string]string
		code   int
		stderr string // prefix
	}{
		{name: "unknown command", args: []string{"bogus"}, code: 2, stderr: `error: usage: unknown command "bogus" for connhost`},
		{name: "unknown subcommand", args: []string{"connection", "frob"}, code: 2, stderr: `error: usage: unknown command "frob" for connhost connection`},
		{name: "odd word not echoed", args: []string{"runs", "S3CRET!x"}, code: 2, stderr: `error: usage: unknown command (argument not shown) for connhost runs`},
		{name: "unknown flag", args: []string{"connector", "list", "--nope"}, code: 2, stderr: "error: usage: unknown flag: --nope"},
		{name: "bad output", args: []string{"connector", "list", "-o", "yaml"}, code: 2, stderr: "error: usage: -o/--output must be text or json"},
		{name: "missing argument", args: []string{"connection", "show"}, code: 2, stderr: "error: usage: connhost connection show takes 1 argument(s): ID (got 0)"},
		{name: "extra argument", args: []string{"runs", "show", "a", "b"}, code: 2, stderr: "error: usage: connhost runs show takes 1 argument(s): RUN_ID (got 2)"},
		{name: "required flags", args: []string{"connection", "create", "--label", "x"}, code: 2, stderr: `error: usage: required flag(s) "connector" not set`},
		{name: "bad config", args: []string{"connection", "create", "--connector", "demo", "--label", "x", "--config", "[1]"}, code: 2, stderr: "error: usage: --config must be a JSON object"},
		{name: "bad jitter", args: []string{"connection", "create", "--connector", "demo", "--label", "x", "--jitter", "soon"}, code: 2, stderr: "error: usage: --jitter must be a non-negative duration"},
		{name: "update nothing", args: []string{"connection", "update", "c1"}, code: 2, stderr: "error: usage: nothing to update"},
		{name: "wait and follow", args: []string{"run", "c1", "--wait", "--follow"}, code: 2, stderr: "error: usage: if any flags in the group [wait follow] are set none of the others can be"},
		{name: "bad addr", args: []string{"connector", "list"}, env: map[string]string{cli.EnvAddr: "ftp://x"}, code: 2, stderr: "error: usage: --addr: client: invalid API address"},
		{
			name: "refused run", args: []string{"run", "c1", "--wait"}, routes: refused, code: 1,
			stderr: "error: static_secret_credential_unavailable: the connection's credential is revoked (refused run r9)\n",
		},
		{
			name: "invalid request names the field", args: []string{"connection", "create", "--connector", "demo", "--label", "x", "--schedule", "nope"},
			routes: map[string][]reply{"POST /v1/connections": {{status: 400, body: `{"error":{"code":"invalid_request","message":"bad cron spec","field":"schedule"}}`}}},
			code:   1, stderr: "error: invalid_request: bad cron spec (field schedule)\n",
		},
		{name: "not found", args: []string{"runs", "show", "r404"}, routes: map[string][]reply{}, code: 1, stderr: "error: not_found: "},
		{name: "host down", args: []string{"connector", "list"}, env: map[string]string{cli.EnvAddr: "http://127.0.0.1:1"}, code: 1, stderr: "error: unavailable: cannot reach the connhost API at http://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var api http.Handler
			if tt.routes != nil {
				api = newFakeAPI(tt.routes)
			}
			env := tt.env
			if api == nil && env == nil {
				env = map[string]string{cli.EnvAddr: "http://127.0.0.1:1"}
			}
			res := runCLI(t, api, options{env: env}, tt.args...)
			if res.code != tt.code {
				t.Errorf("exit %d, want %d", res.code, tt.code)
			}
			if !strings.HasPrefix(res.stderr, tt.stderr) {
				t.Errorf("stderr = %q\nwant prefix %q", res.stderr, tt.stderr)
			}
			if tt.code == cli.ExitUsage && !strings.Contains(res.stderr, "--help' for usage.") {
				t.Errorf("usage error without a help hint: %q", res.stderr)
			}
		})
	}
}

// TestSecretInArgvRefused: a credential value on the command line is
// refused before any request, with exit 2, and never echoed.
func TestSecretInArgvRefused(t *testing.T) {
	t.Parallel()
	const secret = "Zq9-canary-Secret"
	tests := []struct {
		name string
		args []string
	}{
		{name: "extra positional", args: []string{"credential", "set", "c1", secret}},
		{name: "NAME=VALUE positional", args: []string{"credential", "set", "c1", "DEMO_TOKEN=" + secret}},
		{name: "NAME=VALUE instead of the id", args: []string{"credential", "set", "DEMO_TOKEN=" + secret}},
		{name: "NAME=VALUE before the id", args: []string{"credential", "set", "DEMO_TOKEN=" + secret, "c1"}},
		{name: "after --", args: []string{"credential", "set", "c1", "--", secret}},
		{name: "long flag with value", args: []string{"credential", "set", "c1", "--DEMO_TOKEN=" + secret}},
		{name: "long flag spelled like a secret", args: []string{"credential", "set", "c1", "--" + secret + "!"}},
		{name: "short flag group", args: []string{"credential", "set", "c1", "-D" + secret}},
		{name: "global flags first", args: []string{"--addr", "http://127.0.0.1:1", "credential", "set", "c1", secret}},
		{name: "with -o json", args: []string{"credential", "set", "-o", "json", "c1", "DEMO_TOKEN=" + secret}},
		{name: "mistyped subcommand", args: []string{"credential", "sett", "c1", "DEMO_TOKEN=" + secret}},
		{name: "credentials alias", args: []string{"credentials", "set", "c1", secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(map[string][]reply{"PUT /v1/connections/c1/credential": {{body: credentialJSON}}})
			res := runCLI(t, api, options{stdin: "DEMO_TOKEN=from-stdin\n"}, tt.args...)
			if res.code != cli.ExitUsage {
				t.Errorf("exit %d, want %d", res.code, cli.ExitUsage)
			}
			if !strings.HasPrefix(res.stderr, "error: "+cli.CodeSecretInArgv+": ") {
				t.Errorf("stderr = %q, want a secret_in_argv refusal", res.stderr)
			}
			if strings.Contains(res.stdout+res.stderr, secret) {
				t.Errorf("the secret was echoed:\nstdout %q\nstderr %q", res.stdout, res.stderr)
			}
			if calls := api.Calls(); len(calls) != 0 {
				t.Errorf("requests were sent: %+v", calls)
			}
		})
	}

	t.Run("a typo in a flag name is a plain usage error", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(nil), options{}, "credential", "set", "c1", "--from-fil", "x")
		if res.code != cli.ExitUsage || !strings.HasPrefix(res.stderr, "error: usage: unknown flag --from-fil") {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
	t.Run("a from-file path is not echoed", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(nil), options{}, "credential", "set", "c1", "--from-file=DEMO_TOKEN="+secret)
		if res.code != cli.ExitUsage || strings.Contains(res.stderr, secret) {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
}

// TestCredentialSet: values from stdin or a file reach the request body and
// nothing else.
func TestCredentialSet(t *testing.T) {
	t.Parallel()
	const secret = "V4lue-with=equals"
	dir := t.TempDir()
	file := dir + "/demo.env"
	if err := writeFile(file, "DEMO_TOKEN="+secret+"\r\nOTHER= spaced \r\n"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		body  string
	}{
		{name: "stdin", args: []string{"credential", "set", "c1"}, stdin: "DEMO_TOKEN=" + secret + "\n",
			body: `{"values":{"DEMO_TOKEN":"` + secret + `"}}`},
		{name: "stdin dash", args: []string{"credential", "set", "c1", "--from-file", "-"}, stdin: "DEMO_TOKEN=" + secret,
			body: `{"values":{"DEMO_TOKEN":"` + secret + `"}}`},
		{name: "file with CRLF", args: []string{"credential", "set", "c1", "--from-file", file},
			body: `{"values":{"DEMO_TOKEN":"` + secret + `","OTHER":" spaced "}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(map[string][]reply{"PUT /v1/connections/c1/credential": {{body: credentialJSON}}})
			for _, output := range []string{"text", "json"} {
				res := runCLI(t, api, options{stdin: tt.stdin}, append(tt.args, "-o", output)...)
				if res.code != 0 {
					t.Fatalf("exit %d: %s", res.code, res.stderr)
				}
				if strings.Contains(res.stdout+res.stderr, secret) {
					t.Errorf("output holds the secret:\n%s%s", res.stdout, res.stderr)
				}
			}
			for _, c := range api.Calls() {
				jsonEqual(t, tt.body, c.Body)
			}
		})
	}

	t.Run("malformed input", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(nil)
		res := runCLI(t, api, options{stdin: "DEMO_TOKEN=ok\n" + "bare-" + secret[:5] + "\n"}, "credential", "set", "c1")
		if res.code != cli.ExitUsage {
			t.Errorf("exit %d", res.code)
		}
		if want := "error: invalid_input: credential input: line 2 is not NAME=VALUE (the line is not shown)\n"; res.stderr != want {
			t.Errorf("stderr = %q, want %q", res.stderr, want)
		}
		if len(api.Calls()) != 0 {
			t.Errorf("a request was sent")
		}
	})

	t.Run("terminal input is read without echo", func(t *testing.T) {
		t.Parallel()
		lines := []string{"DEMO_TOKEN=" + secret, ""}
		api := newFakeAPI(map[string][]reply{"PUT /v1/connections/c1/credential": {{body: credentialJSON}}})
		res := runCLI(t, api, options{rt: func(rt *cli.Runtime) {
			rt.StdinTerminal = true
			rt.ReadPassword = func() ([]byte, error) {
				l := lines[0]
				lines = lines[1:]
				return []byte(l), nil
			}
		}}, "credential", "set", "c1")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		jsonEqual(t, `{"values":{"DEMO_TOKEN":"`+secret+`"}}`, api.Calls()[0].Body)
		if strings.Contains(res.stdout+res.stderr, secret) {
			t.Errorf("output holds the secret")
		}
	})
}

// TestToken: --token wins over CONNHOST_TOKEN, which wins over the data
// dir's token file; without any, the command fails with no_token.
func TestToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		file     string
		wantAuth string
		wantCode int
	}{
		{name: "flag", args: []string{"--token", "from-flag"}, env: map[string]string{cli.EnvToken: "from-env"}, file: "from-file", wantAuth: "Bearer from-flag"},
		{name: "env", env: map[string]string{cli.EnvToken: "from-env"}, file: "from-file", wantAuth: "Bearer from-env"},
		{name: "data dir", env: map[string]string{cli.EnvToken: ""}, file: "from-file", wantAuth: "Bearer from-file"},
		{name: "none", env: map[string]string{cli.EnvToken: ""}, wantCode: cli.ExitError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(map[string][]reply{"GET /v1/enrollment": {{body: `{"connections":[]}`}}})
			var gotDir string
			res := runCLI(t, api, options{env: tt.env, rt: func(rt *cli.Runtime) {
				rt.ReadToken = func(dir string) (string, error) {
					gotDir = dir
					if tt.file == "" {
						return "", fmt.Errorf("%w: %s/operator.token", server.ErrNoToken, dir)
					}
					return tt.file, nil
				}
			}}, append(tt.args, "enrollment", "--data-dir", "/srv/ch")...)
			if res.code != tt.wantCode {
				t.Fatalf("exit %d, want %d: %s", res.code, tt.wantCode, res.stderr)
			}
			if tt.wantCode != 0 {
				if !strings.HasPrefix(res.stderr, "error: no_token: no operator token: there is no token file /srv/ch/operator.token") ||
					strings.Contains(res.stderr, "server:") {
					t.Errorf("stderr = %q", res.stderr)
				}
				return
			}
			if got := api.auth[0]; got != tt.wantAuth {
				t.Errorf("Authorization = %q, want %q", got, tt.wantAuth)
			}
			if tt.name == "data dir" && gotDir != "/srv/ch" {
				t.Errorf("token read from %q", gotDir)
			}
		})
	}
}

// TestServe maps flags onto server.Config and reports the ready address.
func TestServe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(*server.Config)
	}{
		{name: "defaults", want: func(*server.Config) {}},
		{
			name: "flags",
			args: []string{"--data-dir", "/d", "--listen", "127.0.0.1:0", "--plugin-dir", "/p", "--log-format", "json",
				"--log-level", "debug", "--kek-file", "/k", "--allow-host-env-credentials=false",
				"--max-concurrent-runs", "3", "--run-timeout", "90s", "--shutdown-timeout", "5s", "--kek-env", "MY_KEK"},
			want: func(c *server.Config) {
				c.DataDir, c.Listen, c.PluginDir, c.LogFormat, c.LogLevel = "/d", "127.0.0.1:0", "/p", "json", "debug"
				c.KEKFile, c.KEKEnv, c.AllowHostEnvCredentials = "/k", "MY_KEK", false
				c.MaxConcurrentRuns, c.RunTimeout, c.ShutdownTimeout = 3, 90e9, 5e9
			},
		},
		{name: "data dir from env", env: map[string]string{cli.EnvDataDir: "/from-env"}, want: func(c *server.Config) { c.DataDir = "/from-env" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got server.Config
			res := runCLI(t, nil, options{env: tt.env, rt: func(rt *cli.Runtime) {
				rt.Serve = func(ctx context.Context, cfg server.Config) error {
					got = cfg
					cfg.OnReady("127.0.0.1:4242")
					return nil
				}
			}}, append([]string{"serve"}, tt.args...)...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			want := server.DefaultConfig()
			tt.want(&want)
			if diff := cmp.Diff(want, got, cmpConfig); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if got.Environ == nil || got.LogOutput == nil || got.OnReady == nil {
				t.Error("Environ, LogOutput or OnReady not set")
			}
			if !strings.Contains(res.stdout, "serving on http://127.0.0.1:4242") {
				t.Errorf("stdout = %q", res.stdout)
			}
		})
	}

	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"log format":       {[]string{"--log-format", "xml"}, `log format "xml"`},
		"an empty pool":    {[]string{"--max-concurrent-runs", "0"}, "--max-concurrent-runs must be at least 1"},
		"no backoff cap":   {[]string{"--backoff-cap", "0s"}, "--backoff-cap must be positive"},
		"a negative cap":   {[]string{"--backoff-cap", "-1h"}, "--backoff-cap must be positive"},
		"a short host TTL": {[]string{"--host-ttl", "1s"}, "host TTL must be at least"},
		"an unknown store": {[]string{"--store", "mysql://db/x"}, `store scheme "mysql"`},
	} {
		t.Run("invalid config is a usage error: "+name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, nil, options{rt: func(rt *cli.Runtime) {
				rt.Serve = func(context.Context, server.Config) error { t.Error("Serve called"); return nil }
			}}, append([]string{"serve"}, tc.args...)...)
			if res.code != cli.ExitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q", res.code, res.stderr)
			}
		})
	}
	t.Run("a refused start is one sentence, without package prefixes", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, nil, options{rt: func(rt *cli.Runtime) {
			rt.Serve = func(context.Context, server.Config) error {
				return fmt.Errorf("%w: --tls-key /k: %w: mode 0644, want 0600", server.ErrTLS, server.ErrInsecureFile)
			}
		}}, "serve")
		want := "error: serve: TLS certificate or key unusable: --tls-key /k: file is accessible by group or others: mode 0644, want 0600\n"
		if res.code != cli.ExitError || res.stderr != want {
			t.Errorf("exit %d, stderr %q, want %q", res.code, res.stderr, want)
		}
	})
	t.Run("serve failure exits 1", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, nil, options{rt: func(rt *cli.Runtime) {
			rt.Serve = func(context.Context, server.Config) error { return errors.New("listen: address in use") }
		}}, "serve")
		if res.code != cli.ExitError || res.stderr != "error: serve: listen: address in use\n" {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
}

// TestHelp: every command has a short and long description and an
// example, and the root help lists every top-level command.
func TestHelp(t *testing.T) {
	t.Parallel()
	res := runCLI(t, nil, options{}, "--help")
	if res.code != 0 {
		t.Fatalf("exit %d", res.code)
	}
	for _, name := range []string{"serve", "keyset", "connector", "connection", "credential", "run", "runs", "records", "enrollment", "audit", "version"} {
		if !strings.Contains(res.stdout, "\n  "+name+" ") {
			t.Errorf("root help does not list %q", name)
		}
	}
	for _, path := range commandPaths(t) {
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, nil, options{}, append(path, "--help")...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			_, example, ok := strings.Cut(res.stdout, "Examples:\n  ")
			if !ok || !strings.Contains(example, "connhost "+strings.Join(path, " ")) {
				t.Errorf("help of %v has no example:\n%s", path, res.stdout)
			}
		})
	}
}

// commandPaths lists every command, parsed from the help output.
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	var paths [][]string
	var walk func(path []string)
	walk = func(path []string) {
		res := runCLI(t, nil, options{}, append(path, "--help")...)
		sub := false
		for _, line := range strings.Split(res.stdout, "\n") {
			switch {
			case strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " "):
				sub = strings.Contains(line, "Commands") || strings.HasSuffix(line, "credentials:") || line == "Host:" || line == "Runs and data:"
			case sub && strings.HasPrefix(line, "  ") && len(strings.Fields(line)) > 0:
				name := strings.Fields(line)[0]
				if name == "help" {
					continue
				}
				p := append(append([]string{}, path...), name)
				paths = append(paths, p)
				walk(p)
			}
		}
	}
	walk(nil)
	if len(paths) < 30 {
		t.Fatalf("found only %d commands: %v", len(paths), paths)
	}
	return paths
}

// cmpConfig compares server.Config values, ignoring the func and writer
// fields.
var cmpConfig = cmpopts.IgnoreFields(server.Config{}, "Environ", "LogOutput", "OnReady")

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// TestInterrupted: a cancelled context (SIGINT in Main) ends a command with
// code interrupted and exit 1.
func TestInterrupted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newFakeAPI(nil))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stderr bytes.Buffer
	code := cli.Run(ctx, []string{"connector", "list"}, cli.Runtime{
		Stderr: &stderr,
		LookupEnv: func(k string) (string, bool) {
			return map[string]string{cli.EnvAddr: srv.URL, cli.EnvToken: "t"}[k], true
		},
	})
	if code != cli.ExitError || stderr.String() != "error: interrupted: cancelled before the command completed\n" {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
