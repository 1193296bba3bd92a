package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
)

// GET /v1/connectors takes all=true|false only; with all=true the body
// carries "rejected" (empty here), without it none. A host without a
// rescanner answers the rescan 503.
func TestConnectorListAllParam(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var l apitypes.ConnectorList
	e.ok(http.StatusOK, "GET", "/v1/connectors?all=true", nil, &l)
	if l.Rejected == nil || len(l.Items) != 1 {
		t.Errorf("all=true: %+v", l)
	}
	if r := e.call("GET", "/v1/connectors?all=false", nil); r.Status != 200 || strings.Contains(string(r.Body), `"rejected":`) {
		t.Errorf("all=false: %s", r)
	}
	if r := e.call("GET", "/v1/connectors?all=yes", nil); r.Status != 400 || !strings.Contains(string(r.Body), `"field":"all"`) {
		t.Errorf("all=yes: %s", r)
	}
	if r := e.call("POST", "/v1/connectors/rescan", nil); r.Status != 503 {
		t.Errorf("rescan without a rescanner: %s", r)
	}
}
