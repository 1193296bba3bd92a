package api_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/internal/apicall"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/metrics"
	"github.com/connhost/connhost/keysets"
)

// testToken is the operator token of every test API.
const testToken = "test-operator-token-0123456789abcdef"

// fakeKeyset is an api.Keyset whose methods are func fields.
type fakeKeyset struct {
	info   func() keysets.Info
	rotate func(ctx context.Context, actor string) (keysets.Info, error)
	rewrap func(ctx context.Context, actor string) (broker.RewrapReport, error)
}

func (f *fakeKeyset) Info() keysets.Info { return f.info() }
func (f *fakeKeyset) Rotate(ctx context.Context, actor string) (keysets.Info, error) {
	return f.rotate(ctx, actor)
}
func (f *fakeKeyset) Rewrap(ctx context.Context, actor string) (broker.RewrapReport, error) {
	return f.rewrap(ctx, actor)
}
func (f *fakeKeyset) DisableKey(context.Context, string, uint32) (api.KeyChange, error) {
	return api.KeyChange{}, fmt.Errorf("disabling a key is tested in host/server")
}
func (f *fakeKeyset) EnableKey(context.Context, string, uint32) (api.KeyChange, error) {
	return api.KeyChange{}, fmt.Errorf("enabling a key is tested in host/server")
}

var _ api.Keyset = (*fakeKeyset)(nil)

// env is a test API over a real host (SQLite, demo plugin subprocess).
type env struct {
	t   *testing.T
	h   *hosttest.Host
	api *api.API
	srv *httptest.Server
	m   *metrics.Metrics
}

func newEnv(t *testing.T, o hosttest.Options) *env {
	t.Helper()
	h := hosttest.New(t, o)
	m := metrics.New()
	ks := h.Keyset
	a, err := api.New(api.Config{
		Token: testToken, Store: h.Store, Control: h.Control, Catalog: h.Catalog, Runs: h.Runner,
		Schedule: h.Scheduler, Metrics: m.Handler(), Observer: m, Logger: h.Logger.Named("http"),
		Heartbeat: 200 * time.Millisecond, Health: h.Health,
		Explainer: h.Explainer,
		Keyset: &fakeKeyset{
			info: func() keysets.Info { return ks.Info() },
			rotate: func(context.Context, string) (keysets.Info, error) {
				return keysets.Info{}, fmt.Errorf("rotation is tested in host/server")
			},
			rewrap: func(ctx context.Context, actor string) (broker.RewrapReport, error) {
				return h.Broker.Rewrap(ctx, actor)
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	// Registered after hosttest's cleanup, so it runs first: event
	// streams end before the host shuts down.
	t.Cleanup(func() { a.Close(); srv.Close() })
	return &env{t: t, h: h, api: a, srv: srv, m: m}
}

// response is a received response.
type response = apicall.Response

// caller sends requests with the test token.
func (e *env) caller() apicall.Caller {
	return apicall.Caller{T: e.t, Base: e.srv.URL, Auth: "Bearer " + testToken, Client: e.srv.Client()}
}

// call sends a request with the test token. body is sent as is when it is
// a string or []byte, else JSON-encoded.
func (e *env) call(method, path string, body any) response {
	e.t.Helper()
	return e.caller().Call(method, path, body)
}

// callToken sends a request with auth as the Authorization header.
func (e *env) callToken(method, path string, body any, auth string) response {
	e.t.Helper()
	return e.caller().CallAuth(method, path, body, auth)
}

// ok calls and requires want, decoding the body into out.
func (e *env) ok(want int, method, path string, body, out any) response {
	e.t.Helper()
	return e.caller().OK(want, method, path, body, out)
}

// createDemo creates a demo connection through the API.
func (e *env) createDemo(config map[string]any, schedule string) apitypes.Connection {
	e.t.Helper()
	var c apitypes.Connection
	e.ok(http.StatusCreated, "POST", "/v1/connections",
		apitypes.ConnectionCreateRequest{ConnectorKey: "demo", Label: "demo", Config: config, Schedule: schedule}, &c)
	return c
}

// setToken captures DEMO_TOKEN through the API.
func (e *env) setToken(connID, token string) apitypes.Credential {
	e.t.Helper()
	var c apitypes.Credential
	e.ok(http.StatusOK, "PUT", "/v1/connections/"+connID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": token}}, &c)
	return c
}

// waitRun polls the run until it is terminal.
func (e *env) waitRun(id string) apitypes.Run {
	e.t.Helper()
	var run apitypes.Run
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.ok(http.StatusOK, "GET", "/v1/runs/"+id, nil, &run)
		switch run.Status {
		case "succeeded", "failed", "refused", "cancelled":
			return run
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s still %s", id, run.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dump returns every row of every table of the host's SQLite file, as
// text, keyed by table: the whole stored state.
func (e *env) dump() map[string][]string {
	e.t.Helper()
	return dumpSQLite(e.t, e.h.Store.Path())
}

func dumpSQLite(t *testing.T, path string) map[string][]string {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	out := map[string][]string{}
	for _, table := range tables {
		rs, err := db.Query(`SELECT * FROM "` + table + `" ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rs.Columns()
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s=%v;", cols[i], v)
			}
			out[table] = append(out[table], b.String())
		}
		rs.Close()
	}
	return out
}

func ptr[T any](v T) *T { return &v }
