package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/google/go-cmp/cmp"
)

const provCanary = "CANARY-api-provenance-63d0e2"

// Issue 12: the run JSON carries the launch provenance, and
// /v1/connections/{id}/explain predicts it, before and after a revoke —
// neither ever holds a secret.
func TestRunProvenanceAndExplainOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{HostEnv: map[string]string{"PATH": os.Getenv("PATH"), "DEMO_TOKEN": ""}, AllowHostEnv: true})
	c := e.createDemo(map[string]any{"records": 1}, "")
	var bodies []string
	get := func(path string, out any) {
		t.Helper()
		r := e.ok(http.StatusOK, "GET", path, nil, out)
		bodies = append(bodies, string(r.Body))
	}

	// Before a credential: credentials_required, DEMO_TOKEN empty in the host env.
	var ex apitypes.Explain
	get("/v1/connections/"+c.ID+"/explain", &ex)
	if ex.Launch.Outcome != "refused" || ex.Launch.Refusal == nil || ex.Launch.Refusal.Code != "credentials_required" ||
		!cmp.Equal(ex.Launch.Refusal.EmptyEnv, []string{"DEMO_TOKEN"}) || ex.Launch.Refusal.CredentialState != "none" {
		t.Fatalf("explain before a credential = %+v", ex.Launch)
	}

	e.setToken(c.ID, provCanary)
	get("/v1/connections/"+c.ID+"/explain", &ex)
	if ex.Launch.Outcome != "launch" || ex.Launch.CredentialSource != "stored" || ex.Launch.Credential == nil ||
		ex.Launch.Credential.State != "active" || ex.Launch.Credential.CapturedAt == "" || ex.Launch.Credential.KeyID == 0 {
		t.Fatalf("explain with a credential = %+v", ex.Launch)
	}
	if ex.Enrollment.ConnectionID != c.ID || ex.Health.Verdict == "" || len(ex.Launch.Notes) == 0 {
		t.Fatalf("explain = %+v", ex)
	}

	var queued apitypes.Run
	e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &queued)
	e.waitRun(queued.ID)
	var run apitypes.Run
	get("/v1/runs/"+queued.ID, &run)
	if run.Provenance == nil || run.Provenance.CredentialSource != "stored" {
		t.Fatalf("run provenance = %+v", run.Provenance)
	}
	want := []apitypes.EnvVar{{Name: "CONNHOST_CONNECTION_ID", Layer: "run_metadata"}, {Name: "CONNHOST_RUN_ID", Layer: "run_metadata"},
		{Name: "CONNHOST_TRIGGER", Layer: "run_metadata"}, {Name: "DEMO_TOKEN", Layer: "stored_credential"}, {Name: "PATH", Layer: "allowlist"}}
	if diff := cmp.Diff(want, run.Provenance.Env); diff != "" {
		t.Fatalf("run provenance env (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ex.Launch.Env, run.Provenance.Env); diff != "" {
		t.Fatalf("explain env vs run env (-explain +run):\n%s", diff)
	}
	var list apitypes.List[apitypes.Run]
	get("/v1/runs?connection="+c.ID, &list)
	if len(list.Items) != 1 || !cmp.Equal(list.Items[0].Provenance, run.Provenance) {
		t.Fatalf("listed run provenance = %+v", list.Items)
	}

	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/credential/revoke", nil, nil)
	get("/v1/connections/"+c.ID+"/explain", &ex)
	r := ex.Launch.Refusal
	if ex.Launch.Outcome != "refused" || r == nil || r.Code != "static_secret_credential_unavailable" ||
		r.CredentialState != "revoked" || !strings.Contains(r.Message, "stored credential revoked at ") || len(ex.Launch.Env) != 0 {
		t.Fatalf("explain after revoke = %+v (refusal %+v)", ex.Launch, r)
	}
	refusedID := e.call("POST", "/v1/connections/"+c.ID+"/runs", nil).ErrorBody(t).RunID
	if refusedID == "" {
		// Queued: the refusal happens at launch.
		var q apitypes.Run
		get("/v1/runs?connection="+c.ID, &list)
		q = list.Items[0]
		refusedID = q.ID
	}
	refused := e.waitRun(refusedID)
	get("/v1/runs/"+refused.ID, &refused)
	if p := refused.Provenance; p == nil || p.Refusal == nil || p.Refusal.CredentialState != "revoked" ||
		p.Refusal.Code != "static_secret_credential_unavailable" || len(p.Env) != 0 || p.Credential.RevokedAt == "" {
		t.Fatalf("refused run provenance = %+v", p)
	}

	nf := e.call("GET", "/v1/connections/conn_missing/explain", nil)
	if nf.Status != http.StatusNotFound || nf.ErrorBody(t).Code != "connection_not_found" {
		t.Fatalf("explain of an unknown connection = %s", nf)
	}

	for _, b := range bodies {
		if strings.Contains(b, provCanary) {
			t.Fatalf("a response holds the canary: %s", b)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(b), &m); err != nil {
			t.Fatal(err)
		}
	}
	for table, rows := range e.dump() {
		for _, row := range rows {
			if strings.Contains(row, provCanary) {
				t.Fatalf("table %s holds the canary in clear: %s", table, row)
			}
		}
	}
}

// Issue 12 (a user trial): right after a revoke, explain reports the
// enrollment in force — what GET /v1/enrollment and the connection's
// next_run say — and the scheduled launch it leads to, refused; the gate's
// decision now comes as reevaluation, absent while the two agree.
func TestExplainReportsTheEnrollmentInForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{HostEnv: map[string]string{"PATH": os.Getenv("PATH"), "DEMO_TOKEN": ""}, AllowHostEnv: true})
	c := e.createDemo(map[string]any{"records": 1}, "@every 1h")
	e.setToken(c.ID, provCanary)

	var ex apitypes.Explain
	r := e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/explain", nil, &ex)
	var conn apitypes.Connection
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &conn)
	if ex.Enrollment.Outcome != "enrolled" || ex.Reevaluation != nil || strings.Contains(string(r.Body), `"reevaluation"`) ||
		ex.Launch.Trigger != "scheduled" || ex.Launch.NextRun == "" || ex.Launch.NextRun != conn.NextRun {
		t.Fatalf("explain with a credential: enrollment %+v reevaluation %+v launch %+v (connection next_run %q)",
			ex.Enrollment, ex.Reevaluation, ex.Launch, conn.NextRun)
	}

	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/credential/revoke", nil, nil)
	r = e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/explain", nil, &ex)
	var en apitypes.Enrollment
	e.ok(http.StatusOK, "GET", "/v1/enrollment", nil, &en)
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &conn)
	var inForce apitypes.EnrollmentEntry
	for _, x := range en.Connections {
		if x.ConnectionID == c.ID {
			inForce = x
		}
	}
	if !cmp.Equal(ex.Enrollment, inForce) || inForce.Outcome != "enrolled" {
		t.Fatalf("after revoke: explain's enrollment %+v, GET /v1/enrollment %+v: want the same, enrolled", ex.Enrollment, inForce)
	}
	l := ex.Launch
	if l.Outcome != "refused" || l.Trigger != "scheduled" || l.Refusal == nil || l.Refusal.Code != "static_secret_credential_unavailable" ||
		l.NextRun == "" || l.NextRun != conn.NextRun {
		t.Fatalf("after revoke: launch %+v (connection next_run %q), want the scheduled one, refused", l, conn.NextRun)
	}
	if re := ex.Reevaluation; re == nil || re.Outcome != "skipped_env" || re.ConnectionID != c.ID || re.EvaluatedAt == "" ||
		!strings.Contains(re.Reason, "host env lacks DEMO_TOKEN") {
		t.Fatalf("after revoke: reevaluation %+v, want the gate's skipped_env", re)
	}
	if strings.Contains(string(r.Body), provCanary) {
		t.Fatalf("explain holds the canary: %s", r.Body)
	}
}
