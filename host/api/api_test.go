package api_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/google/go-cmp/cmp"
)

const unauthorizedBody = `{"error":{"code":"unauthorized","message":"unauthorized"}}` + "\n"

// TestAuthRequiredOnEveryV1RouteAndMetrics: a missing, malformed or
// wrong token is 401 with the same body and no detail — on known routes,
// unknown routes and /metrics alike — while /healthz and /readyz are open.
func TestAuthRequiredOnEveryV1RouteAndMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	cases := map[string]struct {
		method, path, auth string
		want               int
	}{
		"no token":              {"GET", "/v1/connections", "", 401},
		"wrong token":           {"GET", "/v1/connections", "Bearer nope", 401},
		"token prefix":          {"GET", "/v1/connections", "Bearer " + testToken[:10], 401},
		"token with suffix":     {"GET", "/v1/connections", "Bearer " + testToken + "x", 401},
		"basic scheme":          {"GET", "/v1/connections", "Basic " + testToken, 401},
		"bare token":            {"GET", "/v1/connections", testToken, 401},
		"empty bearer":          {"GET", "/v1/connections", "Bearer ", 401},
		"unknown route":         {"GET", "/v1/nope", "", 401},
		"post without token":    {"POST", "/v1/connections", "", 401},
		"openapi is open":       {"GET", "/v1/openapi.json", "", 200},
		"openapi post no token": {"POST", "/v1/openapi.json", "", 405},
		"metrics without token": {"GET", "/metrics", "", 401},
		"healthz is open":       {"GET", "/healthz", "", 200},
		"readyz is open":        {"GET", "/readyz", "", 200},
		"right token":           {"GET", "/v1/connections", "Bearer " + testToken, 200},
		"scheme case":           {"GET", "/v1/connections", "bearer " + testToken, 200},
		"metrics with token":    {"GET", "/metrics", "Bearer " + testToken, 200},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.callToken(c.method, c.path, nil, c.auth)
			if r.Status != c.want {
				t.Fatalf("got %s, want %d", r, c.want)
			}
			if c.want == 401 {
				if string(r.Body) != unauthorizedBody {
					t.Errorf("401 body %q, want %q", r.Body, unauthorizedBody)
				}
				if got := r.Header.Get("WWW-Authenticate"); got == "" {
					t.Error("no WWW-Authenticate header")
				}
			}
		})
	}
}

// TestOpenAPIMatchesRoutes keeps /v1/openapi.json true: every registered
// route is documented and every documented operation is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	e.ok(http.StatusOK, "GET", "/v1/openapi.json", nil, &doc)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(documented)
	if diff := cmp.Diff(e.api.Routes(), documented); diff != "" {
		t.Errorf("registered routes (-) vs OpenAPI operations (+):\n%s", diff)
	}
}

// TestOpenAPISchemasMatchTypes: each schema named after an apitypes type
// lists exactly the JSON fields of that type.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	e := newEnv(t, hosttest.Options{})
	e.ok(http.StatusOK, "GET", "/v1/openapi.json", nil, &doc)
	types := map[string]any{
		"Error": apitypes.Error{}, "ErrorBody": apitypes.ErrorBody{}, "Auth": apitypes.Auth{}, "Stream": apitypes.Stream{},
		"Connector": apitypes.Connector{}, "Connection": apitypes.Connection{},
		"ConnectionCreateRequest": apitypes.ConnectionCreateRequest{}, "ConnectionUpdateRequest": apitypes.ConnectionUpdateRequest{},
		"ConnectionDeleted": apitypes.ConnectionDeleted{}, "CredentialSetRequest": apitypes.CredentialSetRequest{},
		"Credential": apitypes.Credential{}, "CredentialCheck": apitypes.CredentialCheck{}, "Validity": apitypes.Validity{}, "Run": apitypes.Run{}, "RunEvent": apitypes.RunEvent{},
		"Record": apitypes.Record{}, "AuditEvent": apitypes.AuditEvent{}, "EnrollmentEntry": apitypes.EnrollmentEntry{},
		"Enrollment": apitypes.Enrollment{}, "KeysetInfo": apitypes.KeysetInfo{}, "KeyInfo": apitypes.KeyInfo{},
		"RewrapReport": apitypes.RewrapReport{}, "RewrapFailure": apitypes.RewrapFailure{},
		"ConnectionList": apitypes.List[apitypes.Connection]{},
	}
	for name, v := range types {
		t.Run(name, func(t *testing.T) {
			s, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("schema %s missing", name)
			}
			var got []string
			for p := range s.Properties {
				got = append(got, p)
			}
			slices.Sort(got)
			if diff := cmp.Diff(jsonFields(v), got); diff != "" {
				t.Errorf("Go fields (-) vs schema properties (+):\n%s", diff)
			}
		})
	}
}

// jsonFields returns the sorted JSON names of a struct's fields.
func jsonFields(v any) []string {
	var names []string
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// TestMethodNotAllowedAndNotFoundAreTyped: the mux's plain-text 404 and
// 405 become typed JSON errors (405 keeps its Allow header).
func TestMethodNotAllowedAndNotFoundAreTyped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	r := e.call("PUT", "/v1/connections", "{}")
	if r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("got %s", r)
	}
	if body := r.ErrorBody(t); body.Code != apitypes.CodeMethodNotAllowed {
		t.Errorf("code %q", body.Code)
	}
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("Allow %q", allow)
	}
	r = e.call("GET", "/v1/nothing/here", nil)
	if r.Status != http.StatusNotFound || r.ErrorBody(t).Code != apitypes.CodeNotFound {
		t.Fatalf("got %s", r)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
}

// TestHealthAndReadiness: /readyz fails once the API is closing.
func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var h struct{ Status, Version string }
	e.ok(http.StatusOK, "GET", "/healthz", nil, &h)
	if h.Status != "ok" || h.Version == "" {
		t.Errorf("healthz %+v", h)
	}
	e.ok(http.StatusOK, "GET", "/readyz", nil, &h)
	if h.Status != "ready" {
		t.Errorf("readyz %+v", h)
	}
	e.api.Close()
	r := e.call("GET", "/readyz", nil)
	if r.Status != http.StatusServiceUnavailable || r.ErrorBody(t).Code != apitypes.CodeUnavailable {
		t.Errorf("readyz after Close: %s", r)
	}
	e.ok(http.StatusOK, "GET", "/healthz", nil, nil)
}

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	Event string
	Data  apitypes.RunEvent
}

// readSSE reads events until the stream ends, and counts heartbeats.
func readSSE(t *testing.T, r *bufio.Reader) (events []sseEvent, heartbeats int) {
	t.Helper()
	var cur sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return events, heartbeats
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if cur.Event != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ": "):
			heartbeats++
		case strings.HasPrefix(line, "event: "):
			cur.Event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.Data); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}
