package console_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/connhost/connhost/host/internal/hosttest"
)

// farSchedule never comes due in a test.
const farSchedule = "@every 720h"

// setupEnv is a signed-in env with an API client beside the browser,
// to arrange state and to check a form's effect the way a CLI sees it.
type setupEnv struct {
	*env
	api *client.Client
}

func newSetupEnv(t *testing.T) *setupEnv {
	t.Helper()
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	c, err := client.New(e.srv.URL, testToken, e.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &setupEnv{env: e, api: c}
}

func (e *setupEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// demo creates a demo connection through the API.
func (e *setupEnv) demo(label string, config map[string]any) apitypes.Connection {
	e.t.Helper()
	conn, err := e.api.CreateConnection(e.ctx(), apitypes.ConnectionCreateRequest{ConnectorKey: "demo", Label: label,
		Config: config, Schedule: farSchedule})
	if err != nil {
		e.t.Fatal(err)
	}
	return conn
}

// conn reads a connection through the API.
func (e *setupEnv) conn(id string) apitypes.Connection {
	e.t.Helper()
	c, err := e.api.GetConnection(e.ctx(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// credential reads a connection's credential metadata through the API.
func (e *setupEnv) credential(id string) apitypes.Credential {
	e.t.Helper()
	c, err := e.api.GetCredential(e.ctx(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// setToken captures DEMO_TOKEN through the API.
func (e *setupEnv) setToken(id, token string) {
	e.t.Helper()
	if _, err := e.api.SetCredential(e.ctx(), id, apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": token}}); err != nil {
		e.t.Fatal(err)
	}
}

// waitRun polls a run until it ends.
func (e *setupEnv) waitRun(id string) apitypes.Run {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.api.GetRun(e.ctx(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		switch r.Status {
		case "succeeded", "failed", "refused", "cancelled":
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s still %s", id, r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redirect requires a 303 to a path matching want (a regexp) and
// returns the path.
func redirect(t *testing.T, p page, want string) string {
	t.Helper()
	if p.Status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303: %s", p.Status, p)
	}
	if !regexp.MustCompile("^" + want + "$").MatchString(p.Location()) {
		t.Fatalf("redirect to %q, want %s", p.Location(), want)
	}
	return p.Location()
}

// fieldError returns the text of the page's field error for field, ""
// when it has none.
func fieldError(p page, field string) string {
	m := regexp.MustCompile(`<span class="field-error" id="error-` + regexp.QuoteMeta(field) + `">([^<]*)</span>`).FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return m[1]
}

// apiCode returns the code of an *client.APIError, "" for anything else.
func apiCode(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// ids are the id attributes a page must carry.
func ids(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = `id="` + n + `"`
	}
	return out
}

// form builds url.Values from pairs.
func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// noInlineCode fails when a page holds inline script, style or event
// handlers, which the CSP forbids.
func noInlineCode(t *testing.T, p page) {
	t.Helper()
	for _, bad := range []string{"<script>", " style=", " onclick=", " onsubmit=", " onload="} {
		if strings.Contains(p.Body, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
}

// labelled fails unless every input, select and textarea of a page
// (but hidden ones) has a <label for> naming its id.
func labelled(t *testing.T, p page) {
	t.Helper()
	for _, m := range regexp.MustCompile(`<(input|select|textarea)\b([^>]*)>`).FindAllStringSubmatch(p.Body, -1) {
		attrs := m[2]
		if strings.Contains(attrs, `type="hidden"`) {
			continue
		}
		id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(attrs)
		if id == nil {
			t.Errorf("<%s%s> has no id", m[1], attrs)
			continue
		}
		if !strings.Contains(p.Body, `<label for="`+id[1]+`"`) {
			t.Errorf("<%s id=%q> has no <label for>", m[1], id[1])
		}
	}
}

// TestSetupFormsRefuseCSRF: every connection and credential form sent
// without the session's CSRF token is refused 403 and changes nothing.
func TestSetupFormsRefuseCSRF(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("guarded", map[string]any{"records": 1})
	e.setToken(conn.ID, "csrf-guarded-0123456789")
	run, err := e.api.TriggerRun(e.ctx(), conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.waitRun(run.ID)

	// snapshot is what any of the forms would change.
	snapshot := func() string {
		c := e.conn(conn.ID)
		cred := e.credential(conn.ID)
		cp, err := e.api.GetCheckpoint(e.ctx(), conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		runs, err := e.api.ListRuns(e.ctx(), client.RunFilter{Connection: conn.ID})
		if err != nil {
			t.Fatal(err)
		}
		all, err := e.api.ListConnections(e.ctx(), client.ConnectionFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join([]string{c.Label, c.State, c.UpdatedAt, string(c.Config), c.Schedule, cred.State, cred.RotatedAt,
			cp.UpdatedAt, strconv.Itoa(len(runs.Items)), strconv.Itoa(len(all.Items))}, "|")
	}
	before := snapshot()
	base := "/ui/connections/" + conn.ID
	for _, path := range []string{
		"/ui/connections", base, base + "/pause", base + "/resume", base + "/runs", base + "/credential",
		base + "/revoke", base + "/delete", base + "/checkpoint/reset", base + "/credential/revoke", base + "/credential/delete",
	} {
		for _, token := range []string{"", "not-the-session-token"} {
			t.Run(path+" token="+token, func(t *testing.T) {
				f := form("csrf", token, "connector_key", "demo", "label", "forged", "config", `{"records": 9}`,
					"schedule", "@every 1h", "value.DEMO_TOKEN", "forged-value-0123456789")
				mustContain(t, e.post(path, f), http.StatusForbidden, `id="error-code">csrf_refused<`)
			})
		}
	}
	if after := snapshot(); after != before {
		t.Errorf("refused forms changed state:\n before %s\n after  %s", before, after)
	}
}

// uniqueIDs fails when two elements of a page share an id.
func uniqueIDs(t *testing.T, p page) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(p.Body, -1) {
		if seen[m[1]] {
			t.Errorf("id %q appears twice", m[1])
		}
		seen[m[1]] = true
	}
}
