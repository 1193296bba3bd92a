package github_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/plugins/github/github"
	"github.com/connhost/connhost/plugins/github/githubtest"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// token is the canary: it must reach GitHub in the Authorization header
// and nowhere else.
const token = "ghp_CANARYt0ken0123456789abcdefCANARY"

var t0 = githubtest.DefaultNow

// seed fills f with an account whose every list spans pages at PageSize
// 2: five repositories (three pages), five issues in octo/alpha (three
// pages), five stars (three pages).
func seed(f *githubtest.Fake) {
	for _, r := range []githubtest.Repo{
		{ID: 101, FullName: "octo/alpha"},
		{ID: 102, FullName: "octo/beta", Private: true},
		{ID: 103, FullName: "acme/gamma", Affiliation: "organization_member"},
		{ID: 104, FullName: "friend/delta", Affiliation: "collaborator"},
		{ID: 105, FullName: "octo/fork", IssuesDisabled: true},
	} {
		f.AddRepo(r)
	}
	for i := range 5 {
		is := githubtest.Issue{ID: int64(1001 + i), Number: i + 1, Title: "alpha issue", UpdatedAt: t0.Add(time.Duration(i-5) * time.Hour)}
		if i == 1 {
			is.PullRequest = &githubtest.PullRequestRef{URL: "https://api.github.com/repos/octo/alpha/pulls/2"}
		}
		if i == 2 {
			is.State = "closed"
		}
		f.PutIssue("octo/alpha", is)
	}
	f.PutIssue("octo/beta", githubtest.Issue{ID: 2001, Number: 1, State: "closed", UpdatedAt: t0.Add(-30 * time.Minute)})
	f.PutIssue("acme/gamma", githubtest.Issue{ID: 3001, Number: 1, UpdatedAt: t0.Add(-10 * time.Hour)})
	for i := range 5 {
		f.AddStar(githubtest.Star{
			StarredAt: t0.Add(time.Duration(i-5) * 24 * time.Hour),
			Repo:      githubtest.Repo{ID: int64(901 + i), FullName: "others/starred" + string(rune('a'+i))},
		})
	}
}

// harness is a fake GitHub and a connector pointed at it, with waits
// recorded instead of spent and logs captured.
type harness struct {
	t    *testing.T
	fake *githubtest.Fake
	url  string
	c    *github.Connector
	logs sdktest.LogBuffer

	mu     sync.Mutex
	sleeps []time.Duration
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, fake: githubtest.New(token)}
	seed(h.fake)
	srv := httptest.NewServer(h.fake)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	h.c = &github.Connector{PageSize: 2, Sleep: h.sleep}
	t.Cleanup(h.checkRequests)
	return h
}

func (h *harness) sleep(ctx context.Context, d time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sleeps = append(h.sleeps, d)
	return ctx.Err()
}

func (h *harness) takeSleeps() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sleeps
	h.sleeps = nil
	return s
}

func (h *harness) env() map[string]string {
	return map[string]string{github.TokenEnv: token, github.APIURLEnv: h.url}
}

// run runs the connector in-process with the harness's environment
// unless o sets one, and checks the canary in everything it sent.
func (h *harness) run(o sdktest.Options) *sdktest.Result {
	h.t.Helper()
	if o.Env == nil {
		o.Env = h.env()
	}
	o.LogOutput = &h.logs
	res := sdktest.Run(h.t, h.c, o)
	checkCanary(h.t, res, h.logs.String())
	return res
}

func (h *harness) check(o sdktest.Options) wire.CheckResult {
	h.t.Helper()
	if o.Env == nil {
		o.Env = h.env()
	}
	o.LogOutput = &h.logs
	res, err := sdktest.Check(h.t, h.c, o)
	if err != nil {
		h.t.Fatal(err)
	}
	if strings.Contains(res.Identity+failureText(res.Failure)+h.logs.String(), token) {
		h.t.Errorf("the token appears in the check's result or logs")
	}
	return res
}

// checkRequests: every request the fake received carried the token in
// the Authorization header as a bearer token, and nowhere else, with the
// headers GitHub asks for.
func (h *harness) checkRequests() {
	for _, r := range h.fake.Requests() {
		if r.Header.Get("Authorization") != "Bearer "+token {
			continue // a test sending another token on purpose
		}
		for k, vs := range r.Header {
			for _, v := range vs {
				if k != "Authorization" && strings.Contains(v, token) {
					h.t.Errorf("%s %s: header %s holds the token", r.Method, r.Path, k)
				}
			}
		}
		if strings.Contains(r.Path+r.Query.Encode(), token) {
			h.t.Errorf("%s %s: the URL holds the token", r.Method, r.Path)
		}
		wantAccept := github.MediaType
		if r.Path == "/user/starred" {
			wantAccept = github.StarMediaType
		}
		got := [4]string{r.Method, r.Header.Get("User-Agent"), r.Header.Get("Accept"), r.Header.Get("X-GitHub-Api-Version")}
		want := [4]string{http.MethodGet, "connhost-github/" + github.Version, wantAccept, "2022-11-28"}
		if got != want {
			h.t.Errorf("%s: method and headers %q, want %q", r.Path, got, want)
		}
	}
}

// checkCanary fails the test if the token appears in anything a run sent
// or logged, as is, JSON-escaped or base64-encoded.
func checkCanary(t *testing.T, res *sdktest.Result, logs string) {
	t.Helper()
	forms := []string{token, base64.StdEncoding.EncodeToString([]byte(token)), base64.StdEncoding.EncodeToString([]byte("Bearer " + token))}
	sent := res.Sent()
	for _, f := range forms {
		if strings.Contains(sent, f) {
			t.Errorf("a record, checkpoint, progress message or error holds the token")
		}
		if strings.Contains(logs, f) {
			t.Errorf("the log output holds the token")
		}
	}
	if strings.Contains(logs, "Bearer") {
		t.Errorf("the log output mentions the Authorization header value")
	}
}

func failureText(f *wire.Failure) string {
	if f == nil {
		return ""
	}
	return f.Message
}

// keys returns the keys of a stream's records, in order.
func keys(res *sdktest.Result, stream string) []string {
	var out []string
	for _, r := range res.RecordsOf(stream) {
		out = append(out, r.Key)
	}
	return out
}

// state decodes a checkpoint.
func state(t *testing.T, b []byte) github.State {
	t.Helper()
	var st github.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("checkpoint %s: %v", b, err)
	}
	return st
}

// sinces returns each repository's since, by id, "" when zero.
func sinces(st github.State) map[string]string {
	out := map[string]string{}
	for id, c := range st.Issues {
		out[id] = ""
		if !c.Since.IsZero() {
			out[id] = c.Since.UTC().Format(time.RFC3339)
		}
	}
	return out
}

// issueQueries returns, per issues path, the since parameter of the
// requests to it ("-" when absent).
func issueQueries(reqs []githubtest.Request) map[string][]string {
	out := map[string][]string{}
	for _, r := range reqs {
		if !strings.HasSuffix(r.Path, "/issues") {
			continue
		}
		s := r.Query.Get("since")
		if !r.Query.Has("since") {
			s = "-"
		}
		out[r.Path] = append(out[r.Path], s)
	}
	return out
}

// statuses returns "path status" for each request.
func statuses(reqs []githubtest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Path+" "+http.StatusText(r.Status))
	}
	return out
}

func ts(d time.Duration) string { return t0.Add(d).UTC().Format(time.RFC3339) }

func TestManifest(t *testing.T) {
	t.Parallel()
	m := github.New().Manifest()
	if err := m.Validate(manifest.CheckSchedule); err != nil {
		t.Fatal(err)
	}
	want := manifest.Manifest{
		ConnectorKey:   "github",
		Version:        github.Version,
		Auth:           manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"GITHUB_TOKEN"}},
		EnvPassthrough: []string{"GITHUB_API_URL"},
		Streams: []manifest.Stream{
			{Name: "repos", KeyFields: []string{"id"}},
			{Name: "issues", KeyFields: []string{"id"}},
			{Name: "starred", KeyFields: []string{"repo.id"}},
		},
		DefaultSchedule: manifest.Schedule{Spec: "0 */6 * * *", AutoEnroll: true},
		ConfigSchema:    github.ConfigSchema,
	}
	if diff := cmp.Diff(want, m, cmpopts.IgnoreFields(manifest.Manifest{}, "DisplayName", "Description")); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
}

// TestConfigSchemaMatchesConfig keeps the served schema in step with the
// Config struct: same property names, no extras.
func TestConfigSchemaMatchesConfig(t *testing.T) {
	t.Parallel()
	msg, err := sdktest.SchemaMismatch(github.ConfigSchema, github.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if msg != "" {
		t.Errorf("config schema and Config disagree: %s", msg)
	}
}

func TestConfigNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   github.Config
		want github.Config
	}{
		{"defaults", github.Config{}, github.Config{
			Affiliation: github.DefaultAffiliation, Visibility: "all", IssuesState: "all",
			Streams: []string{"repos", "issues", "starred"},
		}},
		{"affiliation in canonical order", github.Config{Affiliation: "organization_member,owner"}, github.Config{
			Affiliation: "owner,organization_member", Visibility: "all", IssuesState: "all",
			Streams: []string{"repos", "issues", "starred"},
		}},
		{"allowlist has no listing filters", github.Config{Repos: []string{"octo/alpha"}, Streams: []string{"issues"}}, github.Config{
			Repos: []string{"octo/alpha"}, IssuesState: "all", Streams: []string{"issues"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.in
			c.Normalize()
			if diff := cmp.Diff(tt.want, c); diff != "" {
				t.Errorf("normalized (-want +got):\n%s", diff)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("normalized config invalid: %v", err)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{"unknown field", `{"visibilty":"all"}`, `unknown field "visibilty"`},
		{"not an object", `["repos"]`, "invalid config"},
		{"bad affiliation", `{"affiliation":"owner,member"}`, `affiliation: "member"`},
		{"affiliation with spaces", `{"affiliation":"owner, collaborator"}`, `affiliation: " collaborator"`},
		{"affiliation twice", `{"affiliation":"owner,owner"}`, "listed twice"},
		{"bad visibility", `{"visibility":"internal"}`, `visibility: "internal"`},
		{"bad issues_state", `{"issues_state":"merged"}`, `issues_state: "merged"`},
		{"repo without owner", `{"repos":["alpha"]}`, `repos[0]: "alpha"`},
		{"climbing repo", `{"repos":["octo/.."]}`, `repos[0]: "octo/.."`},
		{"repo with a path", `{"repos":["octo/alpha/issues"]}`, `repos[0]`},
		{"repo twice", `{"repos":["octo/alpha","OCTO/Alpha"]}`, `repos[1]: "OCTO/Alpha" is listed twice`},
		{"repos with affiliation", `{"repos":["octo/alpha"],"affiliation":"owner"}`, "cannot be combined"},
		{"repos with visibility", `{"repos":["octo/alpha"],"visibility":"all"}`, "cannot be combined"},
		{"unknown stream", `{"streams":["stargazers"]}`, `streams[0]: "stargazers"`},
		{"stream twice", `{"streams":["repos","repos"]}`, "listed twice"},
		{"no streams", `{"streams":[]}`, "streams: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			o := sdktest.Options{Config: json.RawMessage(tt.config)}
			res := h.run(o)
			f := res.Failure()
			if f == nil || f.Code != wire.CodeInvalidConfig || f.Retryable || !strings.Contains(f.Message, tt.want) {
				t.Errorf("failure = %v, want a non-retryable invalid_config containing %q", res.Err, tt.want)
			}
			chk := h.check(o)
			if chk.Valid || chk.Failure == nil || !strings.Contains(chk.Failure.Message, tt.want) {
				t.Errorf("check = %+v; want invalid with %q", chk, tt.want)
			}
			if n := len(h.fake.Requests()); n != 0 {
				t.Errorf("%d requests sent with an invalid config", n)
			}
		})
	}
}

// TestFirstRun reads every list across three pages by following Link
// headers, emits each record once, and checkpoints after each
// repository's issues.
func TestFirstRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res := h.run(sdktest.Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := map[string][]string{
		"repos":   {"101", "102", "103", "104", "105"},
		"issues":  {"1005", "1004", "1003", "1002", "1001", "2001", "3001"},
		"starred": {"901", "902", "903", "904", "905"},
	}
	for stream, w := range want {
		if diff := cmp.Diff(w, keys(res, stream)); diff != "" {
			t.Errorf("%s keys (-want +got):\n%s", stream, diff)
		}
	}
	var pr struct {
		ID          int64           `json:"id"`
		PullRequest json.RawMessage `json:"pull_request"`
	}
	if err := json.Unmarshal(res.RecordsOf("issues")[3].Data, &pr); err != nil || pr.ID != 1002 || pr.PullRequest == nil {
		t.Errorf("issue 1002 = %s (%v), want the pull request as GitHub sent it", res.RecordsOf("issues")[3].Data, err)
	}
	var star struct {
		StarredAt time.Time `json:"starred_at"`
		Repo      struct {
			FullName string `json:"full_name"`
		} `json:"repo"`
	}
	if err := json.Unmarshal(res.RecordsOf("starred")[0].Data, &star); err != nil || !star.StarredAt.Equal(t0.Add(-5*24*time.Hour)) || star.Repo.FullName != "others/starreda" {
		t.Errorf("first star = %s (%v), want starred_at and the repository", res.RecordsOf("starred")[0].Data, err)
	}

	reqs := h.fake.Requests()
	wantReqs := []string{
		"/user/repos OK", "/user/repos OK", "/user/repos OK",
		"/repos/octo/alpha/issues OK", "/repos/octo/alpha/issues OK", "/repos/octo/alpha/issues OK",
		"/repos/octo/beta/issues OK", "/repos/acme/gamma/issues OK", "/repos/friend/delta/issues OK",
		"/repos/octo/fork/issues Gone",
		"/user/starred OK", "/user/starred OK", "/user/starred OK",
	}
	if diff := cmp.Diff(wantReqs, statuses(reqs)); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	first := reqs[0].Query
	wantQuery := map[string]string{"affiliation": "owner,collaborator,organization_member", "visibility": "all", "sort": "created", "direction": "asc", "per_page": "2"}
	for k, v := range wantQuery {
		if first.Get(k) != v {
			t.Errorf("/user/repos %s = %q, want %q", k, first.Get(k), v)
		}
	}
	alpha := reqs[3].Query
	if alpha.Get("state") != "all" || alpha.Get("sort") != "updated" || alpha.Get("direction") != "desc" || alpha.Has("since") {
		t.Errorf("first issues query = %v, want state=all sort=updated direction=desc and no since", alpha)
	}
	for _, r := range reqs {
		if r.Header.Get("If-None-Match") != "" {
			t.Errorf("%s: If-None-Match on a first run", r.Path)
		}
	}

	// A checkpoint after the listing, then one after each repository's
	// issues (octo/fork, skipped, changes nothing), then after the stars.
	var cursors [][]string
	for _, cp := range res.Checkpoints {
		var ids []string
		for id := range state(t, cp).Issues {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		cursors = append(cursors, ids)
	}
	wantCursors := [][]string{nil, {"101"}, {"101", "102"}, {"101", "102", "103"}, {"101", "102", "103", "104"}, {"101", "102", "103", "104"}}
	if diff := cmp.Diff(wantCursors, cursors, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("cursors of each checkpoint (-want +got):\n%s", diff)
	}
	// Each checkpoint covers exactly the issues of the repositories done.
	issuesBefore := map[int]int{}
	n := 0
	for _, m := range res.Messages {
		switch m.Kind {
		case wire.KindRecords:
			for _, r := range m.Records {
				if r.Stream == "issues" {
					n++
				}
			}
		case wire.KindCheckpoint:
			issuesBefore[len(issuesBefore)] = n
		}
	}
	if diff := cmp.Diff(map[int]int{0: 0, 1: 5, 2: 6, 3: 7, 4: 7, 5: 7}, issuesBefore); diff != "" {
		t.Errorf("issues sent before each checkpoint (-want +got):\n%s", diff)
	}
	last := state(t, res.LastCheckpoint())
	wantSince := map[string]string{"101": ts(-time.Hour), "102": ts(-30 * time.Minute), "103": ts(-10 * time.Hour), "104": ""}
	if diff := cmp.Diff(wantSince, sinces(last)); diff != "" {
		t.Errorf("since per repository (-want +got):\n%s", diff)
	}
	if last.API != h.url || len(last.Repos) != 3 || len(last.Starred) != 3 {
		t.Errorf("state api %q, %d repository pages, %d starred pages; want %q, 3, 3", last.API, len(last.Repos), len(last.Starred), h.url)
	}

	progress := map[string]wire.Progress{}
	for _, p := range res.Progress {
		progress[p.Stream] = p
	}
	wantProgress := map[string]wire.Progress{
		"repos":   {Stream: "repos", Done: 5, Total: 5, Message: "5 repositories, 5 changed (0 of 3 pages unchanged)"},
		"issues":  {Stream: "issues", Done: 5, Total: 5, Message: "octo/fork: 0 changed (1 repositories without issues skipped)"},
		"starred": {Stream: "starred", Done: 5, Total: 5, Message: "5 starred repositories, 5 changed (0 of 3 pages unchanged)"},
	}
	if diff := cmp.Diff(wantProgress, progress); diff != "" {
		t.Errorf("last progress per stream (-want +got):\n%s", diff)
	}
	if got := len(h.takeSleeps()); got != 0 {
		t.Errorf("%d waits on an unlimited, healthy API", got)
	}
	if !strings.Contains(h.logs.String(), "issues unavailable; repository skipped") {
		t.Error("no warning for the repository with issues disabled")
	}
}

// TestConditionalRequests: the second run asks for every page with its
// ETag; unchanged lists are 304s and emit nothing. Each repository's
// issues are asked for since the newest seen (which returns that newest
// item again, as since is inclusive); from the third run on, an
// unchanged account is nothing but 304s.
func TestConditionalRequests(t *testing.T) {
	t.Parallel()
	for _, linkOn304 := range []bool{false, true} {
		name := "stored page chain"
		if linkOn304 {
			name = "Link header on 304"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.fake.LinkOnNotModified = linkOn304
			first := h.run(sdktest.Options{})
			if first.Err != nil {
				t.Fatal(first.Err)
			}
			h.fake.TakeRequests()

			second := h.run(sdktest.Options{Checkpoint: first.LastCheckpoint()})
			if second.Err != nil {
				t.Fatal(second.Err)
			}
			reqs := h.fake.TakeRequests()
			wantReqs := []string{
				"/user/repos Not Modified", "/user/repos Not Modified", "/user/repos Not Modified",
				"/repos/octo/alpha/issues OK", "/repos/octo/beta/issues OK", "/repos/acme/gamma/issues OK",
				"/repos/friend/delta/issues Not Modified", "/repos/octo/fork/issues Gone",
				"/user/starred Not Modified", "/user/starred Not Modified", "/user/starred Not Modified",
			}
			if diff := cmp.Diff(wantReqs, statuses(reqs)); diff != "" {
				t.Errorf("second run requests (-want +got):\n%s", diff)
			}
			for _, r := range reqs {
				if (r.Status == http.StatusNotModified) != (r.Header.Get("If-None-Match") != "") {
					t.Errorf("%s %v: If-None-Match %q", r.Path, r.Query, r.Header.Get("If-None-Match"))
				}
			}
			if got := keys(second, "repos"); len(got) != 0 {
				t.Errorf("second run re-emitted repositories %v", got)
			}
			if got := keys(second, "starred"); len(got) != 0 {
				t.Errorf("second run re-emitted stars %v", got)
			}
			if diff := cmp.Diff([]string{"1005", "2001", "3001"}, keys(second, "issues")); diff != "" {
				t.Errorf("second run issues: only the newest of each repository, again (-want +got):\n%s", diff)
			}
			last := progressOf(second, "repos")
			if want := "5 repositories, 0 changed (3 of 3 pages unchanged)"; last.Message != want {
				t.Errorf("repos progress %q, want %q", last.Message, want)
			}

			third := h.run(sdktest.Options{Checkpoint: second.LastCheckpoint()})
			if third.Err != nil {
				t.Fatal(third.Err)
			}
			for _, r := range h.fake.TakeRequests() {
				if r.Status != http.StatusNotModified && r.Path != "/repos/octo/fork/issues" {
					t.Errorf("third run: %s %v answered %d, want 304", r.Path, r.Query, r.Status)
				}
			}
			if len(third.Records) != 0 || len(third.Checkpoints) != 0 {
				t.Errorf("third run sent %d records and %d checkpoints, want none", len(third.Records), len(third.Checkpoints))
			}
		})
	}
}

func progressOf(res *sdktest.Result, stream string) wire.Progress {
	var last wire.Progress
	for _, p := range res.Progress {
		if p.Stream == stream {
			last = p
		}
	}
	return last
}

// TestIncrementalIssues: the second run asks each repository for the
// issues updated since the newest it saw, and gets what changed.
func TestIncrementalIssues(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.run(sdktest.Options{})
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	h.fake.TakeRequests()
	h.fake.PutIssue("octo/alpha", githubtest.Issue{ID: 1002, Number: 2, State: "closed", UpdatedAt: t0.Add(time.Hour)})
	h.fake.PutIssue("octo/beta", githubtest.Issue{ID: 2002, Number: 2, UpdatedAt: t0.Add(2 * time.Hour)})

	second := h.run(sdktest.Options{Checkpoint: first.LastCheckpoint()})
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	wantSince := map[string][]string{
		"/repos/octo/alpha/issues":   {ts(-time.Hour)},
		"/repos/octo/beta/issues":    {ts(-30 * time.Minute)},
		"/repos/acme/gamma/issues":   {ts(-10 * time.Hour)},
		"/repos/friend/delta/issues": {"-"},
		"/repos/octo/fork/issues":    {"-"},
	}
	if diff := cmp.Diff(wantSince, issueQueries(h.fake.TakeRequests())); diff != "" {
		t.Errorf("since received per repository (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1002", "1005", "2002", "2001", "3001"}, keys(second, "issues")); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
	var closed struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(second.RecordsOf("issues")[0].Data, &closed); err != nil || closed.State != "closed" {
		t.Errorf("issue 1002 = %s, want it closed", second.RecordsOf("issues")[0].Data)
	}
	want := map[string]string{"101": ts(time.Hour), "102": ts(2 * time.Hour), "103": ts(-10 * time.Hour), "104": ""}
	if diff := cmp.Diff(want, sinces(state(t, second.LastCheckpoint()))); diff != "" {
		t.Errorf("since per repository (-want +got):\n%s", diff)
	}
}

// TestResumeAfterFailure: a run that fails on a repository's issues has
// checkpointed the repositories before it, so the next run asks those
// only for what changed since.
func TestResumeAfterFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.Inject("/repos/octo/beta/issues", githubtest.Status(502), githubtest.Status(502), githubtest.Status(500), githubtest.Status(503))
	failed := h.run(sdktest.Options{})
	f := failed.Failure()
	if f == nil || !f.Retryable || f.Code != wire.CodeConnectorFailed || !strings.Contains(f.Message, "github: API unavailable: GET /repos/octo/beta/issues: 503") {
		t.Fatalf("failure = %v, want a retryable API-unavailable failure", failed.Err)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, h.takeSleeps()); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	cp := failed.LastCheckpoint()
	if diff := cmp.Diff(map[string]string{"101": ts(-time.Hour)}, sinces(state(t, cp))); diff != "" {
		t.Errorf("cursors of the last checkpoint (-want +got):\n%s", diff)
	}
	h.fake.TakeRequests()

	resumed := h.run(sdktest.Options{Checkpoint: cp, Trigger: wire.TriggerRetry})
	if resumed.Err != nil {
		t.Fatal(resumed.Err)
	}
	wantSince := map[string][]string{
		"/repos/octo/alpha/issues":   {ts(-time.Hour)},
		"/repos/octo/beta/issues":    {"-"},
		"/repos/acme/gamma/issues":   {"-"},
		"/repos/friend/delta/issues": {"-"},
		"/repos/octo/fork/issues":    {"-"},
	}
	if diff := cmp.Diff(wantSince, issueQueries(h.fake.TakeRequests())); diff != "" {
		t.Errorf("since received per repository (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1005", "2001", "3001"}, keys(resumed, "issues")); diff != "" {
		t.Errorf("issues of the resumed run (-want +got):\n%s", diff)
	}
}

// TestRateLimits: the connector waits out a rate limit when the wait fits
// in the run's deadline, and fails retryable when it does not.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	f := githubtest.New(token) // for PrimaryRateLimit's clock
	tests := []struct {
		name       string
		path       string
		inject     []githubtest.Response
		timeout    time.Duration
		maxWait    time.Duration
		wantSleeps []time.Duration
		wantErr    string // "" for success; else a retryable failure containing it
	}{
		{"primary 403, reset in a second: waits", "/user/repos",
			[]githubtest.Response{f.PrimaryRateLimit(403, time.Second)}, 0, 0, []time.Duration{2 * time.Second}, ""},
		{"primary 429, reset in a second: waits", "/user/starred",
			[]githubtest.Response{f.PrimaryRateLimit(429, time.Second)}, 0, 0, []time.Duration{2 * time.Second}, ""},
		{"primary, reset already passed: waits the margin", "/user/repos",
			[]githubtest.Response{f.PrimaryRateLimit(403, -time.Minute)}, 0, 0, []time.Duration{time.Second}, ""},
		{"primary, reset beyond the deadline: retryable", "/user/repos",
			[]githubtest.Response{f.PrimaryRateLimit(403, time.Hour)}, 30 * time.Second, 0, nil,
			"github: rate limited: GET /user/repos: primary rate limit spent until 2024-06-01T13:00:00Z; a wait of 1h0m1s would outlast this run's deadline"},
		{"primary, reset beyond MaxWait: retryable", "/user/repos",
			[]githubtest.Response{f.PrimaryRateLimit(403, 30*time.Second)}, 0, 10 * time.Second, nil,
			"longer than the connector's limit of 10s"},
		{"secondary 403 with Retry-After: waits", "/repos/octo/alpha/issues",
			[]githubtest.Response{githubtest.SecondaryRateLimit(403, 3*time.Second)}, 0, 0, []time.Duration{3 * time.Second}, ""},
		{"secondary 429 with Retry-After beyond the deadline: retryable", "/user/repos",
			[]githubtest.Response{githubtest.SecondaryRateLimit(429, 2*time.Minute)}, 30 * time.Second, 0, nil,
			"(secondary rate limit); a wait of 2m0s would outlast"},
		{"secondary 403 without Retry-After: a minute, then two", "/user/repos",
			[]githubtest.Response{githubtest.SecondaryRateLimit(403, 0), githubtest.SecondaryRateLimit(403, 0)}, 10 * time.Minute, 0,
			[]time.Duration{time.Minute, 2 * time.Minute}, ""},
		{"rate limited more often than MaxAttempts: retryable", "/user/repos",
			[]githubtest.Response{
				githubtest.SecondaryRateLimit(403, time.Second), githubtest.SecondaryRateLimit(403, time.Second),
				githubtest.SecondaryRateLimit(403, time.Second), githubtest.SecondaryRateLimit(403, time.Second),
				githubtest.SecondaryRateLimit(403, time.Second),
			}, 0, 0, []time.Duration{time.Second, time.Second, time.Second, time.Second}, "still limited after 4 waits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.c.MaxWait = tt.maxWait
			h.fake.Inject(tt.path, tt.inject...)
			res := h.run(sdktest.Options{Timeout: tt.timeout})
			if diff := cmp.Diff(tt.wantSleeps, h.takeSleeps()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if tt.wantErr == "" {
				if res.Err != nil {
					t.Fatalf("err = %v, want success after waiting", res.Err)
				}
				if got := len(res.Records); got != 17 {
					t.Errorf("%d records, want all 17", got)
				}
				return
			}
			f := res.Failure()
			if f == nil || !f.Retryable || f.Code != wire.CodeConnectorFailed || !strings.Contains(f.Message, tt.wantErr) {
				t.Errorf("failure = %v, want a retryable connector_failed containing %q", res.Err, tt.wantErr)
			}
		})
	}
}

// TestSpentLimitPausesTheNextRequest: a success that spends the primary
// limit makes the next request wait for the reset rather than be refused.
func TestSpentLimitPausesTheNextRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.SetRateLimit(0, time.Second)
	res := h.run(sdktest.Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	n := len(h.fake.Requests())
	want := slices.Repeat([]time.Duration{2 * time.Second}, n-1)
	if diff := cmp.Diff(want, h.takeSleeps()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
}

func TestServerErrors(t *testing.T) {
	t.Parallel()
	retryAfter := githubtest.Status(503)
	retryAfter.Header = http.Header{"Retry-After": {"7"}}
	tests := []struct {
		name       string
		inject     []githubtest.Response
		timeout    time.Duration
		wantSleeps []time.Duration
		wantErr    string // "" for success; else a retryable failure containing it
	}{
		{"502 then success", []githubtest.Response{githubtest.Status(502)}, 0, []time.Duration{time.Second}, ""},
		{"503 with Retry-After", []githubtest.Response{retryAfter}, 0, []time.Duration{7 * time.Second}, ""},
		{"5xx until the attempts run out: retryable",
			[]githubtest.Response{githubtest.Status(500), githubtest.Status(502), githubtest.Status(503), githubtest.Status(504)}, 0,
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, "github: API unavailable: GET /user/repos: 504 Gateway Timeout (4 attempts)"},
		{"backoff beyond the deadline: retryable at once", []githubtest.Response{githubtest.Status(502)}, 5 * time.Second, nil,
			"a wait of 1s would outlast this run's deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.fake.Inject("/user/repos", tt.inject...)
			res := h.run(sdktest.Options{Timeout: tt.timeout})
			if diff := cmp.Diff(tt.wantSleeps, h.takeSleeps()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if tt.wantErr == "" {
				if res.Err != nil {
					t.Fatalf("err = %v, want success after retrying", res.Err)
				}
				if got := len(res.RecordsOf("repos")); got != 5 {
					t.Errorf("%d repositories, want 5", got)
				}
				return
			}
			f := res.Failure()
			if f == nil || !f.Retryable || !strings.Contains(f.Message, tt.wantErr) {
				t.Errorf("failure = %v, want a retryable failure containing %q", res.Err, tt.wantErr)
			}
		})
	}
}

// TestTransportErrors: connection failures and request timeouts are
// retried like 5xx statuses, then fail retryable.
func TestTransportErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     func(t *testing.T) string
		wantErr string
	}{
		{"connection refused", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return "http://" + addr
		}, "connection refused"},
		{"request timeout", func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}, "context deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.c.RequestTimeout = 50 * time.Millisecond
			res := h.run(sdktest.Options{Env: map[string]string{github.TokenEnv: token, github.APIURLEnv: tt.url(t)}})
			f := res.Failure()
			if f == nil || !f.Retryable || !strings.Contains(f.Message, "github: API unavailable: GET /user/repos") ||
				!strings.Contains(f.Message, tt.wantErr) || !strings.HasSuffix(f.Message, "(4 attempts)") {
				t.Errorf("failure = %v, want a retryable API-unavailable failure after 4 attempts, with %q", res.Err, tt.wantErr)
			}
			if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, h.takeSleeps()); diff != "" {
				t.Errorf("backoff (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCredentialRejected: a 401 is a rejected credential, not retried,
// in Run and in Check; a token that cannot travel in a header is rejected
// without a request.
func TestCredentialRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		token        string
		inject       []githubtest.Response
		wantMessage  string
		wantRequests int
	}{
		{"wrong token", "ghp_wrong", nil, "GitHub refused the token: GET /user/repos: 401 Bad credentials", 1},
		{"revoked mid-run", token, nil, "GitHub refused the token: GET /repos/octo/alpha/issues: 401 Unauthorized", -1},
		{"token with a newline", token + "\n", nil, "github: GITHUB_TOKEN holds whitespace or control characters", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tt.wantRequests < 0 {
				h.fake.Inject("/repos/octo/alpha/issues", githubtest.Status(401))
			}
			env := map[string]string{github.TokenEnv: tt.token, github.APIURLEnv: h.url}
			res := h.run(sdktest.Options{Env: env})
			want := &wire.Failure{Code: wire.CodeCredentialRejected, Message: tt.wantMessage}
			if diff := cmp.Diff(want, res.Failure()); diff != "" {
				t.Errorf("run failure (-want +got):\n%s", diff)
			}
			if tt.wantRequests >= 0 {
				if got := len(h.fake.Requests()); got != tt.wantRequests {
					t.Errorf("%d requests, want %d", got, tt.wantRequests)
				}
				if len(res.Records) != 0 {
					t.Errorf("%d records with a rejected token", len(res.Records))
				}
				want.Message = strings.Replace(want.Message, "/user/repos", "/user", 1)
				if diff := cmp.Diff(wire.CheckResult{Failure: want}, h.check(sdktest.Options{Env: env})); diff != "" {
					t.Errorf("check (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestForbidden: a 403 that is not a rate limit names the permission the
// token lacks and is not retried.
func TestForbidden(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.Inject("/user/starred", githubtest.Response{Status: 403, Body: `{"message":"Resource not accessible by personal access token"}`})
	res := h.run(sdktest.Options{})
	want := &wire.Failure{Code: wire.CodeConnectorFailed, Message: "github: forbidden: GET /user/starred: 403 Resource not accessible by personal access token (a fine-grained token needs the account permission Starring: read)"}
	if diff := cmp.Diff(want, res.Failure()); diff != "" {
		t.Errorf("failure (-want +got):\n%s", diff)
	}
	if n := len(h.takeSleeps()); n != 0 {
		t.Errorf("%d waits for a permission error", n)
	}
}

// TestCanary: the token stays out of records, checkpoints, progress,
// errors and logs even when GitHub echoes it back in error bodies.
func TestCanary(t *testing.T) {
	t.Parallel()
	echo := `{"message":"token ` + token + ` is not welcome"}`
	tests := []struct {
		name   string
		path   string
		inject []githubtest.Response
	}{
		{"success", "", nil},
		{"401 echoing the token", "/user/repos", []githubtest.Response{{Status: 401, Body: echo}}},
		{"403 echoing the token", "/user/starred", []githubtest.Response{{Status: 403, Body: echo}}},
		{"5xx echoing the token", "/repos/octo/alpha/issues", slices.Repeat([]githubtest.Response{{Status: 502, Body: echo}}, 4)},
		{"422 echoing the token", "/user/repos", []githubtest.Response{{Status: 422, Body: echo}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tt.path != "" {
				h.fake.Inject(tt.path, tt.inject...)
			}
			res := h.run(sdktest.Options{}) // h.run checks the canary
			if tt.path != "" && res.Err == nil {
				t.Error("run succeeded; the injected answer should fail it")
			}
			h.check(sdktest.Options{}) // and h.check
			if h.logs.String() == "" {
				t.Error("no log output captured; the canary checked nothing")
			}
		})
	}
}

// TestOtherOrigins: the token is never sent outside GITHUB_API_URL's
// scheme and host, whether a Link header or a redirect points there.
func TestOtherOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(other string) http.HandlerFunc
		wantErr string
	}{
		{"Link to another host", func(other string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `<`+other+`/user/repos?page=2>; rel="next"`)
				_, _ = w.Write([]byte(`[]`))
			}
		}, "is outside GITHUB_API_URL's origin"},
		{"redirect to another host", func(other string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, other+r.URL.RequestURI(), http.StatusFound)
			}
		}, "refused"},
		{"malformed Link", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `https://x/?page=2; rel="next"`)
				_, _ = w.Write([]byte(`[]`))
			}
		}, "malformed Link header"},
		{"Link loop", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `<`+r.URL.RequestURI()+`>; rel="next"`)
				_, _ = w.Write([]byte(`[]`))
			}
		}, "loop back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var leaked sync.Map
			other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				leaked.Store(r.URL.Path, r.Header.Get("Authorization"))
			}))
			t.Cleanup(other.Close)
			srv := httptest.NewServer(tt.handler(strings.Replace(other.URL, "127.0.0.1", "localhost", 1)))
			t.Cleanup(srv.Close)
			h := newHarness(t)
			res := h.run(sdktest.Options{Env: map[string]string{github.TokenEnv: token, github.APIURLEnv: srv.URL}})
			f := res.Failure()
			if f == nil || f.Retryable || !strings.Contains(f.Message, tt.wantErr) {
				t.Errorf("failure = %v, want a non-retryable failure containing %q", res.Err, tt.wantErr)
			}
			leaked.Range(func(k, v any) bool {
				t.Errorf("the other origin received %v (Authorization %q)", k, v)
				return true
			})
		})
	}
}

// TestEnterprise: GitHub Enterprise Server, over TLS under /api/v3, with
// the HTTP client injected.
func TestEnterprise(t *testing.T) {
	t.Parallel()
	f := githubtest.New(token)
	f.Prefix = "/api/v3"
	f.Login = "ghe-user"
	seed(f)
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	c := &github.Connector{PageSize: 2, HTTPClient: srv.Client()}
	env := map[string]string{github.TokenEnv: token, github.APIURLEnv: srv.URL + "/api/v3/"}

	chk, err := sdktest.Check(t, c, sdktest.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wire.CheckResult{Valid: true, Identity: "ghe-user"}, chk); diff != "" {
		t.Errorf("check (-want +got):\n%s", diff)
	}
	res := sdktest.Run(t, c, sdktest.Options{Env: env})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := len(res.Records); got != 17 {
		t.Errorf("%d records, want 17", got)
	}
	if st := state(t, res.LastCheckpoint()); st.API != srv.URL+"/api/v3" || !strings.HasPrefix(st.Repos[1].URL, srv.URL+"/api/v3/user/repos?") {
		t.Errorf("state api %q, second page %q; want both under %s/api/v3", st.API, st.Repos[1].URL, srv.URL)
	}

	env[github.APIURLEnv] = srv.URL // the /api/v3 forgotten
	chk, err = sdktest.Check(t, c, sdktest.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if chk.Valid || chk.Failure == nil || !strings.Contains(chk.Failure.Message, "404 Not Found; is GITHUB_API_URL right?") {
		t.Errorf("check against the wrong path = %+v, want a hint at GITHUB_API_URL", chk)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	got := h.check(sdktest.Options{})
	if diff := cmp.Diff(wire.CheckResult{Valid: true, Identity: "octocat"}, got); diff != "" {
		t.Errorf("check (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/user OK"}, statuses(h.fake.Requests())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestInvalidAPIURL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	env := map[string]string{github.TokenEnv: token, github.APIURLEnv: "http://ghe.example.com/api/v3"}
	res := h.run(sdktest.Options{Env: env})
	f := res.Failure()
	if f == nil || f.Retryable || !strings.Contains(f.Message, "github: invalid GITHUB_API_URL: http is accepted only for loopback hosts") {
		t.Errorf("failure = %v, want a non-retryable invalid GITHUB_API_URL", res.Err)
	}
	if chk := h.check(sdktest.Options{Env: env}); chk.Valid {
		t.Error("check valid with an http GITHUB_API_URL")
	}
}

func TestInvalidConnectorSettings(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]*github.Connector{
		"page size":       {PageSize: 101},
		"negative wait":   {MaxWait: -1},
		"negative tries":  {MaxAttempts: -1},
		"negative timout": {RequestTimeout: -1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.c = c
			res := h.run(sdktest.Options{})
			if f := res.Failure(); f == nil || !strings.Contains(f.Message, "github: invalid Connector settings") {
				t.Errorf("failure = %v, want invalid Connector settings", res.Err)
			}
		})
	}
}

// TestAllowlist: with "repos", exactly those repositories are read, each
// with its own ETag; one that does not exist fails the run.
func TestAllowlist(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := github.Config{Repos: []string{"friend/delta", "octo/alpha"}, Streams: []string{"repos", "issues"}}
	first := h.run(sdktest.Options{Config: cfg})
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	if diff := cmp.Diff([]string{"104", "101"}, keys(first, "repos")); diff != "" {
		t.Errorf("repos (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1005", "1004", "1003", "1002", "1001"}, keys(first, "issues")); diff != "" {
		t.Errorf("issues (-want +got):\n%s", diff)
	}
	wantReqs := []string{
		"/repos/friend/delta OK", "/repos/octo/alpha OK", "/repos/friend/delta/issues OK",
		"/repos/octo/alpha/issues OK", "/repos/octo/alpha/issues OK", "/repos/octo/alpha/issues OK",
	}
	if diff := cmp.Diff(wantReqs, statuses(h.fake.TakeRequests())); diff != "" {
		t.Errorf("first run requests (-want +got):\n%s", diff)
	}

	second := h.run(sdktest.Options{Config: cfg, Checkpoint: first.LastCheckpoint()})
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	wantReqs = []string{"/repos/friend/delta Not Modified", "/repos/octo/alpha Not Modified", "/repos/friend/delta/issues Not Modified", "/repos/octo/alpha/issues OK"}
	if diff := cmp.Diff(wantReqs, statuses(h.fake.TakeRequests())); diff != "" {
		t.Errorf("second run requests (-want +got):\n%s", diff)
	}
	if got := keys(second, "repos"); len(got) != 0 {
		t.Errorf("second run re-emitted repositories %v", got)
	}

	cfg.Repos = append(cfg.Repos, "octo/missing")
	res := h.run(sdktest.Options{Config: cfg})
	f := res.Failure()
	if f == nil || f.Retryable || !strings.Contains(f.Message, `repos[2] "octo/missing" does not exist or the token cannot see it`) {
		t.Errorf("failure = %v, want a non-retryable failure naming repos[2]", res.Err)
	}
}

// TestStreams: only the selected streams are read; the repository list is
// read for issues even when repos is not selected, without keeping its
// ETags, so selecting repos later emits them.
func TestStreams(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	issuesOnly := h.run(sdktest.Options{Config: github.Config{Streams: []string{"issues"}}})
	if issuesOnly.Err != nil {
		t.Fatal(issuesOnly.Err)
	}
	if got := len(issuesOnly.RecordsOf("repos")) + len(issuesOnly.RecordsOf("starred")); got != 0 {
		t.Errorf("%d records of unselected streams", got)
	}
	if got := len(issuesOnly.RecordsOf("issues")); got != 7 {
		t.Errorf("%d issues, want 7", got)
	}
	for _, r := range h.fake.TakeRequests() {
		if r.Path == "/user/starred" {
			t.Error("starred read though not selected")
		}
	}

	all := h.run(sdktest.Options{Checkpoint: issuesOnly.LastCheckpoint()})
	if all.Err != nil {
		t.Fatal(all.Err)
	}
	if diff := cmp.Diff([]string{"101", "102", "103", "104", "105"}, keys(all, "repos")); diff != "" {
		t.Errorf("repos once selected (-want +got):\n%s", diff)
	}
	h.fake.TakeRequests()

	starredOnly := h.run(sdktest.Options{Config: github.Config{Streams: []string{"starred"}}, Checkpoint: all.LastCheckpoint()})
	if starredOnly.Err != nil {
		t.Fatal(starredOnly.Err)
	}
	for _, r := range h.fake.TakeRequests() {
		if r.Path != "/user/starred" {
			t.Errorf("starred only: request to %s", r.Path)
		}
	}
}

// TestFullLastPage: a last page that was full is fetched unconditionally,
// so a new item on a page it does not link to yet is found.
func TestFullLastPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.fake.AddRepo(githubtest.Repo{ID: 106, FullName: "octo/six"})
	cfg := github.Config{Streams: []string{"repos"}}
	first := h.run(sdktest.Options{Config: cfg})
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	h.fake.TakeRequests()
	h.fake.AddRepo(githubtest.Repo{ID: 107, FullName: "octo/seven"})
	second := h.run(sdktest.Options{Config: cfg, Checkpoint: first.LastCheckpoint()})
	if second.Err != nil {
		t.Fatal(second.Err)
	}
	wantReqs := []string{"/user/repos Not Modified", "/user/repos Not Modified", "/user/repos OK", "/user/repos OK"}
	if diff := cmp.Diff(wantReqs, statuses(h.fake.TakeRequests())); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"105", "106", "107"}, keys(second, "repos")); diff != "" {
		t.Errorf("repos (-want +got):\n%s", diff)
	}
}

// TestUnusableCheckpoint: a checkpoint from another API, another issue
// filter or in an unknown format is discarded with a warning, and the
// run starts over.
func TestUnusableCheckpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(h *harness, cp []byte) ([]byte, github.Config)
		want   string
	}{
		{"another API", func(h *harness, cp []byte) ([]byte, github.Config) {
			return bytes.ReplaceAll(cp, []byte(h.url), []byte("https://ghe.example.com/api/v3")), github.Config{}
		}, "collected from another GITHUB_API_URL"},
		{"another issues_state", func(h *harness, cp []byte) ([]byte, github.Config) {
			return cp, github.Config{IssuesState: "open"}
		}, "collected with issues_state"},
		{"unreadable", func(*harness, []byte) ([]byte, github.Config) {
			return []byte(`{"v":"one"}`), github.Config{}
		}, "checkpoint unreadable"},
		{"other version", func(*harness, []byte) ([]byte, github.Config) {
			return []byte(`{"v":99}`), github.Config{}
		}, "version 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			first := h.run(sdktest.Options{})
			if first.Err != nil {
				t.Fatal(first.Err)
			}
			h.fake.TakeRequests()
			cp, cfg := tt.mutate(h, first.LastCheckpoint())
			res := h.run(sdktest.Options{Config: cfg, Checkpoint: cp})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			for _, r := range h.fake.TakeRequests() {
				if r.Header.Get("If-None-Match") != "" || r.Query.Has("since") {
					t.Errorf("%s %v sent state from a discarded checkpoint", r.Path, r.Query)
				}
			}
			if !strings.Contains(h.logs.String(), tt.want) {
				t.Errorf("logs lack the warning %q", tt.want)
			}
		})
	}
}

// TestCancelledWait: a run cancelled while it waits out a rate limit
// ends as cancelled, not as a failure the host would retry.
func TestCancelledWait(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	h.c.Sleep = func(sctx context.Context, d time.Duration) error {
		cancel() // the host cancels the run mid-wait
		<-sctx.Done()
		return sctx.Err()
	}
	h.fake.Inject("/user/repos", githubtest.SecondaryRateLimit(403, 10*time.Second))
	res, err := sdktest.RunContext(ctx, h.c, sdktest.Options{Env: h.env(), LogOutput: &h.logs})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", res.Err)
	}
	checkCanary(t, res, h.logs.String())
}

// TestUnexpectedResponses: answers the connector cannot use fail the run,
// not retried, saying what was wrong.
func TestUnexpectedResponses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		resp githubtest.Response
		want string
	}{
		{"list that is not an array", "/user/repos", githubtest.Response{Status: 200, Body: `{"id":1}`}, "GET /user/repos: body is not a JSON array"},
		{"list that is not JSON", "/user/repos", githubtest.Response{Status: 200, Body: `[{"id":`}, "GET /user/repos: unexpected end of JSON input"},
		{"repository with a climbing name", "/user/repos", githubtest.Response{Status: 200, Body: `[{"id":1,"full_name":"octo/.."}]`}, "a repository without a valid id and full_name"},
		{"issue without an id", "/repos/octo/alpha/issues", githubtest.Response{Status: 200, Body: `[{"title":"x"}]`}, "an issue of octo/alpha without an id"},
		{"star without a repository", "/user/starred", githubtest.Response{Status: 200, Body: `[{"id":5,"full_name":"a/b"}]`}, "a starred item without repo.id"},
		{"304 to an unconditional request", "/user/repos", githubtest.Status(304), "304 to an unconditional request"},
		{"422", "/user/repos", githubtest.Status(422), "github: unexpected response: GET /user/repos: 422 Unprocessable Entity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.fake.Inject(tt.path, tt.resp)
			res := h.run(sdktest.Options{})
			f := res.Failure()
			if f == nil || f.Retryable || f.Code != wire.CodeConnectorFailed || !strings.Contains(f.Message, tt.want) {
				t.Errorf("failure = %v, want a non-retryable connector_failed containing %q", res.Err, tt.want)
			}
		})
	}
	t.Run("check without a login", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.fake.Inject("/user", githubtest.Response{Status: 200, Body: `{"id":1}`})
		chk := h.check(sdktest.Options{})
		if chk.Valid || chk.Failure == nil || !strings.Contains(chk.Failure.Message, "GET /user: no login in the response") {
			t.Errorf("check = %+v, want a failure for the missing login", chk)
		}
	})
}
