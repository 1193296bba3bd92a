package cli_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/cli"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/host/version"
)

const (
	refusedRunJSON = `{"id":"r9","connection_id":"c1","trigger":"manual","attempt":1,"status":"refused","failure_code":"static_secret_credential_unavailable","failure_message":"the connection's credential is revoked","created_at":"2025-01-02T03:04:05Z","ended_at":"2025-01-02T03:04:05Z","records":0,"host_id":"host_a"}`
	refusedBody    = `{"error":{"code":"static_secret_credential_unavailable","message":"the connection's credential is revoked; refused as run r9","run_id":"r9"}}`
	cancelledSSE   = "event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:05Z\",\"status\":\"running\"}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:09Z\",\"status\":\"cancelled\",\"failure_code\":\"cancelled\",\"message\":\"cancelled by the operator\",\"records\":3}\n\n"
	succeededSSE = "event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:09Z\",\"status\":\"succeeded\",\"records\":3}\n\n"
)

// oneJSON decodes out as exactly one JSON document.
func oneJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", out)
	}
}

// TestJSONErrorsAndExitStatus: with -o json every failure is one JSON
// object {"error":{…}} on stdout with the exit status saying it failed; a
// refused trigger with --wait/--follow is the refused run on stdout and
// exit 3, like any run that did not succeed.
func TestJSONErrorsAndExitStatus(t *testing.T) {
	t.Parallel()
	refused := map[string][]reply{
		"POST /v1/connections/c1/runs": {{status: 409, body: refusedBody}},
		"GET /v1/runs/r9":              {{body: refusedRunJSON}},
	}
	tests := []struct {
		name       string
		args       []string
		routes     map[string][]reply // nil: no host at all
		code       int
		stdout     string // exact JSON, when set
		errCode    string // the JSON error's code, when stdout is an error
		stderr     string // stderr prefix
		wantInJSON []string
	}{
		{
			name: "refused run --wait -o json is the run", args: []string{"run", "c1", "--wait", "-o", "json"}, routes: refused,
			code: cli.ExitRunFailed, stdout: refusedRunJSON,
			stderr: "error: static_secret_credential_unavailable: run r9 refused: the connection's credential is revoked\n",
		},
		{
			name: "refused run --follow -o json is the run", args: []string{"run", "c1", "--follow", "-o", "json"}, routes: refused,
			code: cli.ExitRunFailed, stdout: refusedRunJSON,
		},
		{
			name: "refused run without --wait is an error naming the run", args: []string{"run", "c1", "-o", "json"}, routes: refused,
			code: cli.ExitError, errCode: "static_secret_credential_unavailable", wantInJSON: []string{`"run_id":"r9"`, `"http_status":409`, `"exit_status":1`},
		},
		{
			name: "failed run prints only the run", args: []string{"run", "c1", "--wait", "-o", "json"},
			routes: map[string][]reply{
				"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
				"GET /v1/runs/r1/events":       {{sse: true, body: failedSSE}},
				"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: failedRunJSON}},
			},
			code: cli.ExitRunFailed, stdout: failedRunJSON,
		},
		{
			name: "not found", args: []string{"runs", "show", "r404", "-o", "json"}, routes: map[string][]reply{},
			code: cli.ExitError, errCode: "not_found", wantInJSON: []string{`"http_status":404`},
		},
		{
			name: "invalid request keeps its field", args: []string{"connection", "create", "--connector", "demo", "--label", "x", "--schedule", "nope", "-o", "json"},
			routes: map[string][]reply{"POST /v1/connections": {{status: 400, body: `{"error":{"code":"invalid_request","message":"bad cron spec","field":"schedule"}}`}}},
			code:   cli.ExitError, errCode: "invalid_request", wantInJSON: []string{`"message":"bad cron spec"`, `"field":"schedule"`},
		},
		{
			name: "usage error", args: []string{"runs", "show", "-o", "json"}, routes: map[string][]reply{},
			code: cli.ExitUsage, errCode: "usage", wantInJSON: []string{`"exit_status":2`},
		},
		{
			name: "host down", args: []string{"connector", "list", "-o", "json"},
			code: cli.ExitError, errCode: "unavailable", wantInJSON: []string{`"addr":"http://127.0.0.1:1"`, "connhost serve"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var api http.Handler
			var env map[string]string
			if tt.routes != nil {
				api = newFakeAPI(tt.routes)
			} else {
				env = map[string]string{cli.EnvAddr: "http://127.0.0.1:1"}
			}
			res := runCLI(t, api, options{env: env}, tt.args...)
			if res.code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", res.code, tt.code, res.stderr)
			}
			if tt.stdout != "" {
				jsonEqual(t, tt.stdout, res.stdout)
			}
			if tt.errCode != "" {
				var e cli.JSONError
				oneJSON(t, res.stdout, &e)
				if e.Error.Code != tt.errCode || e.Error.Message == "" || e.Error.ExitStatus != tt.code {
					t.Errorf("JSON error %+v", e.Error)
				}
				compact := strings.Join(strings.Fields(res.stdout), "")
				for _, want := range tt.wantInJSON {
					if !strings.Contains(compact, strings.Join(strings.Fields(want), "")) {
						t.Errorf("stdout lacks %s:\n%s", want, res.stdout)
					}
				}
			}
			if !strings.HasPrefix(res.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want prefix %q", res.stderr, tt.stderr)
			}
		})
	}

	t.Run("text output keeps stdout empty on an error", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(map[string][]reply{}), options{}, "runs", "show", "r404")
		if res.code != cli.ExitError || res.stdout != "" || !strings.HasPrefix(res.stderr, "error: not_found: ") {
			t.Errorf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
		}
	})
	t.Run("refused run --wait in text shows the run", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(refused), options{}, "run", "c1", "--wait")
		if res.code != cli.ExitRunFailed || !strings.Contains(res.stdout, "status:          refused\n") ||
			!strings.Contains(res.stdout, "failure:         static_secret_credential_unavailable\n") {
			t.Errorf("exit %d, stdout:\n%s", res.code, res.stdout)
		}
	})
}

// hangupAfter serves api, but after the first n requests for path it
// closes the connection without an answer: the host went away.
type hangupAfter struct {
	api  http.Handler
	path string
	n    int32
	seen atomic.Int32
}

func (h *hangupAfter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == h.path && h.seen.Add(1) > h.n {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	h.api.ServeHTTP(w, r)
}

// TestFollowExitsByTheEndEventWhenTheHostGoes: a follower that received
// the run's end event exits by the run's outcome even when the host is
// gone before the run can be re-read.
func TestFollowExitsByTheEndEventWhenTheHostGoes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sse, status, code string
		exit                    int
	}{
		{"cancelled", cancelledSSE, "cancelled", "cancelled", cli.ExitRunFailed},
		{"succeeded", succeededSSE, "succeeded", "", cli.ExitOK},
	}
	for _, tt := range tests {
		for _, mode := range []string{"--follow", "--wait"} {
			t.Run(tt.name+" "+mode, func(t *testing.T) {
				t.Parallel()
				api := &hangupAfter{path: "/v1/runs/r1", n: 1, api: newFakeAPI(map[string][]reply{
					"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
					"GET /v1/runs/r1/events":       {{sse: true, body: tt.sse}},
					"GET /v1/runs/r1":              {{body: runningRunJSON}},
				})}
				res := runCLI(t, api, options{}, "run", "c1", mode, "-o", "json")
				if res.code != tt.exit {
					t.Fatalf("exit %d, want %d: %s", res.code, tt.exit, res.stderr)
				}
				var run apitypes.Run
				oneJSON(t, res.stdout, &run)
				if run.ID != "r1" || run.Status != tt.status || run.FailureCode != tt.code || run.Records != 3 || run.EndedAt != "2025-01-02T03:04:09Z" {
					t.Errorf("run %+v", run)
				}
				if tt.code != "" && run.FailureMessage != "cancelled by the operator" {
					t.Errorf("failure message %q", run.FailureMessage)
				}
				if !strings.Contains(res.stderr, "warning: the run ended "+tt.status+", but re-reading it failed") {
					t.Errorf("stderr = %q", res.stderr)
				}
			})
		}
	}
}

// TestTokenSourceAndUnreachableHost: a refused token says where it came
// from (never the token); an unreachable host names the address tried,
// where it came from, and that connhost serve must run there.
func TestTokenSourceAndUnreachableHost(t *testing.T) {
	t.Parallel()
	const secretToken = "Tok-canary-1234567890"
	unauthorized := map[string][]reply{"GET /v1/enrollment": {{status: 401, body: `{"error":{"code":"unauthorized","message":"unauthorized"}}`}}}
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		file   string
		routes map[string][]reply // nil: no host
		want   []string
	}{
		{name: "flag", args: []string{"--token", secretToken}, routes: unauthorized,
			want: []string{"error: unauthorized: the host at http://127.0.0.1:", "refused the operator token from the --token flag"}},
		{name: "env", env: map[string]string{cli.EnvToken: secretToken}, routes: unauthorized,
			want: []string{"refused the operator token from the CONNHOST_TOKEN environment variable"}},
		{name: "data dir file", env: map[string]string{cli.EnvToken: ""}, file: secretToken, routes: unauthorized,
			want: []string{"refused the operator token from the token file /srv/ch/operator.token"}},
		{name: "down, address from env", env: map[string]string{cli.EnvAddr: "http://127.0.0.1:1"},
			want: []string{"error: unavailable: cannot reach the connhost API at http://127.0.0.1:1 (from CONNHOST_ADDR): connection refused; `connhost serve` must be running there"}},
		{name: "down, address from flag", args: []string{"--addr", "127.0.0.1:1"},
			want: []string{"cannot reach the connhost API at 127.0.0.1:1 (from --addr): connection refused"}},
		{name: "down, unknown host", args: []string{"--addr", "http://nohost.invalid:7480"},
			want: []string{"cannot reach the connhost API at http://nohost.invalid:7480 (from --addr): unknown host nohost.invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var api http.Handler
			if tt.routes != nil {
				api = newFakeAPI(tt.routes)
			}
			res := runCLI(t, api, options{env: tt.env, rt: func(rt *cli.Runtime) {
				rt.ReadToken = func(dir string) (string, error) {
					if tt.file == "" {
						return "", server.ErrNoToken
					}
					return tt.file, nil
				}
			}}, append(tt.args, "enrollment", "--data-dir", "/srv/ch")...)
			if res.code != cli.ExitError {
				t.Errorf("exit %d", res.code)
			}
			for _, want := range tt.want {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr = %q\nwant %q", res.stderr, want)
				}
			}
			if strings.Contains(res.stdout+res.stderr, secretToken) {
				t.Errorf("the token was printed: %q", res.stderr)
			}
		})
	}
}

// TestNoHTMLEscaping: JSON the CLI prints or sends keeps <, > and & as
// they are.
func TestNoHTMLEscaping(t *testing.T) {
	t.Parallel()
	conn := `{"id":"c1","connector_key":"demo","label":"a<b>&c","config":{"cmd":"> fortune"},"schedule":"","state":"active","created_at":"","updated_at":""}`
	record := `{"stream":"events","key":"1","data":{"line":"> fortune & <cookie>"},"run_id":"r1","updated_at":""}`
	routes := map[string][]reply{
		"GET /v1/connections/c1":         {{body: conn}},
		"POST /v1/connections":           {{status: 201, body: conn}},
		"GET /v1/connections/c1/records": {{body: list(record)}},
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"show text", []string{"connection", "show", "c1"}, `{"cmd":"> fortune"}`},
		{"show json", []string{"connection", "show", "c1", "-o", "json"}, `"label": "a<b>&c"`},
		{"records text", []string{"records", "list", "c1"}, `{"line":"> fortune & <cookie>"}`},
		{"records json", []string{"records", "list", "c1", "-o", "json"}, `"line": "> fortune & <cookie>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, newFakeAPI(routes), options{}, tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if !strings.Contains(res.stdout, tt.want) || strings.Contains(res.stdout, `\u00`) {
				t.Errorf("stdout lacks %s or holds an escape:\n%s", tt.want, res.stdout)
			}
		})
	}
	t.Run("request body", func(t *testing.T) {
		t.Parallel()
		api := newFakeAPI(routes)
		res := runCLI(t, api, options{}, "connection", "create", "--connector", "demo", "--label", "a<b>", "--config", `{"cmd":"> fortune"}`)
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		if body := api.Calls()[0].Body; !strings.Contains(body, `"> fortune"`) || !strings.Contains(body, `"a<b>"`) {
			t.Errorf("request body %s", body)
		}
	})
}

// TestEmptyRequiredFlagRefused: a required string flag given an empty or
// blank value is a usage error, before any request.
func TestEmptyRequiredFlagRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"connection", "create", "--connector", "demo", "--label", ""}, "error: usage: --label is empty: it needs a value\n"},
		{[]string{"connection", "update", "c1", "--label", ""}, "error: usage: --label is empty"},
		{[]string{"connection", "create", "--connector", "demo", "--label", "", "-o", "json"}, "error: usage: --label is empty"},
		{[]string{"connection", "create", "--connector", "demo", "--label=  "}, "error: usage: --label is empty"},
		{[]string{"connection", "create", "--connector", "", "--label", "x"}, "error: usage: --connector is empty"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(nil)
			res := runCLI(t, api, options{}, tt.args...)
			if res.code != cli.ExitUsage || !strings.HasPrefix(res.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q", res.code, res.stderr)
			}
			if len(api.Calls()) != 0 {
				t.Errorf("requests were sent: %+v", api.Calls())
			}
		})
	}
}

// TestCompletion: the completion scripts print, and connection ids, run
// ids and connector keys complete from the host.
func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash": "__start_connhost", "zsh": "#compdef connhost", "fish": "complete -c connhost", "powershell": "Register-ArgumentCompleter",
	} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, nil, options{}, "completion", shell)
			if res.code != 0 || !strings.Contains(res.stdout, want) {
				t.Errorf("exit %d, script lacks %q: %.200s", res.code, want, res.stdout)
			}
		})
	}
	routes := map[string][]reply{
		"GET /v1/connections": {{body: list(connectionJSON, `{"id":"c2","connector_key":"github","label":"gh","config":{},"schedule":"","state":"paused","created_at":"","updated_at":""}`)}},
		"GET /v1/runs":        {{body: list(doneRunJSON)}},
		"GET /v1/connectors":  {{body: list(connectorJSON)}},
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"run", ""}, "c1\tL (demo, active)\nc2\tgh (github, paused)\n:4\n"},
		{[]string{"run", "c2"}, "c2\tgh (github, paused)\n:4\n"},
		{[]string{"connection", "show", ""}, "c1\tL (demo, active)\nc2\tgh (github, paused)\n:4\n"},
		{[]string{"credential", "set", ""}, "c1\tL (demo, active)\nc2\tgh (github, paused)\n:4\n"},
		{[]string{"records", "list", "c1", ""}, ":4\n"},
		{[]string{"runs", "show", ""}, "r1\tsucceeded c1 2025-01-02T03:04:05Z\n:4\n"},
		{[]string{"runs", "list", "--connection", ""}, "c1\tL (demo, active)\nc2\tgh (github, paused)\n:4\n"},
		{[]string{"connector", "show", ""}, "demo\tDemo\n:4\n"},
		{[]string{"connection", "create", "--connector", ""}, "demo\tDemo\n:4\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, newFakeAPI(routes), options{}, append([]string{"__complete"}, tt.args...)...)
			if res.code != 0 || !strings.HasPrefix(res.stdout, tt.want) {
				t.Errorf("exit %d, completions %q, want %q", res.code, res.stdout, tt.want)
			}
		})
	}
	t.Run("host down offers nothing", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, nil, options{env: map[string]string{cli.EnvAddr: "http://127.0.0.1:1"}}, "__complete", "run", "")
		if res.code != 0 || !strings.HasPrefix(res.stdout, ":4\n") {
			t.Errorf("exit %d, completions %q", res.code, res.stdout)
		}
	})
}

// TestVersion: the client's build always, the server's from GET
// /v1/version; an unreachable server is reported, with exit status 0.
func TestVersion(t *testing.T) {
	t.Parallel()
	srv := `{"version":"v9.9.9","commit":"0123456789abcdef0123","modified":true,"go":"go1.26.0","os":"linux","arch":"arm64"}`
	api := newFakeAPI(map[string][]reply{"GET /v1/version": {{body: srv}}})

	res := runCLI(t, api, options{}, "version", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var v cli.VersionInfo
	oneJSON(t, res.stdout, &v)
	if v.Version != version.Version || v.Go == "" || v.OS == "" || v.Server == nil || v.Server.Version != "v9.9.9" ||
		v.Server.Commit != "0123456789abcdef0123" || v.ServerError != nil || !strings.HasPrefix(v.ServerAddr, "http://127.0.0.1:") {
		t.Errorf("version = %+v (server %+v)", v, v.Server)
	}

	res = runCLI(t, api, options{}, "version")
	lines := strings.Split(res.stdout, "\n")
	if res.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "client: connhost "+version.Version+" (") ||
		!strings.HasPrefix(lines[1], "server: connhost v9.9.9 (commit 0123456789ab, modified; go1.26.0 linux/arm64) at http://127.0.0.1:") {
		t.Errorf("exit %d, version:\n%s", res.code, res.stdout)
	}

	down := map[string]string{cli.EnvAddr: "http://127.0.0.1:1"}
	res = runCLI(t, nil, options{env: down}, "version")
	if res.code != 0 || !strings.Contains(res.stdout, "client: connhost ") ||
		!strings.Contains(res.stdout, "server: not available: unavailable: cannot reach the connhost API at http://127.0.0.1:1") {
		t.Errorf("exit %d, version:\n%s", res.code, res.stdout)
	}
	res = runCLI(t, nil, options{env: down}, "version", "-o", "json")
	var d cli.VersionInfo
	oneJSON(t, res.stdout, &d)
	if res.code != 0 || d.Version == "" || d.Server != nil || d.ServerError == nil || d.ServerError.Code != "unavailable" {
		t.Errorf("exit %d, version %s", res.code, res.stdout)
	}
	if !strings.Contains(res.stdout, `"server": null`) || strings.Contains(res.stdout, "exit_status") {
		t.Errorf("server is not null:\n%s", res.stdout)
	}
}

// TestFollowProgressCountsReceivedAndCommitted: the connector's progress,
// the records received and the records committed are told apart, with
// the elapsed time and rate from the host's timestamps.
func TestFollowProgressCountsReceivedAndCommitted(t *testing.T) {
	t.Parallel()
	sse := "event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:00Z\",\"status\":\"running\"}\n\n" +
		"event: progress\ndata: {\"run_id\":\"r1\",\"kind\":\"progress\",\"at\":\"2025-01-02T03:04:12Z\",\"stream\":\"events\",\"done\":24,\"total\":60,\"received\":24}\n\n" +
		"event: records\ndata: {\"run_id\":\"r1\",\"kind\":\"records\",\"at\":\"2025-01-02T03:04:20.5Z\",\"records\":40,\"received\":40}\n\n" +
		"event: progress\ndata: {\"run_id\":\"r1\",\"kind\":\"progress\",\"at\":\"2025-01-02T03:04:24Z\",\"stream\":\"events\",\"done\":48,\"total\":60,\"received\":48,\"records\":40}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:30Z\",\"status\":\"succeeded\",\"records\":60}\n\n"
	done := `{"id":"r1","connection_id":"c1","trigger":"manual","attempt":1,"status":"succeeded","created_at":"2025-01-02T03:04:00Z","started_at":"2025-01-02T03:04:00Z","ended_at":"2025-01-02T03:04:30Z","host_id":"host_a","records":60}`
	routes := map[string][]reply{
		"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
		"GET /v1/runs/r1/events":       {{sse: true, body: sse}},
		"GET /v1/runs/r1":              {{body: runningRunJSON}, {body: done}},
	}
	t.Run("lines", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(routes), options{}, "run", "c1", "--follow")
		want := "2025-01-02T03:04:00Z status running\n" +
			"2025-01-02T03:04:12Z progress events 24/60 received=24 committed=0 elapsed=12s rate=2.0/s\n" +
			"2025-01-02T03:04:20Z records committed=40 received=40 elapsed=21s rate=2.0/s\n" +
			"2025-01-02T03:04:24Z progress events 48/60 received=48 committed=40 elapsed=24s rate=2.0/s\n" +
			"2025-01-02T03:04:30Z end succeeded committed=60 elapsed=30s rate=2.0/s\n"
		if res.code != 0 || !strings.HasPrefix(res.stdout, want) {
			t.Errorf("exit %d, stdout:\n%s\nwant prefix:\n%s", res.code, res.stdout, want)
		}
	})
	t.Run("bar", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(routes), options{terminal: true}, "run", "c1", "--follow")
		for _, want := range []string{
			"\rrunning [####........]  40% events 24/60  recv 24  committed 0  12s 2.0/s",
			"\rrunning [#########...]  80% events 48/60  recv 48  committed 40  24s 2.0/s",
			"\rsucceeded [############] 100% events 60/60  recv 60  committed 60  30s 2.0/s",
		} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("stdout lacks %q:\n%q", want, res.stdout)
			}
		}
	})
}
