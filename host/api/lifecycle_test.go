package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/google/go-cmp/cmp"
)

// TestConnectorsAreTheCatalog: the demo plugin's manifest, pinned
// checksum included.
func TestConnectorsAreTheCatalog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var list apitypes.List[apitypes.Connector]
	e.ok(http.StatusOK, "GET", "/v1/connectors", nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("connectors %+v", list)
	}
	var one apitypes.Connector
	e.ok(http.StatusOK, "GET", "/v1/connectors/demo", nil, &one)
	entry, _ := e.h.Catalog.Get("demo")
	want := apitypes.Connector{
		ConnectorKey: "demo", Version: entry.Manifest.Version, DisplayName: "Demo", Description: entry.Manifest.Description,
		Auth: apitypes.Auth{Kind: "static_secret", Required: []string{"DEMO_TOKEN"}}, EnvPassthrough: []string{"DEMO_LABEL"},
		Streams:         []apitypes.Stream{{Name: "events", KeyFields: []string{"id"}}, {Name: "env", KeyFields: []string{"name"}}},
		DefaultSchedule: "@every 1m", AutoEnroll: true, SHA256: entry.Checksum(),
	}
	if one.ConfigSchema == nil {
		t.Error("config_schema missing")
	}
	one.ConfigSchema = nil
	if diff := cmp.Diff(want, one); diff != "" {
		t.Errorf("connector (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(list.Items[0].SHA256, one.SHA256); diff != "" {
		t.Error(diff)
	}
}

// TestConnectionLifecycle walks a connection through create, list, get,
// update, pause, resume, credential capture (which enrolls it at once),
// revoke and delete, checking the enrollment the API reports at each
// step.
func TestConnectionLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})

	var c apitypes.Connection
	e.ok(http.StatusCreated, "POST", "/v1/connections", apitypes.ConnectionCreateRequest{
		ConnectorKey: "demo", Label: "first", Config: map[string]any{"records": 5}, Schedule: "@every 1h", Jitter: "5s",
	}, &c)
	if c.ID == "" || c.State != "active" || c.Schedule != "@every 1h" || c.Jitter != "5s" || string(c.Config) != `{"records":5}` {
		t.Fatalf("created %+v", c)
	}
	if c.Enrollment == nil || c.Enrollment.Outcome != "skipped_env" || c.NextRun != "" {
		t.Fatalf("without a credential: enrollment %+v next %q", c.Enrollment, c.NextRun)
	}

	// A captured credential enrolls the connection without a restart.
	cred := e.setToken(c.ID, "tok-lifecycle")
	if !cred.Present || cred.State != "active" || !slices.Equal(cred.Names, []string{"DEMO_TOKEN"}) || cred.CapturedAt == "" {
		t.Fatalf("credential %+v", cred)
	}
	var got apitypes.Connection
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &got)
	if got.Enrollment == nil || got.Enrollment.Outcome != "enrolled" || got.NextRun == "" {
		t.Fatalf("after capture: enrollment %+v next %q", got.Enrollment, got.NextRun)
	}

	// Update: label and schedule; jitter kept.
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{
		Label: ptr("renamed"), Schedule: ptr("*/5 * * * *"), Config: ptr(map[string]any{"records": 7}),
	}, &got)
	if got.Label != "renamed" || got.Schedule != "*/5 * * * *" || got.Jitter != "5s" || string(got.Config) != `{"records":7}` {
		t.Fatalf("updated %+v", got)
	}
	// Removing the schedule falls back to the connector's default.
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Schedule: ptr("")}, &got)
	if got.Schedule != "" || got.Jitter != "" || got.Enrollment == nil || got.Enrollment.Outcome != "enrolled" {
		t.Fatalf("schedule removed: %+v enrollment %+v", got, got.Enrollment)
	}

	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/pause", nil, &got)
	if got.State != "paused" || got.Enrollment == nil || got.Enrollment.Outcome != "skipped_paused" || got.NextRun != "" {
		t.Fatalf("paused %+v enrollment %+v", got, got.Enrollment)
	}
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/resume", "{}", &got)
	if got.State != "active" || got.Enrollment.Outcome != "enrolled" {
		t.Fatalf("resumed %+v", got)
	}

	other := e.createDemo(nil, "")
	var list apitypes.List[apitypes.Connection]
	e.ok(http.StatusOK, "GET", "/v1/connections?connector=demo", nil, &list)
	if len(list.Items) != 2 || list.Items[0].ID != c.ID || list.Items[1].ID != other.ID {
		t.Fatalf("list %+v", list)
	}
	if list.Items[0].NextRun == "" || list.Items[0].Enrollment == nil || list.Items[1].NextRun != "" {
		t.Errorf("list next runs %q %q, enrollment %+v", list.Items[0].NextRun, list.Items[1].NextRun, list.Items[0].Enrollment)
	}
	e.ok(http.StatusOK, "POST", "/v1/connections/"+other.ID+"/revoke", nil, &got)
	if got.State != "revoked" || got.Enrollment.Outcome != "skipped_revoked" {
		t.Fatalf("revoked %+v", got)
	}
	e.ok(http.StatusOK, "GET", "/v1/connections?state=revoked", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != other.ID {
		t.Fatalf("revoked list %+v", list)
	}

	var enr apitypes.Enrollment
	e.ok(http.StatusOK, "GET", "/v1/enrollment", nil, &enr)
	outcomes := map[string]string{}
	for _, en := range enr.Connections {
		outcomes[en.ConnectionID] = en.Outcome
	}
	if diff := cmp.Diff(map[string]string{c.ID: "enrolled", other.ID: "skipped_revoked"}, outcomes); diff != "" {
		t.Errorf("enrollment (-want +got):\n%s", diff)
	}

	var del apitypes.ConnectionDeleted
	e.ok(http.StatusOK, "DELETE", "/v1/connections/"+c.ID, nil, &del)
	if del.ID != c.ID || !del.Credential {
		t.Errorf("deleted %+v", del)
	}
	if r := e.call("GET", "/v1/connections/"+c.ID, nil); r.Status != http.StatusNotFound {
		t.Errorf("after delete: %s", r)
	}

	var audit apitypes.List[apitypes.AuditEvent]
	e.ok(http.StatusOK, "GET", "/v1/audit?target="+c.ID+"&limit=100", nil, &audit)
	var ops []string
	for _, ev := range audit.Items {
		ops = append(ops, ev.Operation)
	}
	for _, want := range []string{"connection.create", "credential.capture", "connection.update", "connection.pause", "connection.resume", "connection.delete"} {
		if !slices.Contains(ops, want) {
			t.Errorf("audit lacks %s: %v", want, ops)
		}
	}
	e.ok(http.StatusOK, "GET", "/v1/audit?operation=connection.delete", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].TargetID != c.ID {
		t.Errorf("audit by operation %+v", audit.Items)
	}
}

// TestCredentialIsWriteOnly: a captured value never comes back — not in
// the capture's answer, the credential read, any other read, the live
// events, metrics, nor the log — while the metadata tells the lifecycle:
// capture, rotate, revoke (a trigger is then refused
// static_secret_credential_unavailable), delete (a tombstone).
func TestCredentialIsWriteOnly(t *testing.T) {
	t.Parallel()
	const canary, canary2 = "CANARY-write-only-51d0e8", "CANARY-rotated-a8c2f1"
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(map[string]any{"records": 4, "echo_env": []string{"DEMO_TOKEN"}}, "")

	var bodies []string
	keep := func(r response) response { bodies = append(bodies, string(r.Body)); return r }

	cred := e.setToken(c.ID, canary)
	if cred.Validity == nil || !cred.Validity.Valid {
		t.Errorf("validity after capture %+v", cred.Validity)
	}
	keep(e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/credential", nil, &cred))
	if !cred.Present || cred.State != "active" || cred.RotatedAt != "" || cred.KeyID == 0 {
		t.Errorf("read %+v", cred)
	}

	var run apitypes.Run
	keep(e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run))
	run = e.waitRun(run.ID)
	if run.Status != "succeeded" || run.Records != 5 {
		t.Fatalf("run %+v", run)
	}
	for _, p := range []string{"/v1/connections", "/v1/connections/" + c.ID, "/v1/connections/" + c.ID + "/records?limit=100",
		"/v1/runs", "/v1/runs/" + run.ID, "/v1/runs/" + run.ID + "/events", "/v1/audit?limit=1000", "/v1/enrollment",
		"/v1/keyset", "/metrics", "/v1/connectors"} {
		keep(e.ok(http.StatusOK, "GET", p, nil, nil))
	}

	// Rotate: a second PUT on an active credential.
	keep(e.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": canary2}}, &cred))
	if cred.State != "active" || cred.RotatedAt == "" {
		t.Errorf("rotated %+v", cred)
	}
	keep(e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/credential/revoke", nil, &cred))
	if cred.Present || cred.State != "revoked" || cred.RevokedAt == "" {
		t.Errorf("revoked %+v", cred)
	}
	// A manual run is queued (202), and the launch seam refuses it before
	// any child starts: the run row says why.
	var queued apitypes.Run
	keep(e.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &queued))
	if refused := e.waitRun(queued.ID); refused.Status != "refused" || refused.FailureCode != "static_secret_credential_unavailable" {
		t.Errorf("run with a revoked credential: %+v", refused)
	}
	keep(e.ok(http.StatusOK, "GET", "/v1/runs/"+queued.ID, nil, nil))
	keep(e.ok(http.StatusOK, "DELETE", "/v1/connections/"+c.ID+"/credential", nil, &cred))
	if cred.Present || cred.State != "deleted" || cred.DeletedAt == "" || !slices.Equal(cred.Names, []string{"DEMO_TOKEN"}) {
		t.Errorf("deleted %+v", cred)
	}
	fresh := e.createDemo(nil, "")
	keep(e.ok(http.StatusOK, "GET", "/v1/connections/"+fresh.ID+"/credential", nil, &cred))
	if diff := cmp.Diff(apitypes.Credential{State: "none", Names: []string{}}, cred); diff != "" {
		t.Errorf("never stored (-want +got):\n%s", diff)
	}

	for _, b := range bodies {
		for _, secret := range []string{canary, canary2} {
			if strings.Contains(b, secret) {
				t.Errorf("a response holds the credential value: %.200s", b)
			}
		}
	}
	if logs := e.h.Logs.String(); strings.Contains(logs, canary) || strings.Contains(logs, canary2) {
		t.Error("the log holds the credential value")
	}
}

// TestPauseAndResumeAreIdempotent: pausing a paused connection and
// resuming an active one answer 200 with the connection unchanged,
// audited succeeded with unchanged=true; resuming a revoked connection is
// a 409 conflict, audited failed with failure_code conflict.
func TestPauseAndResumeAreIdempotent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(nil, "@every 1h")
	var first, again apitypes.Connection
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/resume", nil, &again)
	if again.State != "active" || again.UpdatedAt != c.UpdatedAt {
		t.Errorf("resume of an active connection: %+v", again)
	}
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/pause", nil, &first)
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/pause", nil, &again)
	if first.State != "paused" || again.State != "paused" || again.UpdatedAt != first.UpdatedAt {
		t.Errorf("pause twice: %+v then %+v", first, again)
	}
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/revoke", nil, nil)
	r := e.call("POST", "/v1/connections/"+c.ID+"/resume", nil)
	if b := r.ErrorBody(t); r.Status != http.StatusConflict || b.Code != "conflict" || !strings.Contains(b.Message, c.ID) {
		t.Errorf("resume of a revoked connection: %s", r)
	}

	var audit apitypes.List[apitypes.AuditEvent]
	e.ok(http.StatusOK, "GET", "/v1/audit?target="+c.ID+"&limit=100", nil, &audit)
	var got []string
	for _, ev := range audit.Items {
		if ev.Operation == "connection.pause" || ev.Operation == "connection.resume" {
			got = append(got, fmt.Sprintf("%s %s from=%s unchanged=%s code=%s", ev.Operation, ev.Outcome,
				ev.Detail["from"], ev.Detail["unchanged"], ev.Detail["failure_code"]))
		}
	}
	slices.Sort(got)
	want := []string{
		"connection.pause succeeded from=active unchanged= code=",
		"connection.pause succeeded from=paused unchanged=true code=",
		"connection.resume failed from=revoked unchanged= code=conflict",
		"connection.resume succeeded from=active unchanged=true code=",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("audit (-want +got):\n%s", d)
	}
}

// TestCredentialSetOnARevokedConnectionIsRefused: refused typed
// (connection_revoked, 409) before any plugin starts, audited refused;
// nothing is stored.
func TestCredentialSetOnARevokedConnectionIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(nil, "")
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/revoke", nil, nil)
	launches := e.h.Launcher.Launches()
	r := e.call("PUT", "/v1/connections/"+c.ID+"/credential", apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "revoked-token-1"}})
	if b := r.ErrorBody(t); r.Status != http.StatusConflict || b.Code != "connection_revoked" {
		t.Fatalf("credential set on a revoked connection: %s", r)
	}
	if n := e.h.Launcher.Launches(); n != launches {
		t.Errorf("%d plugin launches for a refused credential", n-launches)
	}
	var cred apitypes.Credential
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/credential", nil, &cred)
	if cred.Present || cred.State != "none" {
		t.Errorf("credential after the refusal %+v", cred)
	}
	var audit apitypes.List[apitypes.AuditEvent]
	e.ok(http.StatusOK, "GET", "/v1/audit?target="+c.ID+"&operation=credential.set", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Outcome != "refused" || audit.Items[0].Detail["failure_code"] != "connection_revoked" {
		t.Errorf("audit %+v", audit.Items)
	}
}

// TestKnownFiltersWithNothingToListAreEmpty: a filter naming a thing that
// exists but has nothing to list is an empty 200 (the unknown ones are
// 404s, in TestBadInputIsTypedAndChangesNothing).
func TestKnownFiltersWithNothingToListAreEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(nil, "")
	for _, path := range []string{
		"/v1/connections/" + c.ID + "/records?stream=events",
		"/v1/runs?connection=" + c.ID,
		"/v1/connections?connector=demo&state=paused",
	} {
		var list apitypes.List[json.RawMessage]
		e.ok(http.StatusOK, "GET", path, nil, &list)
		if len(list.Items) != 0 {
			t.Errorf("%s: %d items", path, len(list.Items))
		}
	}
}

// TestScheduleInForce: a connection shows the schedule it runs by and
// where that comes from; jitter on the connector's default schedule is
// accepted and spreads it.
func TestScheduleInForce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var c apitypes.Connection
	e.ok(http.StatusCreated, "POST", "/v1/connections", apitypes.ConnectionCreateRequest{ConnectorKey: "demo", Label: "d", Jitter: "10s"}, &c)
	if c.Schedule != "" || c.ScheduleInForce != "@every 1m" || c.ScheduleSource != "connector_default" || c.Jitter != "10s" {
		t.Fatalf("on the default schedule: %+v", c)
	}
	e.setToken(c.ID, "tok-schedule-in-force")
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &c)
	if c.ScheduleInForce != "@every 1m" || c.ScheduleSource != "connector_default" || c.NextRun == "" {
		t.Fatalf("get on the default schedule: %+v", c)
	}
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Jitter: ptr("20s")}, &c)
	if c.Schedule != "" || c.Jitter != "20s" || c.ScheduleSource != "connector_default" {
		t.Fatalf("jitter patched on the default schedule: %+v", c)
	}
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Schedule: ptr("@every 1h")}, &c)
	if c.Schedule != "@every 1h" || c.ScheduleInForce != "@every 1h" || c.ScheduleSource != "own" || c.Jitter != "20s" {
		t.Fatalf("own schedule: %+v", c)
	}
	var list apitypes.List[apitypes.Connection]
	e.ok(http.StatusOK, "GET", "/v1/connections", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ScheduleSource != "own" || list.Items[0].ScheduleInForce != "@every 1h" {
		t.Fatalf("list %+v", list.Items)
	}
	// Back on the default: the jitter goes unless given again.
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Schedule: ptr("")}, &c)
	if c.Schedule != "" || c.Jitter != "" || c.ScheduleSource != "connector_default" {
		t.Fatalf("own schedule removed: %+v", c)
	}
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, apitypes.ConnectionUpdateRequest{Schedule: ptr(""), Jitter: ptr("5s")}, &c)
	if c.Schedule != "" || c.Jitter != "5s" {
		t.Fatalf("own schedule removed, jitter given: %+v", c)
	}
	// Paused keeps it (resume puts the connection back on it); revoked
	// has none.
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/pause", nil, &c)
	if c.ScheduleSource != "connector_default" || c.ScheduleInForce != "@every 1m" {
		t.Errorf("paused: %+v", c)
	}
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/revoke", nil, &c)
	if c.ScheduleSource != "none" || c.ScheduleInForce != "" {
		t.Errorf("revoked: %+v", c)
	}
}

// TestRunsOfADeletedConnectionStillList: runs outlive their connection,
// so filtering by a deleted connection's id lists them (the 404 is for
// an id that names nothing at all).
func TestRunsOfADeletedConnectionStillList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	c := e.createDemo(nil, "")
	e.ok(http.StatusOK, "POST", "/v1/connections/"+c.ID+"/revoke", nil, nil)
	refused := e.call("POST", "/v1/connections/"+c.ID+"/runs", nil).ErrorBody(t).RunID
	e.ok(http.StatusOK, "DELETE", "/v1/connections/"+c.ID, nil, nil)
	var list apitypes.List[apitypes.Run]
	e.ok(http.StatusOK, "GET", "/v1/runs?connection="+c.ID, nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != refused {
		t.Errorf("runs of the deleted connection %+v, want %s", list.Items, refused)
	}
}

// TestConfigNumbersAreKeptExactly: a connection's config is stored and
// shown with its numbers as written: an int64 beyond 2^53 is not rounded
// through a float64, on the way in (create, update) or out.
func TestConfigNumbersAreKeptExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	var c apitypes.Connection
	e.ok(http.StatusCreated, "POST", "/v1/connections",
		`{"connector_key":"demo","label":"big","config":{"records":1,"fail_at":9007199254740993}}`, &c)
	if want := `{"fail_at":9007199254740993,"records":1}`; string(c.Config) != want {
		t.Errorf("created config %s, want %s", c.Config, want)
	}
	var got apitypes.Connection
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+c.ID, `{"config":{"fail_at":9007199254740995}}`, &got)
	e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &got)
	if want := `{"fail_at":9007199254740995}`; string(got.Config) != want {
		t.Errorf("updated config %s, want %s", got.Config, want)
	}
	var l apitypes.List[apitypes.Connection]
	e.ok(http.StatusOK, "GET", "/v1/connections", nil, &l)
	if len(l.Items) != 1 || string(l.Items[0].Config) != `{"fail_at":9007199254740995}` {
		t.Errorf("listed %+v", l.Items)
	}
}
