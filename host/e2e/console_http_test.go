package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/server"
)

// TestConsoleServedByServe checks, over plain HTTP and without a browser,
// that `connhost serve` serves the web console at /ui/ with its security
// headers, and that the link `connhost ui` prints signs in once.
func TestConsoleServedByServe(t *testing.T) {
	h := newHarness(t)
	h.okLocal("keyset", "init", "--data-dir", h.dataDir, "--kek-file", h.kekFile)
	h.start()
	token, err := server.ReadToken(h.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	// No redirect is followed: each answer is checked as it comes.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, cookies ...*http.Cookie) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, h.srv.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		h.record("GET "+path, string(body))
		if strings.Contains(string(body), token) {
			t.Errorf("GET %s: the body holds the operator token", path)
		}
		return resp, string(body)
	}

	// Signed out: a page sends the browser to the sign-in form, with the
	// console's headers.
	resp, _ := get("/ui/connectors")
	checkConsoleHeaders(t, "GET /ui/connectors (signed out)", resp, true)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/signin?next=") {
		t.Errorf("GET /ui/connectors signed out: %d to %q, want 303 to the sign-in form", resp.StatusCode, loc)
	}
	resp, body := get("/ui/signin")
	checkConsoleHeaders(t, "GET /ui/signin", resp, true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="token"`) || strings.Contains(body, "<script>") {
		t.Errorf("GET /ui/signin: %d, want the sign-in form with no inline script\n%s", resp.StatusCode, body)
	}
	resp, _ = get("/ui/static/console.js")
	checkConsoleHeaders(t, "GET /ui/static/console.js", resp, false)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.Contains(ct, "javascript") {
		t.Errorf("GET /ui/static/console.js: %d %q", resp.StatusCode, ct)
	}

	// connhost ui prints a link, in text and in JSON; neither holds the
	// token.
	text := h.ok("", "ui", "--addr", h.srv.addr, "--data-dir", h.dataDir)
	if !strings.Contains(text, h.srv.addr+"/ui/signin?code=") || strings.Contains(text, token) {
		t.Errorf("connhost ui:\n%s\nwant a sign-in link without the token", text)
	}
	var link struct {
		URL string `json:"url"`
	}
	h.okJSON(&link, "ui", "--addr", h.srv.addr, "--data-dir", h.dataDir)
	u, err := url.Parse(link.URL)
	if err != nil || u.Path != "/ui/signin" || u.Query().Get("code") == "" || strings.Contains(link.URL, token) {
		t.Fatalf("connhost ui -o json: url %q", link.URL)
	}

	// The link signs in once: a session cookie, and the code leaves the
	// address bar.
	resp, _ = get(u.RequestURI())
	checkConsoleHeaders(t, "GET the sign-in link", resp, true)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || strings.Contains(loc, "code=") {
		t.Fatalf("GET the sign-in link: %d to %q, want 303 away from the code", resp.StatusCode, loc)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "connhost_session_") && c.Value != "" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("GET the sign-in link: no session cookie (Set-Cookie %q)", resp.Header.Values("Set-Cookie"))
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", session)
	}
	if session.Value == token {
		t.Errorf("the session cookie is the operator token")
	}

	// Signed in: the connectors page, with the demo.
	resp, body = get("/ui/connectors", session)
	checkConsoleHeaders(t, "GET /ui/connectors (signed in)", resp, true)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="connector-demo"`) {
		t.Errorf("GET /ui/connectors signed in: %d, want the demo connector\n%.2000s", resp.StatusCode, body)
	}

	// The same link again: refused, and no session.
	resp, body = get(u.RequestURI())
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "expired or was already used") {
		t.Errorf("the sign-in link a second time: %d, cookies %v, want 401 and no session\n%.2000s", resp.StatusCode, resp.Cookies(), body)
	}

	// The host logs request paths only: neither the code nor the token
	// reaches its log.
	h.stop()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range h.outputs {
		if !strings.HasPrefix(o.what, "server") {
			continue
		}
		if strings.Contains(o.text, u.Query().Get("code")) || strings.Contains(o.text, token) {
			t.Errorf("%s holds the sign-in code or the token", o.what)
		}
	}
}

// checkConsoleHeaders checks the console's security headers; noStore
// says whether the response must not be cached (all but static assets).
func checkConsoleHeaders(t *testing.T, what string, resp *http.Response, noStore bool) {
	t.Helper()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy %q allows inline or eval'd script", what, csp)
	}
	for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
	if got := resp.Header.Get("Cache-Control"); noStore && got != "no-store" {
		t.Errorf("%s: Cache-Control = %q, want no-store", what, got)
	}
}
