package github

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseLink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  string
		want    []link
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"github", `<https://api.github.com/user/repos?page=2&per_page=100>; rel="next", <https://api.github.com/user/repos?page=5&per_page=100>; rel="last"`,
			[]link{
				{URL: "https://api.github.com/user/repos?page=2&per_page=100", Rel: []string{"next"}},
				{URL: "https://api.github.com/user/repos?page=5&per_page=100", Rel: []string{"last"}},
			}, false},
		{"token rel, no spaces", `<a>;rel=next,<b>;rel=last`, []link{{URL: "a", Rel: []string{"next"}}, {URL: "b", Rel: []string{"last"}}}, false},
		{"several rels, upper case", `<a>; rel="Next  LAST"`, []link{{URL: "a", Rel: []string{"next", "last"}}}, false},
		{"first rel wins", `<a>; rel="prev"; rel="next"`, []link{{URL: "a", Rel: []string{"prev"}}}, false},
		{"other params skipped", `<a>; title="x, y; z"; rel=next; type=text/html`, []link{{URL: "a", Rel: []string{"next"}}}, false},
		{"escaped quote", `<a>; title="say \"hi\""; rel="next"`, []link{{URL: "a", Rel: []string{"next"}}}, false},
		{"comma and semicolon in URL", `<https://x/?a=1,2;b>; rel="next"`, []link{{URL: "https://x/?a=1,2;b", Rel: []string{"next"}}}, false},
		{"empty elements", ` , <a>; rel=next ,, `, []link{{URL: "a", Rel: []string{"next"}}}, false},
		{"no rel", `<a>`, []link{{URL: "a"}}, false},
		{"param without value", `<a>; crossorigin; rel=next`, []link{{URL: "a", Rel: []string{"next"}}}, false},
		{"trailing semicolon", `<a>; rel=next;`, []link{{URL: "a", Rel: []string{"next"}}}, false},
		{"tabs", "<a>\t;\trel=next", []link{{URL: "a", Rel: []string{"next"}}}, false},
		{"missing <", `a; rel=next`, nil, true},
		{"unterminated <", `<a; rel=next`, nil, true},
		{"garbage after URL", `<a> x`, nil, true},
		{"unterminated quote", `<a>; rel="next`, nil, true},
		{"dangling escape", `<a>; rel="next\`, nil, true},
		{"missing value", `<a>; rel=`, nil, true},
		{"missing name", `<a>; =next`, nil, true},
		{"too many links", strings.Repeat("<a>, ", maxLinks+1), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLink(tt.header)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseLink(%q) error = %v, want error %v", tt.header, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errLinkSyntax) {
				t.Errorf("error %v does not wrap errLinkSyntax", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parseLink(%q) (-want +got):\n%s", tt.header, diff)
			}
		})
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	links := []link{{URL: "p", Rel: []string{"prev"}}, {URL: "n", Rel: []string{"last", "next"}}, {URL: "n2", Rel: []string{"next"}}}
	if got := nextLink(links); got != "n" {
		t.Errorf("nextLink = %q, want n", got)
	}
	if got := nextLink(links[:1]); got != "" {
		t.Errorf("nextLink without next = %q, want empty", got)
	}
}

// formatLinks writes links back as a Link header.
func formatLinks(links []link) string {
	var parts []string
	for _, l := range links {
		s := "<" + l.URL + ">"
		if len(l.Rel) > 0 {
			r := strings.Join(l.Rel, " ")
			r = strings.ReplaceAll(r, `\`, `\\`)
			r = strings.ReplaceAll(r, `"`, `\"`)
			s += `; rel="` + r + `"`
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// FuzzParseLink: a Link header is untrusted input. parseLink must not
// panic, what it returns must be well formed, and formatting it back must
// parse to the same links.
func FuzzParseLink(f *testing.F) {
	for _, s := range []string{
		"",
		`<https://api.github.com/user/repos?page=2>; rel="next", <https://api.github.com/user/repos?page=5>; rel="last"`,
		`<a>;rel=next,<b>;rel="prev first"`,
		`<a>; title="x \" y"; rel=next`,
		`<a>; rel`,
		`<<>>; rel=next`,
		" , ,<a>\t;\tREL=Next;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		links, err := parseLink(h)
		if err != nil {
			if !errors.Is(err, errLinkSyntax) {
				t.Fatalf("error %v does not wrap errLinkSyntax", err)
			}
			return
		}
		if len(links) > maxLinks {
			t.Fatalf("%d links, limit %d", len(links), maxLinks)
		}
		for _, l := range links {
			if strings.Contains(l.URL, ">") {
				t.Fatalf("URL %q holds '>'", l.URL)
			}
			for _, r := range l.Rel {
				if r == "" || r != asciiLower(r) || strings.ContainsAny(r, " \t") {
					t.Fatalf("rel %q is empty, not lower case, or holds a space", r)
				}
			}
		}
		again, err := parseLink(formatLinks(links))
		if err != nil {
			t.Fatalf("reparse of %q: %v", formatLinks(links), err)
		}
		if diff := cmp.Diff(links, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
