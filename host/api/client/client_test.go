package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/google/go-cmp/cmp"
)

const token = "op-token-123"

// seen is one request the fake API received.
type seen struct {
	Method string
	Path   string
	Query  string
	Body   string
	Auth   string
}

// fakeAPI answers every request with status and body, recording it.
type fakeAPI struct {
	mu     sync.Mutex
	got    []seen
	status int
	body   string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.got = append(f.got, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, string(b), r.Header.Get("Authorization")})
	status, body := f.status, f.body
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newClient(t *testing.T, status int, body string) (*client.Client, *fakeAPI) {
	t.Helper()
	f := &fakeAPI{status: status, body: body}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, token, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := apitypes.Connection{ID: "c/1", ConnectorKey: "demo", Label: "L", Config: json.RawMessage(`{}`), State: "active"}
	connJSON := `{"id":"c/1","connector_key":"demo","label":"L","config":{},"schedule":"","state":"active","created_at":"","updated_at":""}`
	run := apitypes.Run{ID: "r1", ConnectionID: "c1", Status: "queued"}
	runJSON := `{"id":"r1","connection_id":"c1","trigger":"","attempt":0,"status":"queued","failure_code":"","created_at":"","started_at":"","ended_at":"","records":0}`
	cred := apitypes.Credential{Present: true, State: "active", Names: []string{"DEMO_TOKEN"}}
	credJSON := `{"present":true,"state":"active","names":["DEMO_TOKEN"],"captured_at":"","rotated_at":""}`
	label := "new"

	tests := []struct {
		name   string
		status int
		body   string
		call   func(c *client.Client) (any, error)
		want   seen
		result any
	}{
		{
			name: "list connectors", status: 200,
			body: `{"items":[{"connector_key":"demo","version":"1.0.0","auth":{"kind":"static_secret","required":["DEMO_TOKEN"]}}],"next":""}`,
			call: func(c *client.Client) (any, error) { return c.ListConnectors(ctx) },
			want: seen{Method: "GET", Path: "/v1/connectors"},
			result: []apitypes.Connector{{ConnectorKey: "demo", Version: "1.0.0",
				Auth: apitypes.Auth{Kind: "static_secret", Required: []string{"DEMO_TOKEN"}}}},
		},
		{
			name: "get connector", status: 200, body: `{"connector_key":"demo"}`,
			call:   func(c *client.Client) (any, error) { return c.GetConnector(ctx, "demo") },
			want:   seen{Method: "GET", Path: "/v1/connectors/demo"},
			result: apitypes.Connector{ConnectorKey: "demo"},
		},
		{
			name: "create connection", status: 201, body: connJSON,
			call: func(c *client.Client) (any, error) {
				return c.CreateConnection(ctx, apitypes.ConnectionCreateRequest{ConnectorKey: "demo", Label: "L", Schedule: "@every 1s"})
			},
			want:   seen{Method: "POST", Path: "/v1/connections", Body: `{"connector_key":"demo","label":"L","schedule":"@every 1s"}`},
			result: conn,
		},
		{
			name: "list connections filtered", status: 200, body: `{"items":[` + connJSON + `],"next":"n2"}`,
			call: func(c *client.Client) (any, error) {
				return c.ListConnections(ctx, client.ConnectionFilter{Connector: "demo", State: "active", Cursor: "x", Limit: 5})
			},
			want:   seen{Method: "GET", Path: "/v1/connections", Query: "connector=demo&cursor=x&limit=5&state=active"},
			result: apitypes.List[apitypes.Connection]{Items: []apitypes.Connection{conn}, Next: "n2"},
		},
		{
			name: "get connection escapes the id", status: 200, body: connJSON,
			call:   func(c *client.Client) (any, error) { return c.GetConnection(ctx, "c/1") },
			want:   seen{Method: "GET", Path: "/v1/connections/c%2F1"},
			result: conn,
		},
		{
			name: "update connection sends only set fields", status: 200, body: connJSON,
			call: func(c *client.Client) (any, error) {
				return c.UpdateConnection(ctx, "c1", apitypes.ConnectionUpdateRequest{Label: &label})
			},
			want:   seen{Method: "PATCH", Path: "/v1/connections/c1", Body: `{"label":"new"}`},
			result: conn,
		},
		{
			name: "pause", status: 200, body: connJSON,
			call:   func(c *client.Client) (any, error) { return c.PauseConnection(ctx, "c1") },
			want:   seen{Method: "POST", Path: "/v1/connections/c1/pause"},
			result: conn,
		},
		{
			name: "resume", status: 200, body: connJSON,
			call:   func(c *client.Client) (any, error) { return c.ResumeConnection(ctx, "c1") },
			want:   seen{Method: "POST", Path: "/v1/connections/c1/resume"},
			result: conn,
		},
		{
			name: "revoke connection", status: 200, body: connJSON,
			call:   func(c *client.Client) (any, error) { return c.RevokeConnection(ctx, "c1") },
			want:   seen{Method: "POST", Path: "/v1/connections/c1/revoke"},
			result: conn,
		},
		{
			name: "delete connection", status: 200,
			body:   `{"id":"c1","records_deleted":5,"checkpoint_deleted":true,"credential_deleted":true}`,
			call:   func(c *client.Client) (any, error) { return c.DeleteConnection(ctx, "c1") },
			want:   seen{Method: "DELETE", Path: "/v1/connections/c1"},
			result: apitypes.ConnectionDeleted{ID: "c1", Records: 5, Checkpoint: true, Credential: true},
		},
		{
			name: "set credential", status: 200, body: credJSON,
			call: func(c *client.Client) (any, error) {
				return c.SetCredential(ctx, "c1", apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "v"}})
			},
			want:   seen{Method: "PUT", Path: "/v1/connections/c1/credential", Body: `{"values":{"DEMO_TOKEN":"v"}}`},
			result: cred,
		},
		{
			name: "get credential", status: 200, body: credJSON,
			call:   func(c *client.Client) (any, error) { return c.GetCredential(ctx, "c1") },
			want:   seen{Method: "GET", Path: "/v1/connections/c1/credential"},
			result: cred,
		},
		{
			name: "revoke credential", status: 200, body: credJSON,
			call:   func(c *client.Client) (any, error) { return c.RevokeCredential(ctx, "c1") },
			want:   seen{Method: "POST", Path: "/v1/connections/c1/credential/revoke"},
			result: cred,
		},
		{
			name: "delete credential", status: 200, body: credJSON,
			call:   func(c *client.Client) (any, error) { return c.DeleteCredential(ctx, "c1") },
			want:   seen{Method: "DELETE", Path: "/v1/connections/c1/credential"},
			result: cred,
		},
		{
			name: "trigger run", status: 202, body: runJSON,
			call:   func(c *client.Client) (any, error) { return c.TriggerRun(ctx, "c1") },
			want:   seen{Method: "POST", Path: "/v1/connections/c1/runs"},
			result: run,
		},
		{
			name: "list records", status: 200,
			body: `{"items":[{"stream":"events","key":"0","data":{"z":9007199254740993,"a":[1.50,"\u003e"]},"run_id":"r1","updated_at":""}],"next":"k"}`,
			call: func(c *client.Client) (any, error) {
				return c.ListRecords(ctx, "c1", client.RecordFilter{Stream: "events", Limit: 10})
			},
			want: seen{Method: "GET", Path: "/v1/connections/c1/records", Query: "limit=10&stream=events"},
			result: apitypes.List[apitypes.Record]{Items: []apitypes.Record{
				{Stream: "events", Key: "0", Data: json.RawMessage(`{"z":9007199254740993,"a":[1.50,"\u003e"]}`), RunID: "r1"}}, Next: "k"},
		},
		{
			name: "list runs", status: 200, body: `{"items":[` + runJSON + `],"next":""}`,
			call: func(c *client.Client) (any, error) {
				return c.ListRuns(ctx, client.RunFilter{Connection: "c1", Status: "succeeded", Cursor: "x"})
			},
			want:   seen{Method: "GET", Path: "/v1/runs", Query: "connection=c1&cursor=x&status=succeeded"},
			result: apitypes.List[apitypes.Run]{Items: []apitypes.Run{run}},
		},
		{
			name: "get run", status: 200, body: runJSON,
			call:   func(c *client.Client) (any, error) { return c.GetRun(ctx, "r1") },
			want:   seen{Method: "GET", Path: "/v1/runs/r1"},
			result: run,
		},
		{
			name: "cancel run", status: 200, body: runJSON,
			call:   func(c *client.Client) (any, error) { return c.CancelRun(ctx, "r1") },
			want:   seen{Method: "POST", Path: "/v1/runs/r1/cancel"},
			result: run,
		},
		{
			name: "audit", status: 200, body: `{"items":[{"id":"a1","at":"","actor":"operator","operation":"credential.capture","target_kind":"connection","target_id":"c1","outcome":"ok"}],"next":""}`,
			call: func(c *client.Client) (any, error) {
				return c.ListAudit(ctx, client.AuditFilter{Target: "c1", Operation: "credential.capture", Limit: 5})
			},
			want: seen{Method: "GET", Path: "/v1/audit", Query: "limit=5&operation=credential.capture&target=c1"},
			result: apitypes.List[apitypes.AuditEvent]{Items: []apitypes.AuditEvent{
				{ID: "a1", Actor: "operator", Operation: "credential.capture", TargetKind: "connection", TargetID: "c1", Outcome: "ok"}}},
		},
		{
			name: "enrollment", status: 200, body: `{"connections":[{"connection_id":"c1","connector_key":"demo","outcome":"enrolled","evaluated_at":""}]}`,
			call: func(c *client.Client) (any, error) { return c.Enrollment(ctx) },
			want: seen{Method: "GET", Path: "/v1/enrollment"},
			result: apitypes.Enrollment{Connections: []apitypes.EnrollmentEntry{
				{ConnectionID: "c1", ConnectorKey: "demo", Outcome: "enrolled"}}},
		},
		{
			name: "keyset info", status: 200, body: `{"primary_key_id":7,"keys":[{"id":7,"status":"ENABLED","type":"AES256_GCM","primary":true}],"encrypted":true,"kek":"file"}`,
			call: func(c *client.Client) (any, error) { return c.KeysetInfo(ctx) },
			want: seen{Method: "GET", Path: "/v1/keyset"},
			result: apitypes.KeysetInfo{PrimaryKeyID: 7, Encrypted: true, KEK: "file",
				Keys: []apitypes.KeyInfo{{ID: 7, Status: "ENABLED", Type: "AES256_GCM", Primary: true}}},
		},
		{
			name: "keyset rotate", status: 200, body: `{"primary_key_id":8,"keys":[],"encrypted":true,"kek":"env"}`,
			call:   func(c *client.Client) (any, error) { return c.RotateKeyset(ctx) },
			want:   seen{Method: "POST", Path: "/v1/keyset/rotate"},
			result: apitypes.KeysetInfo{PrimaryKeyID: 8, Keys: []apitypes.KeyInfo{}, Encrypted: true, KEK: "env"},
		},
		{
			name: "keyset rewrap", status: 200, body: `{"primary_key_id":8,"scanned":2,"rewrapped":1,"current":1,"quarantined":[],"failed":[]}`,
			call: func(c *client.Client) (any, error) { return c.RewrapKeyset(ctx) },
			want: seen{Method: "POST", Path: "/v1/keyset/rewrap"},
			result: apitypes.RewrapReport{PrimaryKeyID: 8, Scanned: 2, Rewrapped: 1, Current: 1,
				Quarantined: []string{}, Failed: []apitypes.RewrapFailure{}},
		},
		{
			name: "console sign-in", status: 200, body: `{"path":"/ui/signin?code=abc","expires_at":"2026-12-06T02:10:00Z"}`,
			call:   func(c *client.Client) (any, error) { return c.ConsoleSignIn(ctx) },
			want:   seen{Method: "POST", Path: "/v1/console/signin"},
			result: apitypes.ConsoleSignIn{Path: "/ui/signin?code=abc", ExpiresAt: "2026-12-06T02:10:00Z"},
		},
		{
			name: "ready", status: 200, body: `ok`,
			call: func(c *client.Client) (any, error) { return nil, c.Ready(ctx) },
			want: seen{Method: "GET", Path: "/readyz"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, f := newClient(t, tt.status, tt.body)
			got, err := tt.call(c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			tt.want.Auth = "Bearer " + token
			if diff := cmp.Diff([]seen{tt.want}, f.got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.result, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		body   string
		want   *client.APIError
		text   string
	}{
		{
			name: "typed error", status: 409,
			body: `{"error":{"code":"static_secret_credential_unavailable","message":"credential revoked; run r9 refused","run_id":"r9"}}`,
			want: &client.APIError{Status: 409, Code: "static_secret_credential_unavailable", Message: "credential revoked; run r9 refused", RunID: "r9"},
			text: "static_secret_credential_unavailable: credential revoked; run r9 refused",
		},
		{
			name: "invalid request names the field", status: 400,
			body: `{"error":{"code":"invalid_request","message":"bad cron spec","field":"schedule"}}`,
			want: &client.APIError{Status: 400, Code: "invalid_request", Message: "bad cron spec", Field: "schedule"},
			text: "invalid_request: bad cron spec (field schedule)",
		},
		{
			name: "untyped 401", status: 401, body: `nope`,
			want: &client.APIError{Status: 401, Code: "unauthorized", Message: "Unauthorized"},
			text: "unauthorized: Unauthorized",
		},
		{
			name: "proxy page is not copied", status: 502, body: `<html>secret-ish proxy page</html>`,
			want: &client.APIError{Status: 502, Code: "http_502", Message: "Bad Gateway"},
			text: "http_502: Bad Gateway",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newClient(t, tt.status, tt.body)
			_, err := c.GetConnection(context.Background(), "c1")
			var got *client.APIError
			if !errors.As(err, &got) {
				t.Fatalf("error %v (%T) is not an *APIError", err, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
			if err.Error() != tt.text {
				t.Errorf("Error() = %q, want %q", err.Error(), tt.text)
			}
			if !client.IsCode(err, tt.want.Code) || !errors.Is(err, &client.APIError{Code: tt.want.Code}) {
				t.Errorf("IsCode/errors.Is do not match code %q", tt.want.Code)
			}
		})
	}
}

// TestSecretsNotInErrors: a refused credential capture returns an error
// that holds neither the values sent nor the token.
func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-value-xyz"
	for _, tt := range []struct {
		name   string
		status int
		body   string
	}{
		{name: "typed", status: 400, body: `{"error":{"code":"invalid_request","message":"unknown name"}}`},
		{name: "untyped", status: 500, body: `boom`},
		{name: "bad json", status: 200, body: `{"present":`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newClient(t, tt.status, tt.body)
			_, err := c.SetCredential(context.Background(), "c1", apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": secret}})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), token) {
				t.Errorf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	// A listener closed at once: the port refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := client.New(addr, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListConnectors(context.Background())
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("refused connection: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("error leaks the token: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cc, _ := newClient(t, 200, `{}`)
	if _, err := cc.GetRun(ctx, "r1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v, want context.Canceled", err)
	}

	bad, _ := newClient(t, 200, `[not json`)
	if _, err := bad.GetRun(context.Background(), "r1"); !errors.Is(err, client.ErrBadResponse) {
		t.Errorf("bad body: %v, want ErrBadResponse", err)
	}
	if _, err := bad.GetRun(context.Background(), ""); !errors.Is(err, client.ErrEmptyID) {
		t.Errorf("empty id: %v, want ErrEmptyID", err)
	}
}

func TestNewAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr    string
		want    string
		wantErr bool
	}{
		{addr: "http://127.0.0.1:7480", want: "http://127.0.0.1:7480"},
		{addr: "127.0.0.1:7480", want: "http://127.0.0.1:7480"},
		{addr: "https://h.example/connhost/", want: "https://h.example/connhost"},
		{addr: "", wantErr: true},
		{addr: "ftp://h", wantErr: true},
		{addr: "http://user:pw@h", wantErr: true},
		{addr: "http://h/?q=1", wantErr: true},
		{addr: "http://", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			c, err := client.New(tt.addr, "", nil)
			if tt.wantErr {
				if !errors.Is(err, client.ErrInvalidAddr) {
					t.Fatalf("New(%q) = %v, want ErrInvalidAddr", tt.addr, err)
				}
				if strings.Contains(err.Error(), "pw") {
					t.Errorf("error repeats userinfo: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr() != tt.want {
				t.Errorf("Addr() = %q, want %q", c.Addr(), tt.want)
			}
		})
	}
}

// TestPathPrefix: a client for an API behind a path prefix keeps it.
func TestPathPrefix(t *testing.T) {
	t.Parallel()
	f := &fakeAPI{status: 200, body: `{"connections":[]}`}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL+"/prefix/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enrollment(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.got[0]; got.Path != "/prefix/v1/enrollment" || got.Auth != "" {
		t.Errorf("request %+v, want path /prefix/v1/enrollment and no Authorization", got)
	}
}

func TestRunEventsStream(t *testing.T) {
	t.Parallel()
	const stream = ": hello\n\n" +
		"event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"status\":\"running\"}\n\n" +
		"event: progress\r\ndata: {\"run_id\":\"r1\",\"kind\":\"progress\",\"stream\":\"events\",\"done\":2,\"total\":5}\r\n\r\n" +
		"id: 3\nretry: 100\nevent: records\ndata: {\"run_id\":\"r1\",\n" +
		"data: \"kind\":\"records\",\"records\":5}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"status\":\"succeeded\"}\n\n"
	var gotAccept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAccept = r.Header.Get("Accept")
		if r.URL.Path != "/v1/runs/r1/events" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, stream)
	}))
	t.Cleanup(srv.Close)
	c, _ := client.New(srv.URL, token, nil)
	es, err := c.RunEvents(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	var got []apitypes.RunEvent
	for {
		ev, err := es.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	want := []apitypes.RunEvent{
		{RunID: "r1", Kind: "status", Status: "running"},
		{RunID: "r1", Kind: "progress", Stream: "events", Done: 2, Total: 5},
		{RunID: "r1", Kind: "records", Records: 5},
		{RunID: "r1", Kind: "end", Status: "succeeded"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if gotAccept != "text/event-stream" {
		t.Errorf("Accept = %q", gotAccept)
	}
}

func TestRunEventsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want error
	}{
		{name: "closed before end", body: "event: status\ndata: {\"kind\":\"status\"}\n\n", want: client.ErrStreamEnded},
		{name: "incomplete last event", body: "event: end\ndata: {\"kind\":\"end\"}", want: client.ErrStreamEnded},
		{name: "not json", body: "event: status\ndata: nope\n\n", want: client.ErrBadResponse},
		{name: "line too long", body: "data: " + strings.Repeat("x", 1<<20+10) + "\n\n", want: client.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c, _ := client.New(srv.URL, token, nil)
			es, err := c.RunEvents(context.Background(), "r1")
			if err != nil {
				t.Fatal(err)
			}
			defer es.Close()
			for {
				_, err = es.Next()
				if err != nil {
					break
				}
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Next() = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("typed error on open", func(t *testing.T) {
		t.Parallel()
		c, _ := newClient(t, 404, `{"error":{"code":"run_not_found","message":"no run r1"}}`)
		_, err := c.RunEvents(context.Background(), "r1")
		if !client.IsCode(err, apitypes.CodeRunNotFound) {
			t.Errorf("RunEvents = %v, want run_not_found", err)
		}
	})
}

// jsonEq compares a marshalled value to the expected JSON text.
func jsonEq(t *testing.T, v any, want string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}

// TestUpdateRequestClearsSchedule: an empty schedule is sent (it removes
// the connection's schedule) while nil fields are not.
func TestUpdateRequestClearsSchedule(t *testing.T) {
	t.Parallel()
	empty := ""
	jsonEq(t, apitypes.ConnectionUpdateRequest{Schedule: &empty}, `{"schedule":""}`)
}
