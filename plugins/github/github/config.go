package github

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Config defaults, applied to the fields a config leaves out.
const (
	DefaultAffiliation = "owner,collaborator,organization_member"
	DefaultVisibility  = "all"
	DefaultIssuesState = "all"
)

// MaxRepos bounds the "repos" allowlist.
const MaxRepos = 1000

// affiliations in the canonical order Normalize writes them: the order
// does not matter to GitHub, but a stable query string keeps the stored
// ETags of the repository list valid when an operator reorders the list.
var affiliations = []string{"owner", "collaborator", "organization_member"}

// repoRE matches "owner/name". GitHub owners are letters, digits and
// hyphens, repository names also take '.' and '_'; '_' and '.' are
// accepted in owners too, for GitHub Enterprise Server logins.
var repoRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$`)

// Config is a github connection's config. ConfigSchema documents the same
// fields for operators; Run and Check decode it strictly (an unknown field
// is an error) and call Validate.
type Config struct {
	// Affiliation selects the repositories of GET /user/repos: a
	// comma-separated subset of owner, collaborator, organization_member.
	// Empty means DefaultAffiliation.
	Affiliation string `json:"affiliation,omitempty"`
	// Visibility is all, public or private. Empty means DefaultVisibility.
	Visibility string `json:"visibility,omitempty"`
	// Repos, when set, replaces the listing: exactly these "owner/name"
	// repositories are read, each with GET /repos/{owner}/{name}, whether
	// or not the token's owner is affiliated with them. It cannot be
	// combined with Affiliation or Visibility, which would be ignored.
	Repos []string `json:"repos,omitempty"`
	// IssuesState is open, closed or all. Empty means DefaultIssuesState.
	// With open or closed an issue that leaves that state is not fetched
	// again, so its record keeps its old state: all is the one that keeps
	// records true.
	IssuesState string `json:"issues_state,omitempty"`
	// Streams selects the streams to collect among repos, issues and
	// starred. Empty means all three. The repository list is read for
	// issues even when repos is not selected.
	Streams []string `json:"streams,omitempty"`
}

// Normalize fills the defaults in and writes Affiliation in canonical
// order. It leaves values Validate would refuse as they are.
func (c *Config) Normalize() {
	if c.Affiliation == "" && len(c.Repos) == 0 {
		c.Affiliation = DefaultAffiliation
	}
	if c.Visibility == "" && len(c.Repos) == 0 {
		c.Visibility = DefaultVisibility
	}
	if c.IssuesState == "" {
		c.IssuesState = DefaultIssuesState
	}
	if len(c.Streams) == 0 {
		c.Streams = []string{StreamRepos, StreamIssues, StreamStarred}
	}
	if c.Affiliation != "" {
		parts := strings.Split(c.Affiliation, ",")
		var canon []string
		for _, a := range affiliations {
			if slices.Contains(parts, a) {
				canon = append(canon, a)
			}
		}
		if len(canon) == len(parts) {
			c.Affiliation = strings.Join(canon, ",")
		}
	}
}

// Validate reports the first rule c breaks. It accepts a config before or
// after Normalize.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if len(c.Repos) > 0 && (c.Affiliation != "" || c.Visibility != "") {
		return bad("repos cannot be combined with affiliation or visibility: with repos, exactly the listed repositories are read")
	}
	if c.Affiliation != "" {
		seen := map[string]bool{}
		for _, a := range strings.Split(c.Affiliation, ",") {
			if !slices.Contains(affiliations, a) {
				return bad("affiliation: %q is not owner, collaborator or organization_member (comma-separated, no spaces)", a)
			}
			if seen[a] {
				return bad("affiliation: %q is listed twice", a)
			}
			seen[a] = true
		}
	}
	switch c.Visibility {
	case "", "all", "public", "private":
	default:
		return bad("visibility: %q is not all, public or private", c.Visibility)
	}
	switch c.IssuesState {
	case "", "all", "open", "closed":
	default:
		return bad("issues_state: %q is not all, open or closed", c.IssuesState)
	}
	if len(c.Repos) > MaxRepos {
		return bad("repos: more than %d repositories", MaxRepos)
	}
	seen := map[string]bool{}
	for i, r := range c.Repos {
		if !validFullName(r) {
			return bad("repos[%d]: %q is not \"owner/name\"", i, r)
		}
		k := strings.ToLower(r)
		if seen[k] {
			return bad("repos[%d]: %q is listed twice", i, r)
		}
		seen[k] = true
	}
	if c.Streams != nil && len(c.Streams) == 0 {
		return bad("streams: empty; leave it out to collect every stream")
	}
	seenStream := map[string]bool{}
	for i, s := range c.Streams {
		switch s {
		case StreamRepos, StreamIssues, StreamStarred:
		default:
			return bad("streams[%d]: %q is not repos, issues or starred", i, s)
		}
		if seenStream[s] {
			return bad("streams[%d]: %q is listed twice", i, s)
		}
		seenStream[s] = true
	}
	return nil
}

// wants reports whether stream is selected. Call it after Normalize.
func (c *Config) wants(stream string) bool { return slices.Contains(c.Streams, stream) }

// validFullName reports whether s is "owner/name" and safe to put in a URL
// path: "." and ".." would make the path climb.
func validFullName(s string) bool {
	if !repoRE.MatchString(s) {
		return false
	}
	owner, name, _ := strings.Cut(s, "/")
	return owner != "." && owner != ".." && name != "." && name != ".."
}

// ConfigSchema is the JSON Schema of Config, served in the manifest.
const ConfigSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "github connection config",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "affiliation": {
      "description": "Which repositories of GET /user/repos to read: a comma-separated subset of owner, collaborator, organization_member.",
      "type": "string",
      "pattern": "^(owner|collaborator|organization_member)(,(owner|collaborator|organization_member))*$",
      "default": "owner,collaborator,organization_member"
    },
    "visibility": {
      "description": "Which repositories of GET /user/repos to read by visibility.",
      "enum": ["all", "public", "private"],
      "default": "all"
    },
    "repos": {
      "description": "Read exactly these repositories (owner/name) instead of listing the token owner's; cannot be combined with affiliation or visibility.",
      "type": "array",
      "maxItems": 1000,
      "uniqueItems": true,
      "items": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$"}
    },
    "issues_state": {
      "description": "Which issues and pull requests to read. With open or closed, an item that leaves that state keeps its old record; all keeps records true.",
      "enum": ["all", "open", "closed"],
      "default": "all"
    },
    "streams": {
      "description": "The streams to collect.",
      "type": "array",
      "minItems": 1,
      "uniqueItems": true,
      "items": {"enum": ["repos", "issues", "starred"]},
      "default": ["repos", "issues", "starred"]
    }
  },
  "allOf": [
    {"not": {"required": ["repos", "affiliation"]}},
    {"not": {"required": ["repos", "visibility"]}}
  ]
}`
