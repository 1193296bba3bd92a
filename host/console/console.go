// Package console is connhost's web console, served by `connhost serve`
// at /ui/ on the API's listener and embedded in the binary: server-rendered
// pages (html/template) and one small script, no build step, nothing
// loaded from anywhere but the host.
//
// # One path to the host
//
// The console holds no store, runner or broker. Every page reads, and
// every form writes, through the HTTP API's own handler, called in
// process with the operator token by the API's Go client (package
// client): the same validation, typed errors, audit rows and redaction as
// a CLI call. A run's live progress is the API's event stream, relayed.
//
// # Sign-in and sessions
//
// A person signs in once: with a one-time link from `connhost ui` (POST
// /v1/console/signin issues the code; it is good for one use within
// SignInTTL), or by pasting the operator token into the sign-in form. The
// console then sets a random session cookie (HttpOnly, SameSite=Strict,
// Secure and __Host- prefixed when the host serves TLS; named for the
// port, as cookies ignore ports) that lasts SessionLifetime; sign-out
// ends it at once. Sessions live in this process's memory: a restart,
// or another host of a cluster, asks for a new sign-in. Neither the token
// nor a code is ever logged: requests are logged by path only.
//
// # Forms
//
// Every state-changing request is a POST that must carry the session's
// CSRF token (a hidden field) and pass net/http's cross-origin check
// (Sec-Fetch-Site / Origin); a refusal is 403 csrf_refused. Destructive
// actions (delete, revoke) take a confirmation page first. A refused
// write re-renders its form with the API's typed error beside the field
// it names. Credential forms are write-only: one password field per
// required name, never filled, and no value is ever rendered back.
//
// # Headers
//
// Every response carries a Content-Security-Policy that allows scripts,
// styles and connections from the host only (no inline script or style),
// frame-ancestors 'none', X-Content-Type-Options nosniff, Referrer-Policy
// same-origin (so a form sent after the session ended can come back to
// its page after sign-in), and (but for the static assets) Cache-Control
// no-store.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/connhost/connhost/host/api/client"
	"github.com/hashicorp/go-hclog"
)

// Defaults.
const (
	// DefaultSessionLifetime is how long a session lasts after sign-in.
	DefaultSessionLifetime = 12 * time.Hour
	// DefaultSignInTTL is how long a one-time sign-in code is good for.
	DefaultSignInTTL = 5 * time.Minute
	// Prefix is where the console is served.
	Prefix = "/ui/"
	// maxSessions and maxCodes bound the memory held for sign-ins: past
	// them the oldest is dropped.
	maxSessions = 256
	maxCodes    = 64
	// maxForm bounds a form body.
	maxForm = 1 << 20
)

// Errors.
var (
	// ErrInvalidConfig is wrapped by New for a wiring error.
	ErrInvalidConfig = errors.New("console: invalid config")
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures a Console.
type Config struct {
	// API is the HTTP API's handler (api.API.Handler, with whatever the
	// server wraps it in). Required.
	API http.Handler
	// Token is the operator token the console calls the API with.
	// Required.
	Token string
	// Secure marks cookies Secure (and __Host-): the host serves TLS.
	Secure bool
	// SessionLifetime and SignInTTL default to DefaultSessionLifetime
	// and DefaultSignInTTL.
	SessionLifetime time.Duration
	SignInTTL       time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger hclog.Logger
}

// Console serves the web console.
type Console struct {
	cfg     Config
	api     *client.Client
	mux     *http.ServeMux
	pages   *templates
	cop     *http.CrossOriginProtection
	log     hclog.Logger
	token   [sha256.Size]byte
	static  http.Handler
	mu      sync.Mutex
	session map[[sha256.Size]byte]*session
	codes   map[[sha256.Size]byte]time.Time
}

// New returns a Console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.API == nil:
		return nil, fmt.Errorf("%w: API required", ErrInvalidConfig)
	case cfg.Token == "":
		return nil, fmt.Errorf("%w: Token required", ErrInvalidConfig)
	case cfg.SessionLifetime < 0 || cfg.SignInTTL < 0:
		return nil, fmt.Errorf("%w: negative lifetime", ErrInvalidConfig)
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.SignInTTL == 0 {
		cfg.SignInTTL = DefaultSignInTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	// The client's address is never dialled: inproc hands each request to
	// the API's handler.
	api, err := client.New("http://connhost.console.invalid", cfg.Token, &http.Client{Transport: inproc{h: cfg.API}})
	if err != nil {
		return nil, err
	}
	pages, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	static, err := staticHandler()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, api: api, mux: http.NewServeMux(), pages: pages, cop: http.NewCrossOriginProtection(),
		log: cfg.Logger, token: sha256.Sum256([]byte(cfg.Token)),
		static:  static,
		session: map[[sha256.Size]byte]*session{}, codes: map[[sha256.Size]byte]time.Time{}}
	// A refused cross-origin request is the same typed 403 as a missing
	// CSRF token.
	c.cop.SetDenyHandler(http.HandlerFunc(c.csrfRefused))
	c.register()
	return c, nil
}

// Handler returns the console's handler, for every path under Prefix
// (and Prefix without its slash, which redirects).
func (c *Console) Handler() http.Handler { return http.HandlerFunc(c.serve) }

// Owns reports whether a request path belongs to the console.
func Owns(path string) bool {
	return path == strings.TrimSuffix(Prefix, "/") || strings.HasPrefix(path, Prefix)
}

func (c *Console) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		// Path only: the query of a sign-in link holds a code.
		args := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start)}
		if rec.status >= 500 && r.Context().Err() == nil {
			c.log.Error("console request", args...)
		} else {
			c.log.Debug("console request", args...)
		}
	}()
	h := rec.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		h.Set("Cache-Control", "no-store")
	}
	c.mux.ServeHTTP(rec, r)
}

// csp allows the host's own script, styles, images and event streams and
// nothing else: no inline script or style, no framing, no form posting
// elsewhere.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// statusWriter records the status for the request log and passes
// Flush through (the event relay streams).
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// tokenValid reports whether got is the operator token, in constant time.
func (c *Console) tokenValid(got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], c.token[:]) == 1
}

// ctx bounds a page's API calls.
func pageContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 30*time.Second)
}
