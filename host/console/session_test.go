package console_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/console"
	"github.com/connhost/connhost/host/internal/hosttest"
)

func TestSignInLink(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	code, exp := e.con.IssueSignIn()
	if want := e.clock.Now().Add(console.DefaultSignInTTL); !exp.Equal(want) {
		t.Errorf("expires %v, want %v", exp, want)
	}
	p := e.get("/ui/signin?code=" + url.QueryEscape(code) + "&next=" + url.QueryEscape("/ui/runs"))
	if p.Status != http.StatusSeeOther || p.Location() != "/ui/runs" {
		t.Fatalf("first use: %s %q", p, p.Location())
	}
	ck := p.Header.Get("Set-Cookie")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.srv.URL, "http://"))
	for _, want := range []string{"connhost_session_" + port + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("Set-Cookie %q lacks %q", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("Set-Cookie %q is Secure without TLS", ck)
	}
	mustContain(t, e.get("/ui/connectors"), http.StatusOK, "Sign out")

	// A second use, in another browser, is refused.
	other := e.newBrowser()
	p = e.do(other, http.MethodGet, "/ui/signin?code="+url.QueryEscape(code), nil)
	mustContain(t, p, http.StatusUnauthorized, "expired or was already used")
	if p.Header.Get("Set-Cookie") != "" {
		t.Errorf("a refused link set a cookie")
	}
}

func TestSignInLinkExpires(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	code, _ := e.con.IssueSignIn()
	e.clock.Advance(console.DefaultSignInTTL)
	p := e.get("/ui/signin?code=" + url.QueryEscape(code))
	mustContain(t, p, http.StatusUnauthorized, "expired or was already used")
}

func TestSignInWithToken(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	tests := []struct {
		name   string
		token  string
		status int
		where  string
	}{
		{"wrong token", "not-the-token", http.StatusUnauthorized, ""},
		{"empty token", "", http.StatusUnauthorized, ""},
		{"operator token", testToken, http.StatusSeeOther, "/ui/audit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.do(e.browser, http.MethodPost, "/ui/signin", url.Values{"token": {tt.token}, "next": {"/ui/audit"}})
			if p.Status != tt.status || p.Location() != tt.where {
				t.Fatalf("got %s %q, want %d %q", p, p.Location(), tt.status, tt.where)
			}
			if strings.Contains(p.Body, testToken) {
				t.Errorf("the page repeats the token")
			}
		})
	}
}

func TestSignInNextStaysOnConsole(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	tests := []struct{ next, want string }{
		{"/ui/runs?status=failed", "/ui/runs?status=failed"},
		{"http://127.0.0.1:7480/ui/audit?cursor=x", "/ui/audit?cursor=x"}, // a Referer
		{"https://evil.example/ui/", "/ui/"},
		{"//evil.example/ui/", "/ui/"},
		{"/v1/connections", "/ui/"},
		{"/ui/signin?code=x", "/ui/"},
		{`/ui\evil`, "/ui/"},
		{"/ui/../../evil", "/ui/"},
		{"/ui/./runs", "/ui/"},
		{"javascript:alert(1)", "/ui/"},
		{"", "/ui/"},
	}
	for _, tt := range tests {
		t.Run(tt.next, func(t *testing.T) {
			code, _ := e.con.IssueSignIn()
			p := e.do(e.newBrowser(), http.MethodGet, "/ui/signin?code="+url.QueryEscape(code)+"&next="+url.QueryEscape(tt.next), nil)
			if p.Status != http.StatusSeeOther || p.Location() != tt.want {
				t.Fatalf("next %q: %s %q, want %q", tt.next, p, p.Location(), tt.want)
			}
		})
	}
}

func TestSessionRequired(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	p := e.get("/ui/connections?connector=demo")
	if p.Status != http.StatusSeeOther || p.Location() != "/ui/signin?next="+url.QueryEscape("/ui/connections?connector=demo") {
		t.Fatalf("page without a session: %s %q", p, p.Location())
	}
	p = e.do(e.browser, http.MethodPost, "/ui/signout", url.Values{"csrf": {"x"}})
	mustContain(t, p, http.StatusUnauthorized, "Your session has ended")
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	csrf := e.csrf()
	e.clock.Advance(console.DefaultSessionLifetime)
	p := e.get("/ui/connectors")
	if want := "/ui/signin?next=" + url.QueryEscape("/ui/connectors") + "&ended=1"; p.Status != http.StatusSeeOther || p.Location() != want {
		t.Fatalf("page after the lifetime: %s %q, want %q", p, p.Location(), want)
	}
	mustContain(t, e.get(p.Location()), http.StatusOK, "Your session has ended", `name="next" value="/ui/connectors"`)

	// A form sent after the end comes back to its page after sign-in
	// (the Referer, which the console's Referrer-Policy keeps
	// same-origin).
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/signout", strings.NewReader(url.Values{"csrf": {csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Referer", e.srv.URL+"/ui/runs?status=failed")
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustContain(t, page{Status: resp.StatusCode, Body: string(body)}, http.StatusUnauthorized,
		"Your session has ended", `name="next" value="/ui/runs?status=failed"`)
}

func TestSignOut(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	p := e.post("/ui/signout", nil)
	if p.Status != http.StatusSeeOther || p.Location() != "/ui/signin?signed_out=1" {
		t.Fatalf("sign-out: %s %q", p, p.Location())
	}
	if p := e.get("/ui/connectors"); p.Status != http.StatusSeeOther {
		t.Fatalf("page after sign-out: %s", p)
	}
}

func TestCSRFRefused(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	e.signIn()
	csrf := e.csrf()
	other := e.newBrowser()
	e.signInWith(other)
	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", url.Values{}, nil},
		{"wrong token", url.Values{"csrf": {"wrong"}}, nil},
		{"another session's token", url.Values{"csrf": {csrfOf(t, e, other)}}, nil},
		{"cross-site", url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"other origin", url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/ui/signout", strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := e.browser.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	// Still signed in: a refused form changes nothing.
	mustContain(t, e.get("/ui/connectors"), http.StatusOK, "Sign out")
}

func csrfOf(t *testing.T, e *env, c *http.Client) string {
	t.Helper()
	p := e.do(c, http.MethodGet, "/ui/connectors", nil)
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token: %s", p)
	}
	return m[1]
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	for _, path := range []string{"/ui/signin", "/ui/static/console.js", "/ui/nope"} {
		p := e.get(path)
		csp := p.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code: %q", path, csp)
		}
		if got := p.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, got)
		}
	}
}

// POST /v1/console/signin (what `connhost ui` calls) needs the operator
// token and returns a link path that signs one browser in, once.
func TestSignInLinkFromAPI(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	call := func(auth string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/console/signin", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := call(""); resp.StatusCode != http.StatusUnauthorized {
		resp.Body.Close()
		t.Fatalf("without the token: %d", resp.StatusCode)
	}
	resp := call("Bearer " + testToken)
	defer resp.Body.Close()
	var si apitypes.ConsoleSignIn
	if err := json.NewDecoder(resp.Body).Decode(&si); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in link: %d %v", resp.StatusCode, err)
	}
	exp, err := time.Parse(time.RFC3339, si.ExpiresAt)
	if err != nil || !exp.Equal(e.clock.Now().Add(console.DefaultSignInTTL)) {
		t.Errorf("expires_at %q", si.ExpiresAt)
	}
	if !strings.HasPrefix(si.Path, "/ui/signin?code=") {
		t.Fatalf("path %q", si.Path)
	}
	if p := e.get(si.Path); p.Status != http.StatusSeeOther || p.Location() != "/ui/" {
		t.Fatalf("first use: %s", p)
	}
	if p := e.do(e.newBrowser(), http.MethodGet, si.Path, nil); p.Status != http.StatusUnauthorized {
		t.Fatalf("second use: %s", p)
	}
	if strings.Contains(e.h.Logs.String(), strings.TrimPrefix(si.Path, "/ui/signin?code=")) {
		t.Errorf("the code is in the log")
	}
}

// Behind TLS the cookie is Secure and __Host- prefixed.
func TestSecureCookie(t *testing.T) {
	con, err := console.New(console.Config{API: http.NotFoundHandler(), Token: testToken, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	code, _ := con.IssueSignIn()
	req := httptest.NewRequest(http.MethodGet, "https://connhost.example/ui/signin?code="+url.QueryEscape(code), nil)
	rec := httptest.NewRecorder()
	con.Handler().ServeHTTP(rec, req)
	ck := rec.Result().Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-connhost_session=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"} { // no port in the Host
		if !strings.Contains(ck, want) {
			t.Errorf("Set-Cookie %q lacks %q", ck, want)
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  console.Config
	}{
		{"no API", console.Config{Token: "t"}},
		{"no token", console.Config{API: http.NotFoundHandler()}},
		{"negative lifetime", console.Config{API: http.NotFoundHandler(), Token: "t", SessionLifetime: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := console.New(tt.cfg); !errors.Is(err, console.ErrInvalidConfig) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

// The assets are served with a content ETag and revalidate to 304.
func TestStaticAssets(t *testing.T) {
	e := newEnv(t, hosttest.Options{})
	for _, tt := range []struct{ path, ctype string }{
		{"/ui/static/console.js", "text/javascript"},
		{"/ui/static/console.css", "text/css"},
	} {
		p := e.get(tt.path)
		if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), tt.ctype) || p.Header.Get("ETag") == "" {
			t.Fatalf("%s: %d %q etag %q", tt.path, p.Status, p.Header.Get("Content-Type"), p.Header.Get("ETag"))
		}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+tt.path, nil)
		req.Header.Set("If-None-Match", p.Header.Get("ETag"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("%s revalidated: %d", tt.path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/ui/static/nope.js", "/ui/static/", "/ui/static/x/"} {
		if p := e.get(path); p.Status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (no listing)", path, p.Status)
		}
	}
}
