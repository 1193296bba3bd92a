package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// session is one signed-in browser. The map key is the SHA-256 of the
// cookie value, so the value itself is not kept.
type session struct {
	csrf    string
	created time.Time
	expires time.Time
	// flash is a one-shot notice shown on the next page (after a
	// POST-redirect-GET).
	flash string
}

// newSecret returns 32 random bytes, base64url without padding.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// cookieName is the session cookie's name for the address the browser
// used. Cookies ignore ports, so the port is part of the name: two hosts
// on one machine (a local cluster, 127.0.0.1:7481 and :7482) keep a
// session each, and another local service on another port is never sent
// one under the name it might read.
func (c *Console) cookieName(r *http.Request) string {
	name := "connhost_session"
	if _, port, err := net.SplitHostPort(r.Host); err == nil && port != "" && isDigits(port) {
		name += "_" + port
	}
	if c.cfg.Secure {
		return "__Host-" + name
	}
	return name
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// IssueSignIn returns a one-time sign-in code, good for one use until
// the returned time (POST /v1/console/signin).
func (c *Console) IssueSignIn() (code string, expires time.Time) {
	code = newSecret()
	now := c.cfg.Now()
	expires = now.Add(c.cfg.SignInTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneLocked(now)
	if len(c.codes) >= maxCodes {
		dropOldest(c.codes, func(t time.Time) time.Time { return t })
	}
	c.codes[sha256.Sum256([]byte(code))] = expires
	return code, expires
}

// redeem consumes a sign-in code: true at most once per code, before it
// expires.
func (c *Console) redeem(code string) bool {
	if code == "" {
		return false
	}
	key := sha256.Sum256([]byte(code))
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.codes[key]
	delete(c.codes, key)
	return ok && c.cfg.Now().Before(exp)
}

// startSession creates a session and sets its cookie.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request) {
	value := newSecret()
	now := c.cfg.Now()
	s := &session{csrf: newSecret(), created: now, expires: now.Add(c.cfg.SessionLifetime)}
	c.mu.Lock()
	c.pruneLocked(now)
	if len(c.session) >= maxSessions {
		dropOldest(c.session, func(s *session) time.Time { return s.created })
	}
	c.session[sha256.Sum256([]byte(value))] = s
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(r), Value: value, Path: "/", HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, Expires: s.expires,
		MaxAge: int(c.cfg.SessionLifetime / time.Second)})
}

// lookup returns the request's live session, or nil.
func (c *Console) lookup(r *http.Request) (*session, [sha256.Size]byte) {
	ck, err := r.Cookie(c.cookieName(r))
	if err != nil || ck.Value == "" {
		return nil, [sha256.Size]byte{}
	}
	key := sha256.Sum256([]byte(ck.Value))
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.session[key]
	if !ok {
		return nil, key
	}
	if !c.cfg.Now().Before(s.expires) {
		delete(c.session, key)
		return nil, key
	}
	return s, key
}

// endSession forgets a session and clears its cookie.
func (c *Console) endSession(w http.ResponseWriter, r *http.Request, key [sha256.Size]byte) {
	c.mu.Lock()
	delete(c.session, key)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(r), Value: "", Path: "/", HttpOnly: true,
		Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// setFlash leaves a notice for the session's next page.
func (c *Console) setFlash(s *session, msg string) {
	c.mu.Lock()
	s.flash = msg
	c.mu.Unlock()
}

func (c *Console) takeFlash(s *session) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (c *Console) pruneLocked(now time.Time) {
	for k, s := range c.session {
		if !now.Before(s.expires) {
			delete(c.session, k)
		}
	}
	for k, exp := range c.codes {
		if !now.Before(exp) {
			delete(c.codes, k)
		}
	}
}

func dropOldest[V any](m map[[sha256.Size]byte]V, at func(V) time.Time) {
	var oldest [sha256.Size]byte
	var when time.Time
	first := true
	for k, v := range m {
		if t := at(v); first || t.Before(when) {
			oldest, when, first = k, t, false
		}
	}
	delete(m, oldest)
}

// pageHandler serves a page for a signed-in session.
type pageHandler func(w http.ResponseWriter, r *http.Request, s *session) error

// page wraps a GET handler: without a live session it redirects to the
// sign-in page, which comes back here after.
func (c *Console) page(h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _ := c.lookup(r)
		if s == nil {
			c.toSignIn(w, r)
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	}
}

// action wraps a state-changing POST: it needs a live session, a
// same-origin request and the session's CSRF token, in that order.
func (c *Console) action(h pageHandler) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := c.lookup(r)
		if s == nil {
			c.toSignIn(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			c.fail(w, r, s, &pageError{status: http.StatusBadRequest, code: "invalid_request", msg: "the form could not be read"})
			return
		}
		got := r.PostForm.Get("csrf")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			c.csrfRefused(w, r)
			return
		}
		if err := h(w, r, s); err != nil {
			c.fail(w, r, s, err)
		}
	})
	return c.cop.Handler(inner)
}

// toSignIn answers a request without a live session: a page goes to the
// sign-in form (and back after), anything else is 401.
// A form sent after the session ended comes back, after sign-in, to the
// page it was sent from (its Referer: the console's Referrer-Policy is
// same-origin); the form itself is not replayed.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/events") {
		c.render(w, r, nil, http.StatusUnauthorized, "signin.html", signInData{
			Error: sessionEnded, Next: safeNext(r.Referer())})
		return
	}
	to := Prefix + "signin?next=" + url.QueryEscape(r.URL.RequestURI())
	if _, err := r.Cookie(c.cookieName(r)); err == nil {
		// The browser holds a session this host does not know.
		to += "&ended=1"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// sessionEnded says why a browser that had a session is asked to sign in.
const sessionEnded = "Your session has ended (it expired, was signed out, or the host restarted). Sign in again."

// safeNext keeps a post-sign-in destination only when it is a console
// page of this host: a path under Prefix without dot segments,
// backslashes or a second slash up front (an absolute URL, as a Referer
// is, keeps its path and query only). Anything else is Prefix.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil {
		return Prefix
	}
	if u.Scheme != "" || u.Host != "" {
		if u.Scheme != "http" && u.Scheme != "https" {
			return Prefix
		}
		u = &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	} else if strings.HasPrefix(next, "//") {
		return Prefix
	}
	p := u.Path
	switch {
	case strings.Contains(p, "\\"), strings.HasPrefix(p, "//"),
		p != path.Clean(p) && p != path.Clean(p)+"/",
		!strings.HasPrefix(p, Prefix), strings.HasPrefix(p, Prefix+"signin"):
		return Prefix
	}
	return u.RequestURI()
}

type signInData struct {
	Error string
	Next  string
	// Notice is a neutral message (signed out).
	Notice string
}

// signInPage shows the sign-in form; with ?code= it redeems a one-time
// code from `connhost ui` instead, and goes on to the console.
func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if r.URL.Query().Has("code") {
		if !c.redeem(r.URL.Query().Get("code")) {
			c.render(w, r, nil, http.StatusUnauthorized, "signin.html", signInData{Next: next,
				Error: "This sign-in link has expired or was already used. Run `connhost ui` for a new one, or sign in with the operator token."})
			return
		}
		c.startSession(w, r)
		// Redirect, so the code leaves the address bar and the history.
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if s, _ := c.lookup(r); s != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	data := signInData{Next: next}
	switch {
	case r.URL.Query().Get("signed_out") == "1":
		data.Notice = "Signed out."
	case r.URL.Query().Get("ended") == "1":
		data.Error = sessionEnded
	}
	c.render(w, r, nil, http.StatusOK, "signin.html", data)
}

// signIn takes the operator token from the sign-in form.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		c.render(w, r, nil, http.StatusBadRequest, "signin.html", signInData{Next: Prefix, Error: "The form could not be read."})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !c.tokenValid(strings.TrimSpace(r.PostForm.Get("token"))) {
		c.render(w, r, nil, http.StatusUnauthorized, "signin.html", signInData{Next: next,
			Error: "That is not the operator token."})
		return
	}
	c.startSession(w, r)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session.
func (c *Console) signOut(w http.ResponseWriter, r *http.Request, _ *session) error {
	_, key := c.lookup(r)
	c.endSession(w, r, key)
	http.Redirect(w, r, Prefix+"signin?signed_out=1", http.StatusSeeOther)
	return nil
}

// csrfRefused answers a POST without a valid CSRF token or from another
// origin.
func (c *Console) csrfRefused(w http.ResponseWriter, r *http.Request) {
	s, _ := c.lookup(r)
	c.fail(w, r, s, &pageError{status: http.StatusForbidden, code: "csrf_refused",
		msg: "This form was not sent from this console page (its security token is missing, stale or from another site). Go back, reload the page and send it again."})
}
