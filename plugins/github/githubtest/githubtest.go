// Package githubtest is a fake of the parts of the GitHub REST API the
// github connector reads, for tests that must not reach the internet: the
// connector's own, and a host's end-to-end tests that run the real plugin.
//
// A Fake is an http.Handler; serve it with net/http/httptest and point
// GITHUB_API_URL at the server:
//
//	f := githubtest.New("test-token")
//	f.AddRepo(githubtest.Repo{ID: 1, FullName: "octo/hello"})
//	srv := httptest.NewServer(f)
//	defer srv.Close()
//	// run the connector with GITHUB_API_URL=srv.URL, GITHUB_TOKEN=test-token
//
// It behaves like GitHub where the connector depends on it: bearer-token
// auth (401 otherwise), a required User-Agent, pagination with per_page,
// page and Link headers (first, prev, next, last), weak ETags over the
// body with 304 answers to If-None-Match, the since, state, sort and
// direction parameters of the issues list, the affiliation and visibility
// filters of the repository list, the star media type of the starred
// list, and X-RateLimit headers. Its clock is fixed (Now): the Date header
// and the rate-limit resets are computed from it, so tests do not depend
// on time. Inject queues scripted answers (rate limits, 5xx) for a path.
//
// Every request is recorded (Requests, TakeRequests) with its query and
// headers, for assertions on what a client sent.
package githubtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultNow is the fake's clock unless Now is set.
var DefaultNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// Repo is a repository as the fake serves it.
type Repo struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	FullName    string    `json:"full_name"`
	Private     bool      `json:"private"`
	Description string    `json:"description"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Affiliation is how the token's owner relates to the repository for
	// GET /user/repos?affiliation=: owner (the default), collaborator or
	// organization_member. Not served.
	Affiliation string `json:"-"`
	// IssuesDisabled makes its issues list answer 410 Gone. Not served.
	IssuesDisabled bool `json:"-"`
}

// Issue is an issue or, with PullRequest set, a pull request.
type Issue struct {
	ID          int64           `json:"id"`
	Number      int             `json:"number"`
	Title       string          `json:"title"`
	State       string          `json:"state"`
	UpdatedAt   time.Time       `json:"updated_at"`
	PullRequest *PullRequestRef `json:"pull_request,omitempty"`
}

// PullRequestRef marks an issue as a pull request.
type PullRequestRef struct {
	URL string `json:"url"`
}

// Star is a repository the token's owner starred.
type Star struct {
	StarredAt time.Time `json:"starred_at"`
	Repo      Repo      `json:"repo"`
}

// Response is a scripted answer (see Inject).
type Response struct {
	Status int
	Header http.Header
	// Body is sent as is; empty means GitHub's error body for Status.
	Body string
}

// Request is a request the fake received.
type Request struct {
	Method string
	// Path is the URL path below Prefix.
	Path   string
	Query  url.Values
	Header http.Header
	// Status is the status the fake answered.
	Status int
}

// Fake is a fake GitHub API. Set its exported fields before it serves;
// change its data and rate limit with its methods, which are safe to call
// while it serves.
type Fake struct {
	// Token is the one token accepted, as "Authorization: Bearer <Token>".
	Token string
	// Login is GET /user's login.
	Login string
	// Prefix is the API's path on the server, such as "/api/v3" for
	// GitHub Enterprise Server; empty for api.github.com's layout.
	Prefix string
	// Now is the fake's clock.
	Now time.Time
	// LinkOnNotModified makes 304 answers carry the Link header too.
	LinkOnNotModified bool

	mu        sync.Mutex
	remaining int
	resetIn   time.Duration
	repos     []Repo
	issues    map[string][]Issue // by lower-case full name
	stars     []Star
	injected  map[string][]Response
	requests  []Request
}

// New returns a fake that accepts token, with login "octocat", clock
// DefaultNow, and a rate limit of 4999 remaining, resetting in an hour.
func New(token string) *Fake {
	return &Fake{
		Token:     token,
		Login:     "octocat",
		Now:       DefaultNow,
		remaining: 4999,
		resetIn:   time.Hour,
		issues:    map[string][]Issue{},
		injected:  map[string][]Response{},
	}
}

// SetRateLimit sets the X-RateLimit-Remaining of normal answers and their
// X-RateLimit-Reset, resetIn after Now.
func (f *Fake) SetRateLimit(remaining int, resetIn time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remaining, f.resetIn = remaining, resetIn
}

// AddRepo adds a repository, or replaces the one with its ID. Name
// defaults to the part of FullName after the slash.
func (f *Fake) AddRepo(r Repo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Name == "" {
		_, r.Name, _ = strings.Cut(r.FullName, "/")
	}
	for i := range f.repos {
		if f.repos[i].ID == r.ID {
			f.repos[i] = r
			return
		}
	}
	f.repos = append(f.repos, r)
}

// PutIssue adds an issue to the repository named fullName, or replaces
// the one with its ID. State defaults to "open".
func (f *Fake) PutIssue(fullName string, is Issue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if is.State == "" {
		is.State = "open"
	}
	k := strings.ToLower(fullName)
	for i := range f.issues[k] {
		if f.issues[k][i].ID == is.ID {
			f.issues[k][i] = is
			return
		}
	}
	f.issues[k] = append(f.issues[k], is)
}

// AddStar adds a starred repository.
func (f *Fake) AddStar(s Star) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Repo.Name == "" {
		_, s.Repo.Name, _ = strings.Cut(s.Repo.FullName, "/")
	}
	f.stars = append(f.stars, s)
}

// Inject queues answers for requests to path (below Prefix, without the
// query): the next requests to it get them, in order, before the fake
// answers normally again. They are sent even without a valid token.
func (f *Fake) Inject(path string, rs ...Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected[path] = append(f.injected[path], rs...)
}

// Requests returns the requests received so far.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// TakeRequests returns the requests received so far and forgets them.
func (f *Fake) TakeRequests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.requests
	f.requests = nil
	return rs
}

// PrimaryRateLimit is the answer to a request made with the primary rate
// limit spent: status (403 or 429), X-RateLimit-Remaining 0, and a reset
// resetIn after Now.
func (f *Fake) PrimaryRateLimit(status int, resetIn time.Duration) Response {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(f.Now.Add(resetIn).Unix(), 10))
	return Response{Status: status, Header: h, Body: errorBody("API rate limit exceeded for user ID 1.")}
}

// SecondaryRateLimit is the answer of a secondary rate limit: status (403
// or 429) with Retry-After in whole seconds, or none when retryAfter is 0.
func SecondaryRateLimit(status int, retryAfter time.Duration) Response {
	h := http.Header{}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	}
	return Response{Status: status, Header: h, Body: errorBody("You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")}
}

// Status is a bare answer with status code and GitHub's error body.
func Status(code int) Response { return Response{Status: code} }

// ServeHTTP answers one request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path, ok := strings.CutPrefix(r.URL.Path, f.Prefix)
	rec := Request{Method: r.Method, Path: path, Query: r.URL.Query(), Header: r.Header.Clone()}
	if ok {
		rec.Status = f.serve(w, r, path)
	} else {
		w.Header().Set("Date", f.Now.Format(http.TimeFormat))
		rec.Status = f.error(w, http.StatusNotFound, "Not Found")
	}
	f.requests = append(f.requests, rec)
}

// serve writes the answer and returns its status. f.mu is held.
func (f *Fake) serve(w http.ResponseWriter, r *http.Request, path string) int {
	w.Header().Set("Date", f.Now.Format(http.TimeFormat))
	if q := f.injected[path]; len(q) > 0 {
		resp := q[0]
		f.injected[path] = q[1:]
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		body := resp.Body
		if body == "" {
			body = errorBody(http.StatusText(resp.Status))
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(resp.Status)
		_, _ = w.Write([]byte(body))
		return resp.Status
	}
	if r.Method != http.MethodGet {
		return f.error(w, http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	if r.Header.Get("User-Agent") == "" {
		return f.error(w, http.StatusForbidden, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.")
	}
	if f.Token == "" || r.Header.Get("Authorization") != "Bearer "+f.Token {
		return f.error(w, http.StatusUnauthorized, "Bad credentials")
	}
	q := r.URL.Query()
	switch {
	case path == "/user":
		return f.object(w, r, map[string]any{"login": f.Login, "id": 1, "type": "User"})
	case path == "/user/repos":
		return f.list(w, r, path, toAny(f.userRepos(q)))
	case path == "/user/starred":
		stars := f.starred(q)
		if strings.Contains(r.Header.Get("Accept"), "star+json") {
			return f.list(w, r, path, toAny(stars))
		}
		repos := make([]Repo, len(stars))
		for i, s := range stars {
			repos[i] = s.Repo
		}
		return f.list(w, r, path, toAny(repos))
	case strings.HasPrefix(path, "/repos/"):
		parts := strings.Split(strings.TrimPrefix(path, "/repos/"), "/")
		if len(parts) < 2 {
			break
		}
		repo, ok := f.repo(parts[0] + "/" + parts[1])
		if !ok {
			break
		}
		switch {
		case len(parts) == 2:
			return f.object(w, r, repo)
		case len(parts) == 3 && parts[2] == "issues":
			if repo.IssuesDisabled {
				return f.error(w, http.StatusGone, "Issues are disabled for this repo")
			}
			issues, err := f.repoIssues(repo.FullName, q)
			if err != nil {
				return f.error(w, http.StatusUnprocessableEntity, err.Error())
			}
			return f.list(w, r, path, toAny(issues))
		}
	}
	return f.error(w, http.StatusNotFound, "Not Found")
}

func (f *Fake) repo(fullName string) (Repo, bool) {
	for _, r := range f.repos {
		if strings.EqualFold(r.FullName, fullName) {
			return r, true
		}
	}
	return Repo{}, false
}

// userRepos applies GET /user/repos's filters and order.
func (f *Fake) userRepos(q url.Values) []Repo {
	aff := q.Get("affiliation")
	if aff == "" {
		aff = "owner,collaborator,organization_member"
	}
	vis := q.Get("visibility")
	var out []Repo
	for _, r := range f.repos {
		a := r.Affiliation
		if a == "" {
			a = "owner"
		}
		if !contains(strings.Split(aff, ","), a) {
			continue
		}
		if (vis == "public" && r.Private) || (vis == "private" && !r.Private) {
			continue
		}
		out = append(out, r)
	}
	sortBy := q.Get("sort")
	desc := q.Get("direction") == "desc" || (q.Get("direction") == "" && sortBy != "" && sortBy != "full_name")
	less := func(a, b Repo) bool {
		switch sortBy {
		case "created":
			return a.ID < b.ID
		case "updated", "pushed":
			return a.UpdatedAt.Before(b.UpdatedAt) || (a.UpdatedAt.Equal(b.UpdatedAt) && a.ID < b.ID)
		}
		return strings.ToLower(a.FullName) < strings.ToLower(b.FullName)
	}
	sortDir(out, less, desc)
	return out
}

// repoIssues applies the issues list's filters and order.
func (f *Fake) repoIssues(fullName string, q url.Values) ([]Issue, error) {
	state := q.Get("state")
	if state == "" {
		state = "open"
	}
	var since time.Time
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("since: %q is not an ISO 8601 timestamp", s)
		}
		since = t
	}
	var out []Issue
	for _, is := range f.issues[strings.ToLower(fullName)] {
		if state != "all" && is.State != state {
			continue
		}
		if is.UpdatedAt.Before(since) {
			continue
		}
		out = append(out, is)
	}
	byUpdated := q.Get("sort") == "updated"
	desc := q.Get("direction") != "asc"
	less := func(a, b Issue) bool {
		if byUpdated && !a.UpdatedAt.Equal(b.UpdatedAt) {
			return a.UpdatedAt.Before(b.UpdatedAt)
		}
		return a.ID < b.ID
	}
	sortDir(out, less, desc)
	return out, nil
}

// starred applies the starred list's order.
func (f *Fake) starred(q url.Values) []Star {
	out := append([]Star(nil), f.stars...)
	desc := q.Get("direction") != "asc"
	byUpdated := q.Get("sort") == "updated"
	less := func(a, b Star) bool {
		ta, tb := a.StarredAt, b.StarredAt
		if byUpdated {
			ta, tb = a.Repo.UpdatedAt, b.Repo.UpdatedAt
		}
		return ta.Before(tb) || (ta.Equal(tb) && a.Repo.ID < b.Repo.ID)
	}
	sortDir(out, less, desc)
	return out
}

// list writes one page of items with Link headers.
func (f *Fake) list(w http.ResponseWriter, r *http.Request, path string, items []any) int {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page <= 0 {
		page = 1
	}
	last := max(1, (len(items)+per-1)/per)
	from := min((page-1)*per, len(items))
	to := min(from+per, len(items))
	var links []string
	pageURL := func(n int) string {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		pq := r.URL.Query()
		pq.Set("page", strconv.Itoa(n))
		return fmt.Sprintf("<%s://%s%s%s?%s>", scheme, r.Host, f.Prefix, path, pq.Encode())
	}
	if page > 1 {
		links = append(links, pageURL(page-1)+`; rel="prev"`)
	}
	if page < last {
		links = append(links, pageURL(page+1)+`; rel="next"`, pageURL(last)+`; rel="last"`)
	}
	if page > 1 {
		links = append(links, pageURL(1)+`; rel="first"`)
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	return f.object(w, r, items[from:to])
}

// object writes v as JSON with an ETag, or a 304 when the client has it.
func (f *Fake) object(w http.ResponseWriter, r *http.Request, v any) int {
	body, err := json.Marshal(v)
	if err != nil {
		return f.error(w, http.StatusInternalServerError, err.Error())
	}
	sum := sha256.Sum256(body)
	etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("ETag", etag)
	f.rateHeaders(h)
	if match(r.Header.Get("If-None-Match"), etag) {
		if !f.LinkOnNotModified {
			h.Del("Link")
		}
		w.WriteHeader(http.StatusNotModified)
		return http.StatusNotModified
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

func (f *Fake) error(w http.ResponseWriter, status int, msg string) int {
	f.rateHeaders(w.Header())
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(errorBody(msg)))
	return status
}

func (f *Fake) rateHeaders(h http.Header) {
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(f.remaining))
	h.Set("X-RateLimit-Used", strconv.Itoa(max(5000-f.remaining, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(f.Now.Add(f.resetIn).Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// match reports whether an If-None-Match value names etag, comparing
// weakly as RFC 9110 asks for If-None-Match.
func match(inm, etag string) bool {
	if strings.TrimSpace(inm) == "*" {
		return true
	}
	weak := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(inm, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == weak {
			return true
		}
	}
	return false
}

func errorBody(msg string) string {
	b, _ := json.Marshal(map[string]string{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
	})
	return string(b)
}

// sortDir sorts xs by less, or in reverse when desc.
func sortDir[T any](xs []T, less func(a, b T) bool, desc bool) {
	sort.SliceStable(xs, func(i, j int) bool {
		if desc {
			return less(xs[j], xs[i])
		}
		return less(xs[i], xs[j])
	})
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
