package github

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/hashicorp/go-hclog"
)

// syncer is one run: the client, the config, and the state it advances
// and checkpoints.
type syncer struct {
	r   *sdk.Run
	cl  *client
	cfg *Config
	st  *State
	log hclog.Logger
	// last is the last checkpoint sent (or received): an unchanged state
	// is not sent again.
	last []byte
}

func (s *syncer) run(ctx context.Context) error {
	var repos []RepoRef
	if s.cfg.wants(StreamRepos) || s.cfg.wants(StreamIssues) {
		var err error
		if repos, err = s.repos(ctx); err != nil {
			return err
		}
	} else {
		s.st.Repos = nil
	}
	if s.cfg.wants(StreamIssues) {
		if err := s.issues(ctx, repos); err != nil {
			return err
		}
	}
	if s.cfg.wants(StreamStarred) {
		if err := s.starred(ctx); err != nil {
			return err
		}
	} else {
		s.st.Starred = nil
	}
	return s.checkpoint()
}

// repos reads the repository list (or the allowlisted repositories),
// emits the changed ones when the repos stream is selected, and returns
// them all.
func (s *syncer) repos(ctx context.Context) ([]RepoRef, error) {
	emit := s.cfg.wants(StreamRepos)
	var (
		refs               []RepoRef
		pages              []Page
		emitted, unchanged int
	)
	seen := map[int64]bool{}
	add := func(ref RepoRef) {
		// GitHub pages by offset: a repository created, deleted or
		// transferred during the walk shifts the others, so one may come
		// twice (or be missed until the next run).
		if !seen[ref.ID] {
			seen[ref.ID] = true
			refs = append(refs, ref)
		}
	}
	visit := func(raw json.RawMessage) (RepoRef, error) {
		ref, err := decodeRepo(raw)
		if err != nil {
			return RepoRef{}, err
		}
		add(ref)
		if emit {
			emitted++
			return ref, s.r.Emit(StreamRepos, strconv.FormatInt(ref.ID, 10), raw)
		}
		return ref, nil
	}
	var err error
	if len(s.cfg.Repos) > 0 {
		pages, unchanged, err = s.allowlist(ctx, visit, add)
	} else {
		q := url.Values{
			"affiliation": {s.cfg.Affiliation},
			"visibility":  {s.cfg.Visibility},
			// Oldest first: a new repository lands on the last page,
			// so the pages before it keep their ETags.
			"sort":      {"created"},
			"direction": {"asc"},
			"per_page":  {strconv.Itoa(s.cl.pageSize)},
		}
		pages, unchanged, err = s.cl.list(ctx, s.cl.url("/user/repos", q), MediaType, s.st.Repos,
			func(items []json.RawMessage, old *Page) (Page, error) {
				var p Page
				if old != nil {
					for _, ref := range old.Repos {
						add(ref)
					}
					return p, nil
				}
				for _, raw := range items {
					ref, err := visit(raw)
					if err != nil {
						return p, err
					}
					p.Repos = append(p.Repos, ref)
				}
				return p, nil
			})
	}
	if err != nil {
		return nil, err
	}
	if !emit {
		// Records were not emitted, so an ETag must not claim the host has
		// them: selecting the repos stream later fetches them again.
		for i := range pages {
			pages[i].ETag = ""
		}
	}
	s.st.Repos = pages
	// Cursors of repositories no longer listed would only grow the state.
	for k := range s.st.Issues {
		id, _ := strconv.ParseInt(k, 10, 64)
		if !seen[id] {
			delete(s.st.Issues, k)
		}
	}
	if err := s.checkpoint(); err != nil {
		return nil, err
	}
	s.log.Info("repositories listed", "repositories", len(refs), "emitted", emitted, "pages", len(pages), "unchanged_pages", unchanged)
	if emit {
		msg := fmt.Sprintf("%d repositories, %d changed (%d of %d pages unchanged)", len(refs), emitted, unchanged, len(pages))
		if err := s.r.Progress(StreamRepos, int64(len(refs)), int64(len(refs)), msg); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

// allowlist reads each repository of the config's "repos" with
// GET /repos/{owner}/{name}, conditionally on its stored ETag.
func (s *syncer) allowlist(ctx context.Context, visit func(json.RawMessage) (RepoRef, error), add func(RepoRef)) ([]Page, int, error) {
	stored := map[string]*Page{}
	for i := range s.st.Repos {
		stored[s.st.Repos[i].URL] = &s.st.Repos[i]
	}
	var pages []Page
	unchanged := 0
	for i, full := range s.cfg.Repos {
		owner, name, _ := strings.Cut(full, "/")
		u := s.cl.url("/repos/"+url.PathEscape(owner)+"/"+url.PathEscape(name), nil)
		old := stored[u]
		etag := ""
		if old != nil && len(old.Repos) == 1 {
			etag = old.ETag
		}
		resp, err := s.cl.get(ctx, u, etag, MediaType)
		if errors.Is(err, ErrNotFound) {
			return nil, 0, fmt.Errorf("repos[%d] %q does not exist or the token cannot see it: %w", i, full, err)
		}
		if err != nil {
			return nil, 0, err
		}
		if resp.status == http.StatusNotModified {
			add(old.Repos[0])
			p := *old
			if e := resp.header.Get("ETag"); e != "" {
				p.ETag = e
			}
			pages = append(pages, p)
			unchanged++
			continue
		}
		ref, err := visit(resp.body)
		if err != nil {
			return nil, 0, err
		}
		pages = append(pages, Page{URL: u, ETag: resp.header.Get("ETag"), N: 1, Repos: []RepoRef{ref}})
	}
	return pages, unchanged, nil
}

// issues reads the issues and pull requests of each repository updated
// since its cursor, newest first, and checkpoints after each repository.
//
// Newest first, because GitHub pages by offset: an item updated during
// the walk moves to the front, so later items shift back and one may be
// seen twice (harmless: records are upserted) but none is skipped, and
// the moved item is newer than the since this run records, so the next
// run gets it. Oldest first would shift items forward, past the walk.
func (s *syncer) issues(ctx context.Context, repos []RepoRef) error {
	skipped := 0
	for i, ref := range repos {
		key := strconv.FormatInt(ref.ID, 10)
		cur := s.st.Issues[key]
		if cur == nil {
			cur = &Cursor{}
		}
		q := url.Values{
			"state":     {s.cfg.IssuesState},
			"sort":      {"updated"},
			"direction": {"desc"},
			"per_page":  {strconv.Itoa(s.cl.pageSize)},
		}
		if !cur.Since.IsZero() {
			q.Set("since", cur.Since.UTC().Format(time.RFC3339))
		}
		owner, name, _ := strings.Cut(ref.FullName, "/")
		first := s.cl.url("/repos/"+url.PathEscape(owner)+"/"+url.PathEscape(name)+"/issues", q)
		newest, changed := cur.Since, 0
		pages, unchanged, err := s.cl.list(ctx, first, MediaType, cur.Pages,
			func(items []json.RawMessage, _ *Page) (Page, error) {
				for _, raw := range items {
					var it struct {
						ID        int64     `json:"id"`
						UpdatedAt time.Time `json:"updated_at"`
					}
					if err := json.Unmarshal(raw, &it); err != nil || it.ID <= 0 {
						return Page{}, fmt.Errorf("%w: an issue of %s without an id or updated_at", ErrUnexpectedResponse, ref.FullName)
					}
					if err := s.r.Emit(StreamIssues, strconv.FormatInt(it.ID, 10), raw); err != nil {
						return Page{}, err
					}
					changed++
					if it.UpdatedAt.After(newest) {
						newest = it.UpdatedAt
					}
				}
				return Page{}, nil
			})
		switch {
		case errors.Is(err, ErrNotFound):
			// Issues disabled (410), or the repository went away since
			// it was listed (404): nothing to read, nothing to fail for.
			// The cursor stays, in case it comes back.
			skipped++
			s.log.Warn("issues unavailable; repository skipped", "repo", ref.FullName, "error", err.Error())
		case err != nil:
			return err
		default:
			next := &Cursor{Since: newest.UTC()}
			if newest.Equal(cur.Since) {
				// The next request will have this one's URL: keep the
				// ETags, so an unchanged repository is a 304.
				next.Pages = pages
			}
			s.st.Issues[key] = next
			s.log.Debug("issues read", "repo", ref.FullName, "changed", changed, "pages", len(pages), "unchanged_pages", unchanged)
		}
		if err := s.checkpoint(); err != nil {
			return err
		}
		msg := fmt.Sprintf("%s: %d changed", ref.FullName, changed)
		if skipped > 0 {
			msg += fmt.Sprintf(" (%d repositories without issues skipped)", skipped)
		}
		if err := s.r.Progress(StreamIssues, int64(i+1), int64(len(repos)), msg); err != nil {
			return err
		}
	}
	return nil
}

// starred reads the repositories the token's owner starred, oldest star
// first, so a new star lands on the last page and the pages before it
// keep their ETags.
func (s *syncer) starred(ctx context.Context) error {
	q := url.Values{
		"sort":      {"created"},
		"direction": {"asc"},
		"per_page":  {strconv.Itoa(s.cl.pageSize)},
	}
	total, changed := 0, 0
	pages, unchanged, err := s.cl.list(ctx, s.cl.url("/user/starred", q), StarMediaType, s.st.Starred,
		func(items []json.RawMessage, old *Page) (Page, error) {
			if old != nil {
				total += old.N
				return Page{}, nil
			}
			for _, raw := range items {
				var it struct {
					Repo struct {
						ID int64 `json:"id"`
					} `json:"repo"`
				}
				if err := json.Unmarshal(raw, &it); err != nil || it.Repo.ID <= 0 {
					return Page{}, fmt.Errorf("%w: a starred item without repo.id (was %s honoured?)", ErrUnexpectedResponse, StarMediaType)
				}
				if err := s.r.Emit(StreamStarred, strconv.FormatInt(it.Repo.ID, 10), raw); err != nil {
					return Page{}, err
				}
				total++
				changed++
			}
			return Page{}, nil
		})
	if err != nil {
		return err
	}
	s.st.Starred = pages
	if err := s.checkpoint(); err != nil {
		return err
	}
	msg := fmt.Sprintf("%d starred repositories, %d changed (%d of %d pages unchanged)", total, changed, unchanged, len(pages))
	return s.r.Progress(StreamStarred, int64(total), int64(total), msg)
}

// checkpoint sends the state unless it is the one last sent.
func (s *syncer) checkpoint() error {
	b, err := s.st.encode(sdk.MaxCheckpointBytes)
	if err != nil {
		return err
	}
	if bytes.Equal(b, s.last) {
		return nil
	}
	s.last = b
	return s.r.Checkpoint(b)
}

// decodeRepo reads the id and full name of a repository object.
func decodeRepo(raw json.RawMessage) (RepoRef, error) {
	var r RepoRef
	if err := json.Unmarshal(raw, &r); err != nil || r.ID <= 0 || !validFullName(r.FullName) {
		return RepoRef{}, fmt.Errorf("%w: a repository without a valid id and full_name", ErrUnexpectedResponse)
	}
	return r, nil
}
