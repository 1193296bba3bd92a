package github

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// StateVersion is the version of the checkpoint format. A checkpoint of
// another version is discarded, and the run starts over.
const StateVersion = 1

// State is the connector's checkpoint: what the next run needs to ask
// GitHub only for what changed. The host stores it opaquely; it is
// exported to document the format.
//
// A checkpoint whose API or IssuesState differ from the run's is
// discarded: ETags and since values of another server, or of another
// issue filter, would hide data.
type State struct {
	// V is StateVersion.
	V int `json:"v"`
	// API is the GITHUB_API_URL the state was collected from.
	API string `json:"api"`
	// IssuesState is the config's issues_state the since values were
	// computed under.
	IssuesState string `json:"issues_state,omitempty"`
	// Repos are the pages of the repository list (or, with a "repos"
	// allowlist, one page per repository), with the repositories on each,
	// so an unchanged page (a 304) still yields its repositories.
	Repos []Page `json:"repos,omitempty"`
	// Issues is the cursor of each repository's issues, by repository id
	// (stable across renames and transfers).
	Issues map[string]*Cursor `json:"issues,omitempty"`
	// Starred are the pages of GET /user/starred.
	Starred []Page `json:"starred,omitempty"`
}

// Page is one page of a list as last fetched: enough to ask for it again
// conditionally and to follow the list past it when it is unchanged.
type Page struct {
	// URL is the page's absolute URL. The page after it is the next entry
	// of the list.
	URL string `json:"url"`
	// ETag is GitHub's ETag for the page, sent back as If-None-Match.
	ETag string `json:"etag,omitempty"`
	// N is the number of items on the page. A last page that was full is
	// fetched unconditionally: a new item would go on a page it does not
	// link to, and GitHub's ETag covers the body, not the Link header.
	N int `json:"n"`
	// Repos are the repositories on the page (repository lists only).
	Repos []RepoRef `json:"repos,omitempty"`
}

// RepoRef names a repository.
type RepoRef struct {
	ID       int64  `json:"id"`
	FullName string `json:"full_name"`
}

// Cursor is where one repository's issues stand.
type Cursor struct {
	// Since is the newest updated_at seen: the next run asks for issues
	// updated at or after it. GitHub's since is inclusive, so an item
	// updated in the same second as the newest seen is not missed; the
	// price is fetching the newest item again. Zero means "from the
	// beginning".
	Since time.Time `json:"since,omitzero"`
	// Pages are the pages of the last request, kept only when its since
	// equals Since (otherwise the next request has another URL and their
	// ETags cannot match).
	Pages []Page `json:"pages,omitempty"`
}

// newState returns the empty state of a first run.
func newState(api, issuesState string) *State {
	return &State{V: StateVersion, API: api, IssuesState: issuesState, Issues: map[string]*Cursor{}}
}

// usable reports whether s was collected under the same API and issue
// filter and is internally consistent. The checkpoint is our own output,
// but it comes back through the host: checking it costs little and keeps a
// corrupt one from steering requests.
func (s *State) usable(api, issuesState string) error {
	switch {
	case s.V != StateVersion:
		return fmt.Errorf("version %d, not %d", s.V, StateVersion)
	case s.API != api:
		return fmt.Errorf("collected from another GITHUB_API_URL")
	case s.IssuesState != issuesState:
		return fmt.Errorf("collected with issues_state %q, now %q", s.IssuesState, issuesState)
	}
	for _, p := range s.Repos {
		for _, r := range p.Repos {
			if r.ID <= 0 || !validFullName(r.FullName) {
				return fmt.Errorf("invalid repository %d %q", r.ID, r.FullName)
			}
		}
	}
	for k, c := range s.Issues {
		if id, err := strconv.ParseInt(k, 10, 64); err != nil || id <= 0 || c == nil {
			return fmt.Errorf("invalid issues cursor %q", k)
		}
	}
	return nil
}

// encode returns s as JSON of at most max bytes. When s is larger it drops
// what is cheapest to lose first — the ETags of issue pages, then of
// starred pages, then the repository pages — so a very large account costs
// more requests instead of failing its runs. The since values are never
// dropped: without them every run would fetch every issue.
func (s *State) encode(max int) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil || len(b) <= max {
		return b, err
	}
	for _, c := range s.Issues {
		c.Pages = nil
	}
	if b, err = json.Marshal(s); err != nil || len(b) <= max {
		return b, err
	}
	s.Starred = nil
	if b, err = json.Marshal(s); err != nil || len(b) <= max {
		return b, err
	}
	s.Repos = nil
	if b, err = json.Marshal(s); err != nil || len(b) <= max {
		return b, err
	}
	return nil, fmt.Errorf("%w: %d bytes of issue cursors, limit %d", ErrStateTooLarge, len(b), max)
}
