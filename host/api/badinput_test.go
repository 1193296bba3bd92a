package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/google/go-cmp/cmp"
)

// badCanary is a credential value sent in bad requests: it must never come
// back in an error.
const (
	badCanary = "CANARY-bad-input-7f3a9c"
	// badCanaryName is a secret shaped like a variable name.
	badCanaryName = "CANARY_pasted_token_91b2e4"
)

// TestBadInputIsTypedAndChangesNothing sends every kind of bad request the
// API can get and checks each answer's status, code and field, and that
// the stored state is untouched afterwards: every table of the SQLite file
// is compared before and after. Two kinds of rows are history rather than
// state and are allowed to grow: audit events of failed or refused
// attempts (never a succeeded one), and — for a trigger refused on a
// revoked connection — the one refused run row the operator is meant to
// see.
func TestBadInputIsTypedAndChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{})
	live := e.createDemo(map[string]any{"records": 3}, "@every 1h")
	e.setToken(live.ID, "the-live-token")
	revoked := e.createDemo(nil, "")
	e.ok(http.StatusOK, "POST", "/v1/connections/"+revoked.ID+"/revoke", nil, nil)
	noCred := e.createDemo(nil, "")
	// A finished run to cancel: a trigger refused on the revoked
	// connection.
	refusedRun := e.call("POST", "/v1/connections/"+revoked.ID+"/runs", nil).ErrorBody(t).RunID
	if refusedRun == "" {
		t.Fatal("setup: no refused run id")
	}

	// A cursor this host issued, for the audit list.
	var auditPage apitypes.List[apitypes.AuditEvent]
	e.ok(http.StatusOK, "GET", "/v1/audit?limit=1", nil, &auditPage)
	if auditPage.Next == "" {
		t.Fatal("setup: no audit cursor")
	}

	big := `{"connector_key":"demo","label":"` + strings.Repeat("x", 1<<20) + `"}`
	bigCred := `{"values":{"DEMO_TOKEN":"` + badCanary + strings.Repeat("y", 300<<10) + `"}}`
	cases := []struct {
		name         string
		method, path string
		body         any
		auth         string // "" = the test token; "-" = none
		status       int
		code, field  string
		says         string // the message holds this
		refusedRun   bool   // a refused run row is the one allowed change
	}{
		{name: "get unknown connection", method: "GET", path: "/v1/connections/conn_nope", status: 404, code: "connection_not_found", says: `"conn_nope"`},
		{name: "patch unknown connection", method: "PATCH", path: "/v1/connections/conn_nope", body: `{"label":"x"}`, status: 404, code: "connection_not_found"},
		{name: "delete unknown connection", method: "DELETE", path: "/v1/connections/conn_nope", status: 404, code: "connection_not_found", says: `"conn_nope"`},
		{name: "pause unknown connection", method: "POST", path: "/v1/connections/conn_nope/pause", status: 404, code: "connection_not_found"},
		{name: "credential of unknown connection", method: "PUT", path: "/v1/connections/conn_nope/credential",
			body: `{"values":{"DEMO_TOKEN":"` + badCanary + `"}}`, status: 404, code: "connection_not_found"},
		{name: "credential read of unknown connection", method: "GET", path: "/v1/connections/conn_nope/credential", status: 404, code: "connection_not_found"},
		{name: "trigger unknown connection", method: "POST", path: "/v1/connections/conn_nope/runs", status: 404, code: "connection_not_found"},
		{name: "records of unknown connection", method: "GET", path: "/v1/connections/conn_nope/records", status: 404, code: "connection_not_found"},
		{name: "unknown run", method: "GET", path: "/v1/runs/run_nope", status: 404, code: "run_not_found", says: `"run_nope"`},
		{name: "events of unknown run", method: "GET", path: "/v1/runs/run_nope/events", status: 404, code: "run_not_found", says: `"run_nope"`},
		{name: "cancel unknown run", method: "POST", path: "/v1/runs/run_nope/cancel", status: 404, code: "run_not_found", says: `"run_nope"`},
		{name: "cancel ended run", method: "POST", path: "/v1/runs/" + refusedRun + "/cancel", status: 409, code: "conflict"},
		{name: "unknown connector", method: "GET", path: "/v1/connectors/nope", status: 404, code: "connector_not_found", says: `"nope"`},

		{name: "create with invalid schedule", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","schedule":"every now and then"}`, status: 400, code: "invalid_request", field: "schedule"},
		{name: "create with cron of 7 fields", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","schedule":"* * * * * * *"}`, status: 400, code: "invalid_request", field: "schedule"},
		{name: "create with config not an object", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","config":"records=3"}`, status: 400, code: "invalid_request", field: "config"},
		{name: "create with config array", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","config":[1]}`, status: 400, code: "invalid_request", field: "config"},
		{name: "create with bad jitter", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","schedule":"@every 1h","jitter":"soon"}`, status: 400, code: "invalid_request", field: "jitter"},
		{name: "create with jitter beyond the default schedule's period", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":"c","jitter":"2m"}`, status: 400, code: "invalid_request", field: "jitter", says: "at most the schedule's period"},
		// A config the connector's schema refuses is not stored: it would
		// fail every scheduled run.
		{name: "create with a misspelled config field", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":"c","config":{"recrods":5}}`, status: 400, code: "invalid_config", field: "/config/recrods"},
		{name: "create with a negative count", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":"c","config":{"records":-1}}`, status: 400, code: "invalid_config", field: "/config/records"},
		{name: "create with a count as a string", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":"c","config":{"records":"5"}}`, status: 400, code: "invalid_config", field: "/config/records"},
		{name: "create with a count of 1e30", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":"c","config":{"records":1e30}}`, status: 400, code: "invalid_config", field: "/config/records"},
		{name: "update to an invalid config", method: "PATCH", path: "/v1/connections/" + live.ID,
			body: `{"config":{"records":-1}}`, status: 400, code: "invalid_config", field: "/config/records", says: "minimum"},
		{name: "create with jitter beyond the period", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":"j","schedule":"@every 30s","jitter":"31s"}`, status: 400, code: "invalid_request",
			field: "jitter", says: "at most the schedule's period"},
		{name: "update jitter beyond the period", method: "PATCH", path: "/v1/connections/" + live.ID,
			body: `{"jitter":"2h"}`, status: 400, code: "invalid_request", field: "jitter", says: "at most the schedule's period"},
		{name: "create with unknown connector", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"nope"}`, status: 400, code: "connector_not_found", field: "connector_key", says: `"nope"`},
		{name: "create without connector", method: "POST", path: "/v1/connections",
			body: `{"label":"x"}`, status: 400, code: "invalid_request", field: "connector_key"},
		{name: "create with invalid JSON", method: "POST", path: "/v1/connections",
			body: `{"connector_key":`, status: 400, code: "invalid_request"},
		{name: "create with syntax error", method: "POST", path: "/v1/connections",
			body: `{"connector_key" "demo"}`, status: 400, code: "invalid_request"},
		{name: "create with unknown field", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","bogus":1}`, status: 400, code: "invalid_request", field: "bogus"},
		{name: "create with trailing data", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo"} {"connector_key":"demo"}`, status: 400, code: "invalid_request"},
		{name: "create with empty body", method: "POST", path: "/v1/connections", status: 400, code: "invalid_request"},
		{name: "create with array body", method: "POST", path: "/v1/connections", body: `[]`, status: 400, code: "invalid_request"},
		{name: "create with label of wrong type", method: "POST", path: "/v1/connections",
			body: `{"connector_key":"demo","label":7}`, status: 400, code: "invalid_request", field: "label"},
		{name: "create oversize", method: "POST", path: "/v1/connections", body: big, status: 413, code: "payload_too_large"},

		{name: "patch invalid schedule", method: "PATCH", path: "/v1/connections/" + live.ID,
			body: `{"schedule":"@every banana"}`, status: 400, code: "invalid_request", field: "schedule"},
		{name: "patch config null", method: "PATCH", path: "/v1/connections/" + live.ID,
			body: `{"config":"x"}`, status: 400, code: "invalid_request", field: "config"},
		{name: "patch unknown field", method: "PATCH", path: "/v1/connections/" + live.ID,
			body: `{"state":"paused"}`, status: 400, code: "invalid_request", field: "state"},
		{name: "patch oversize", method: "PATCH", path: "/v1/connections/" + live.ID, body: big, status: 413, code: "payload_too_large"},

		{name: "credential with unknown name", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"NOT_DEMO":"` + badCanary + `"}}`, status: 400, code: "invalid_request", field: "values", says: "value 1"},
		// A token pasted as a NAME: reported by its position, never echoed
		// nor stored (audit included).
		{name: "a token pasted as a credential name", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":"ok-value-1234","` + badCanaryName + `":"x"}}`, status: 400, code: "invalid_request",
			field: "values", says: "value 2: its name is not one this connector declares"},
		{name: "a token pasted as a malformed name", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"` + badCanary + ` and more":"x"}}`, status: 400, code: "invalid_request",
			field: "values", says: "value 1: its name is not an environment variable name"},
		{name: "credential value not a string", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":12345}}`, status: 400, code: "invalid_request", field: "values"},
		{name: "credential without values", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{}}`, status: 400, code: "invalid_request", field: "values"},
		{name: "credential empty value", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":""}}`, status: 400, code: "invalid_request", field: "values.DEMO_TOKEN"},
		// Seven bytes: refused, typed, naming the value's NAME only.
		{name: "credential value too short", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":"` + badCanary[:7] + `"}}`, status: 400, code: "secret_too_short", field: "values.DEMO_TOKEN",
			says: "shorter than 8 bytes"},
		{name: "credential broken JSON", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":"` + badCanary, status: 400, code: "invalid_request"},
		{name: "credential unquoted value", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":` + badCanary + `}}`, status: 400, code: "invalid_request"},
		{name: "credential oversize", method: "PUT", path: "/v1/connections/" + live.ID + "/credential",
			body: bigCred, status: 413, code: "payload_too_large"},
		{name: "credential of a revoked connection", method: "PUT", path: "/v1/connections/" + revoked.ID + "/credential",
			body: `{"values":{"DEMO_TOKEN":"` + badCanary + `"}}`, status: 409, code: "connection_revoked", says: "is revoked"},
		{name: "revoke never stored credential", method: "POST", path: "/v1/connections/" + noCred.ID + "/credential/revoke",
			status: 404, code: "credential_not_found", says: noCred.ID},

		{name: "resume a revoked connection", method: "POST", path: "/v1/connections/" + revoked.ID + "/resume", status: 409, code: "conflict",
			says: "from revoked to active"},
		{name: "pause a revoked connection", method: "POST", path: "/v1/connections/" + revoked.ID + "/pause", status: 409, code: "conflict"},
		{name: "action with a body", method: "POST", path: "/v1/connections/" + live.ID + "/pause", body: `{"now":true}`,
			status: 400, code: "invalid_request", field: "now"},

		{name: "runs with bad status", method: "GET", path: "/v1/runs?status=done", status: 400, code: "invalid_request", field: "status"},
		{name: "runs with bad trigger", method: "GET", path: "/v1/runs?trigger=cron", status: 400, code: "invalid_request", field: "trigger",
			says: "manual, scheduled, retry"},
		{name: "runs with bad limit", method: "GET", path: "/v1/runs?limit=-3", status: 400, code: "invalid_request", field: "limit"},
		{name: "runs with unknown parameter", method: "GET", path: "/v1/runs?conection=x", status: 400, code: "invalid_request", field: "conection"},
		{name: "connections with bad state", method: "GET", path: "/v1/connections?state=gone", status: 400, code: "invalid_request", field: "state"},
		{name: "connections with bad limit", method: "GET", path: "/v1/connections?limit=0", status: 400, code: "invalid_request", field: "limit"},
		{name: "runs with bad cursor", method: "GET", path: "/v1/runs?cursor=x", status: 400, code: "invalid_cursor", field: "cursor"},
		{name: "connections with bad cursor", method: "GET", path: "/v1/connections?cursor=not-a-cursor", status: 400, code: "invalid_cursor", field: "cursor"},
		{name: "runs with the audit list's cursor", method: "GET", path: "/v1/runs?cursor=" + auditPage.Next, status: 400,
			code: "invalid_cursor", field: "cursor", says: "another list"},
		{name: "records with the audit list's cursor", method: "GET", path: "/v1/connections/" + live.ID + "/records?cursor=" + auditPage.Next,
			status: 400, code: "invalid_cursor", field: "cursor", says: "another list"},

		{name: "records of an unknown stream", method: "GET", path: "/v1/connections/" + live.ID + "/records?stream=nope",
			status: 404, code: "not_found", field: "stream", says: `stream "nope" is not a stream of connector demo`},
		{name: "connections of an unknown connector", method: "GET", path: "/v1/connections?connector=nope",
			status: 404, code: "connector_not_found", field: "connector", says: `connector "nope"`},
		{name: "runs of an unknown connection", method: "GET", path: "/v1/runs?connection=conn_nope",
			status: 404, code: "connection_not_found", field: "connection", says: `connection "conn_nope"`},
		{name: "runs of an unknown host", method: "GET", path: "/v1/runs?host=host_nope",
			status: 404, code: "not_found", field: "host", says: `host "host_nope"`},

		{name: "wrong method", method: "PUT", path: "/v1/connections/" + live.ID + "/runs", status: 405, code: "method_not_allowed"},
		{name: "unknown route", method: "GET", path: "/v1/connection", status: 404, code: "not_found"},
		{name: "missing token", method: "POST", path: "/v1/connections/" + live.ID + "/runs", auth: "-", status: 401, code: "unauthorized"},
		{name: "wrong token", method: "DELETE", path: "/v1/connections/" + live.ID, auth: "Bearer x", status: 401, code: "unauthorized"},

		{name: "trigger on a revoked connection", method: "POST", path: "/v1/connections/" + revoked.ID + "/runs",
			status: 409, code: "connection_revoked", refusedRun: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.dump()
			auth := "Bearer " + testToken
			switch c.auth {
			case "-":
				auth = ""
			case "":
			default:
				auth = c.auth
			}
			r := e.callToken(c.method, c.path, c.body, auth)
			if r.Status != c.status {
				t.Fatalf("got %.300s, want status %d", r, c.status)
			}
			got := r.ErrorBody(t)
			if got.Code != c.code || got.Field != c.field {
				t.Errorf("got code %q field %q (%s), want code %q field %q", got.Code, got.Field, got.Message, c.code, c.field)
			}
			if got.Message == "" {
				t.Error("empty message")
			}
			if !strings.Contains(got.Message, c.says) {
				t.Errorf("message %q does not say %q", got.Message, c.says)
			}
			for _, secret := range []string{badCanary[:7], badCanaryName} {
				if strings.Contains(string(r.Body), secret) {
					t.Errorf("the secret came back: %s", r.Body)
				}
			}
			after := e.dump()
			for _, rows := range after {
				for _, row := range rows {
					if strings.Contains(row, badCanary[:7]) || strings.Contains(row, badCanaryName) {
						t.Errorf("the secret was stored: %s", row)
					}
				}
			}
			checkUnchanged(t, before, after, c.refusedRun)
			if c.refusedRun {
				if got.RunID == "" || !strings.Contains(got.Message, got.RunID) {
					t.Errorf("refusal without its run id: %+v", got)
				}
				var run apitypes.Run
				e.ok(http.StatusOK, "GET", "/v1/runs/"+got.RunID, nil, &run)
				if run.Status != "refused" || run.FailureCode != c.code {
					t.Errorf("refused run %+v", run)
				}
			}
		})
	}
	if logs := e.h.Logs.String(); strings.Contains(logs, badCanary) || strings.Contains(logs, badCanaryName) {
		t.Error("a secret from a bad request reached the log")
	}
}

// checkUnchanged compares two dumps; audit rows may grow by failed or
// refused events only, and runs by one refused row when allowed.
func checkUnchanged(t *testing.T, before, after map[string][]string, refusedRun bool) {
	t.Helper()
	for table := range union(before, after) {
		b, a := before[table], after[table]
		switch table {
		case "audit_events":
			for _, row := range added(b, a) {
				if strings.Contains(row, "outcome=succeeded") {
					t.Errorf("a succeeded audit event was added: %s", row)
				}
			}
			continue
		case "runs":
			if refusedRun {
				add := added(b, a)
				if len(add) != 1 || !strings.Contains(add[0], "status=refused") {
					t.Errorf("runs added %q, want one refused run", add)
				}
				if len(a) != len(b)+1 {
					t.Errorf("runs went from %d to %d rows", len(b), len(a))
				}
				continue
			}
		}
		if diff := cmp.Diff(b, a); diff != "" {
			t.Errorf("table %s changed (-before +after):\n%s", table, diff)
		}
	}
}

func union(a, b map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// added returns the rows of after that are not in before.
func added(before, after []string) []string {
	seen := map[string]int{}
	for _, r := range before {
		seen[r]++
	}
	var out []string
	for _, r := range after {
		if seen[r] > 0 {
			seen[r]--
			continue
		}
		out = append(out, r)
	}
	return out
}
