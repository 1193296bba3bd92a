package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/console"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/keysets"
)

// testToken is the operator token of every test host.
const testToken = "console-test-operator-token-0123456789"

// clock is a settable clock for session and sign-in expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// keyset is the api.Keyset of the test API: info only.
type keyset struct{ ks *keysets.Keyset }

func (k keyset) Info() keysets.Info { return k.ks.Info() }
func (keyset) Rotate(context.Context, string) (keysets.Info, error) {
	return keysets.Info{}, fmt.Errorf("not in console tests")
}
func (keyset) Rewrap(context.Context, string) (broker.RewrapReport, error) {
	return broker.RewrapReport{}, fmt.Errorf("not in console tests")
}
func (keyset) DisableKey(context.Context, string, uint32) (api.KeyChange, error) {
	return api.KeyChange{}, fmt.Errorf("not in console tests")
}
func (keyset) EnableKey(context.Context, string, uint32) (api.KeyChange, error) {
	return api.KeyChange{}, fmt.Errorf("not in console tests")
}

// env is a console over a real host (SQLite, demo plugin subprocess) and
// its real API, served as `connhost serve` routes them.
type env struct {
	t     *testing.T
	h     *hosttest.Host
	con   *console.Console
	api   *api.API
	srv   *httptest.Server
	clock *clock
	// browser is a client with a cookie jar that does not follow
	// redirects (tests look at them).
	browser *http.Client
}

func newEnv(t *testing.T, o hosttest.Options) *env {
	t.Helper()
	h := hosttest.New(t, o)
	clk := &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	e := &env{t: t, h: h, clock: clk}
	var apiHandler http.Handler
	con, err := console.New(console.Config{
		API:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { apiHandler.ServeHTTP(w, r) }),
		Token: testToken, Now: clk.Now, Logger: h.Logger.Named("console")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{
		Token: testToken, Store: h.Store, Control: h.Control, Catalog: h.Catalog, Runs: h.Runner,
		Schedule: h.Scheduler, Logger: h.Logger.Named("http"), Heartbeat: 200 * time.Millisecond,
		Health: h.Health, Explainer: h.Explainer, Keyset: keyset{h.Keyset}, Console: con,
	})
	if err != nil {
		t.Fatal(err)
	}
	apiHandler = a.Handler()
	e.con, e.api = con, a
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if console.Owns(r.URL.Path) {
			con.Handler().ServeHTTP(w, r)
			return
		}
		a.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(func() { a.Close(); e.srv.Close() })
	e.browser = e.newBrowser()
	return e
}

// newBrowser returns a client with its own cookie jar.
func (e *env) newBrowser() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// page is a received console response.
type page struct {
	Status int
	Header http.Header
	Body   string
}

// Location is the redirect target's path and query.
func (p page) Location() string { return p.Header.Get("Location") }

func (p page) String() string { return fmt.Sprintf("%d %.400s", p.Status, p.Body) }

// do sends a request with the browser's cookies; same-origin headers as
// a browser sends them on a form post.
func (e *env) do(c *http.Client, method, path string, form url.Values) page {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.srv.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// get fetches a page with the env's browser.
func (e *env) get(path string) page {
	e.t.Helper()
	return e.do(e.browser, http.MethodGet, path, nil)
}

// post sends a form with the env's browser, adding the CSRF token of the
// browser's session when csrf is true.
func (e *env) post(path string, form url.Values) page {
	e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if !form.Has("csrf") {
		form.Set("csrf", e.csrf())
	}
	return e.do(e.browser, http.MethodPost, path, form)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the session's CSRF token off a page.
func (e *env) csrf() string {
	e.t.Helper()
	p := e.get("/ui/connectors")
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		e.t.Fatalf("no CSRF token on /ui/connectors: %s", p)
	}
	return m[1]
}

// signIn signs the env's browser in through a one-time link, as
// `connhost ui` prints it.
func (e *env) signIn() {
	e.t.Helper()
	e.signInWith(e.browser)
}

func (e *env) signInWith(c *http.Client) {
	e.t.Helper()
	code, _ := e.con.IssueSignIn()
	p := e.do(c, http.MethodGet, "/ui/signin?code="+url.QueryEscape(code), nil)
	if p.Status != http.StatusSeeOther || p.Location() != "/ui/" {
		e.t.Fatalf("sign-in link: %s (Location %q)", p, p.Location())
	}
}

// mustContain fails unless the page has status and holds every string.
func mustContain(t *testing.T, p page, status int, want ...string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("status %d, want %d: %s", p.Status, status, p)
	}
	for _, w := range want {
		if !strings.Contains(p.Body, w) {
			t.Errorf("page lacks %q:\n%s", w, p.Body)
		}
	}
}
