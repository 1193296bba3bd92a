package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/console"
	"github.com/connhost/connhost/host/store"
)

// TestCredentialForm: the write-only form captures and rotates the
// credential; the confirmed revoke and delete act on it.
func TestCredentialForm(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("credentialed", nil)
	path := "/ui/connections/" + conn.ID
	if c := e.credential(conn.ID); c.State != "none" {
		t.Fatalf("before: %+v", c)
	}
	mustContain(t, e.get(path+"/credential"), http.StatusOK, `id="credential-state">none<`, "Capture the credential")

	redirect(t, e.post(path+"/credential", form("value.DEMO_TOKEN", "captured-0123456789")), path)
	c := e.credential(conn.ID)
	if c.State != "active" || len(c.Names) != 1 || c.Names[0] != "DEMO_TOKEN" || c.CapturedAt == "" {
		t.Fatalf("after capture: %+v", c)
	}
	mustContain(t, e.get(path), http.StatusOK, "Credential saved", `id="credential-state">active<`, `id="health-verdict">never_run<`)

	// Rotation: the same form over an active credential.
	mustContain(t, e.get(path+"/credential"), http.StatusOK, "Rotate the credential")
	redirect(t, e.post(path+"/credential", form("value.DEMO_TOKEN", "rotated-0123456789")), path)
	if c := e.credential(conn.ID); c.State != "active" || c.RotatedAt == "" {
		t.Fatalf("after rotation: %+v", c)
	}

	mustContain(t, e.get(path+"/credential/revoke"), http.StatusOK, ids("confirm-form", "confirm-button")...)
	redirect(t, e.post(path+"/credential/revoke", nil), path)
	if c := e.credential(conn.ID); c.State != "revoked" {
		t.Fatalf("after revoke: %+v", c)
	}
	mustContain(t, e.get(path), http.StatusOK, "Credential revoked.", `id="credential-state">revoked<`, `id="health-verdict">credential_unavailable<`)

	redirect(t, e.post(path+"/credential/delete", nil), path)
	if c := e.credential(conn.ID); c.State != "deleted" {
		t.Fatalf("after delete: %+v", c)
	}
	mustContain(t, e.get(path), http.StatusOK, "Credential deleted.")
	// Deleting it again: nothing is stored, the typed 404 says so.
	if p := e.post(path+"/credential/revoke", nil); p.Status == http.StatusSeeOther {
		t.Errorf("revoking a deleted credential: %s", p)
	}
}

// TestCredentialFormRefusals: each typed refusal re-renders the form
// with the error beside the field it names, every input empty, the
// submitted value nowhere, and nothing stored.
func TestCredentialFormRefusals(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("refusals", nil)
	revoked := e.demo("revoked", nil)
	if _, err := e.api.RevokeConnection(e.ctx(), revoked.ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		id     string
		form   url.Values
		status int
		field  string // "" : #form-error
		code   string
	}{
		{"missing value", conn.ID, form(), http.StatusBadRequest, "value-DEMO_TOKEN", "invalid_request"},
		{"empty value", conn.ID, form("value.DEMO_TOKEN", ""), http.StatusBadRequest, "value-DEMO_TOKEN", "invalid_request"},
		{"too short", conn.ID, form("value.DEMO_TOKEN", "sh0rt!"), http.StatusBadRequest, "value-DEMO_TOKEN", "secret_too_short"},
		{"NUL byte", conn.ID, form("value.DEMO_TOKEN", "nul-\x00-in-0123456789"), http.StatusBadRequest, "value-DEMO_TOKEN", "invalid_request"},
		{"revoked connection", revoked.ID, form("value.DEMO_TOKEN", "revoked-conn-0123456789"), http.StatusConflict, "", "connection_revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.post("/ui/connections/"+tc.id+"/credential", tc.form)
			mustContain(t, p, tc.status, ids("credential-form", "value-DEMO_TOKEN")...)
			var msg string
			if tc.field == "" {
				if m := strings.SplitN(p.Body, `id="form-error">`, 2); len(m) == 2 {
					msg = m[1]
				}
			} else {
				msg = fieldError(p, tc.field)
			}
			if !strings.HasPrefix(msg, tc.code+":") {
				t.Errorf("error (%s): %.200q, want code %s", tc.field, msg, tc.code)
			}
			if v := tc.form.Get("value.DEMO_TOKEN"); v != "" && strings.Contains(p.Body, v) {
				t.Errorf("the submitted value is on the re-rendered page")
			}
			if strings.Contains(p.Body, `id="value-DEMO_TOKEN" name="value.DEMO_TOKEN" value=`) {
				t.Errorf("the password input is filled")
			}
			if c := e.credential(tc.id); c.State != "none" {
				t.Errorf("a refused form stored %+v", c)
			}
		})
	}
}

// TestCredentialCanary: a credential typed into the form appears on no
// page of the connection, its credential, its confirmations or the
// lists, nor in the host's log.
func TestCredentialCanary(t *testing.T) {
	t.Parallel()
	const canary = "canary-console-setup-7f3a9c2e51"
	e := newSetupEnv(t)
	conn := e.demo("canary", map[string]any{"records": 2})
	path := "/ui/connections/" + conn.ID
	redirect(t, e.post(path+"/credential", form("value.DEMO_TOKEN", canary)), path)
	// A run uses it; a refused capture of it sees it too.
	loc := redirect(t, e.post(path+"/runs", nil), `/ui/runs/run_[0-9A-Z]+`)
	if r := e.waitRun(strings.TrimPrefix(loc, "/ui/runs/")); r.Status != "succeeded" {
		t.Fatalf("run %+v", r)
	}
	other := e.demo("other", nil)
	if _, err := e.api.RevokeConnection(e.ctx(), other.ID); err != nil {
		t.Fatal(err)
	}
	pages := []page{e.post("/ui/connections/"+other.ID+"/credential", form("value.DEMO_TOKEN", canary))}
	for _, p := range []string{
		"/ui/connections", "/ui/connections?health=never_run", "/ui/connections?health=healthy", path, path + "/credential",
		path + "/revoke", path + "/delete", path + "/checkpoint/reset", path + "/credential/revoke", path + "/credential/delete",
		"/ui/connections/" + other.ID, "/ui/connections/" + other.ID + "/credential", "/ui/connectors",
	} {
		pages = append(pages, e.get(p))
	}
	for _, p := range pages {
		if p.Status >= 500 {
			t.Errorf("page failed: %s", p)
		}
		if strings.Contains(p.Body, canary) {
			t.Errorf("the canary is on a page:\n%s", p.Body)
		}
		for k, vs := range p.Header {
			if strings.Contains(k+strings.Join(vs, " "), canary) {
				t.Errorf("the canary is in header %s", k)
			}
		}
	}
	if strings.Contains(e.h.Logs.String(), canary) {
		t.Errorf("the canary is in the host log")
	}
}

// TestCredentialFormAfterSessionEnds: a credential sent after the
// session expired is not stored, and the sign-in page it gets does not
// carry the value.
func TestCredentialFormAfterSessionEnds(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	conn := e.demo("expired", nil)
	csrf := e.csrf()
	e.clock.Advance(console.DefaultSessionLifetime)
	const value = "expired-session-value-0123456789"
	p := e.post("/ui/connections/"+conn.ID+"/credential", form("csrf", csrf, "value.DEMO_TOKEN", value))
	mustContain(t, p, http.StatusUnauthorized, "Sign in again")
	if strings.Contains(p.Body, value) {
		t.Errorf("the value is on the sign-in page")
	}
	if c := e.credential(conn.ID); c.State != "none" {
		t.Errorf("stored after the session ended: %+v", c)
	}
}

// TestCredentialFormShowsTheCheck: the flash after a capture says how the
// connector's check ended, an inconclusive one (here a config the
// connector refuses) included, since it is recorded nowhere else.
func TestCredentialFormShowsTheCheck(t *testing.T) {
	t.Parallel()
	e := newSetupEnv(t)
	valid := e.demo("valid", nil)
	path := "/ui/connections/" + valid.ID
	redirect(t, e.post(path+"/credential", form("value.DEMO_TOKEN", "captured-0123456789")), path)
	mustContain(t, e.get(path), http.StatusOK, "Credential saved; check: valid for demo")

	refused := e.demo("refused", nil)
	if _, err := e.h.Store.UpdateConnection(e.ctx(), refused.ID, store.ConnectionPatch{Config: json.RawMessage(`{"recrods": 5}`)}); err != nil {
		t.Fatal(err)
	}
	path = "/ui/connections/" + refused.ID
	redirect(t, e.post(path+"/credential", form("value.DEMO_TOKEN", "captured-0123456789")), path)
	mustContain(t, e.get(path), http.StatusOK, "Credential saved; its check was inconclusive (validity not recorded): invalid_config: ")
	if c := e.credential(refused.ID); c.State != "active" || c.Validity != nil {
		t.Errorf("after an inconclusive check: %+v", c)
	}
}
