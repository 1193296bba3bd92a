package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/broker"
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
		Heartbeat: 200 * time.Millisecond,
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
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// errorBody decodes the typed error.
func (r response) errorBody(t *testing.T) apitypes.ErrorBody {
	t.Helper()
	var e apitypes.Error
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.Body, err)
	}
	return e.Error
}

// call sends a request with the test token. body is sent as is when it is
// a string or []byte, else JSON-encoded.
func (e *env) call(method, path string, body any) response {
	e.t.Helper()
	return e.callToken(method, path, body, "Bearer "+testToken)
}

func (e *env) callToken(method, path string, body any, auth string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// ok calls and requires want, decoding the body into out.
func (e *env) ok(want int, method, path string, body, out any) response {
	e.t.Helper()
	r := e.call(method, path, body)
	if r.Status != want {
		e.t.Fatalf("%s %s: got %s, want status %d", method, path, r, want)
	}
	if out != nil {
		// Decode into a zero value: omitted fields must not keep an
		// earlier response's values.
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(r.Body, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, path, r.Body, err)
		}
	}
	return r
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
