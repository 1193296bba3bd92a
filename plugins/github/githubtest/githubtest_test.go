package githubtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/plugins/github/githubtest"
	"github.com/google/go-cmp/cmp"
)

const token = "fake-token"

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", "githubtest")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func ids(t *testing.T, body string) []int64 {
	t.Helper()
	var items []struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &items); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var out []int64
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func TestFake(t *testing.T) {
	t.Parallel()
	f := githubtest.New(token)
	f.Prefix = "/api/v3"
	now := githubtest.DefaultNow
	for i := range 3 {
		f.PutIssue("octo/alpha", githubtest.Issue{ID: int64(i + 1), UpdatedAt: now.Add(time.Duration(i) * time.Hour)})
	}
	f.AddRepo(githubtest.Repo{ID: 7, FullName: "octo/alpha"})
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	base := srv.URL + "/api/v3"

	t.Run("pagination", func(t *testing.T) {
		resp, body := get(t, base+"/repos/octo/alpha/issues?per_page=2&sort=updated&direction=asc", nil)
		if diff := cmp.Diff([]int64{1, 2}, ids(t, body)); diff != "" {
			t.Errorf("page 1 (-want +got):\n%s", diff)
		}
		link := resp.Header.Get("Link")
		next := base + "/repos/octo/alpha/issues?direction=asc&page=2&per_page=2&sort=updated"
		if !strings.Contains(link, "<"+next+`>; rel="next"`) {
			t.Errorf("Link %q lacks next %s", link, next)
		}
		resp, body = get(t, next, nil)
		if diff := cmp.Diff([]int64{3}, ids(t, body)); diff != "" {
			t.Errorf("page 2 (-want +got):\n%s", diff)
		}
		if link := resp.Header.Get("Link"); strings.Contains(link, `rel="next"`) || !strings.Contains(link, `rel="prev"`) {
			t.Errorf("last page Link %q", link)
		}
	})
	t.Run("since and default order", func(t *testing.T) {
		_, body := get(t, base+"/repos/octo/alpha/issues?state=all&since="+now.Add(time.Hour).Format(time.RFC3339), nil)
		if diff := cmp.Diff([]int64{3, 2}, ids(t, body)); diff != "" {
			t.Errorf("since (-want +got):\n%s", diff)
		}
	})
	t.Run("etag", func(t *testing.T) {
		resp, _ := get(t, base+"/repos/octo/alpha", nil)
		etag := resp.Header.Get("ETag")
		if !strings.HasPrefix(etag, `W/"`) {
			t.Fatalf("ETag %q", etag)
		}
		resp, body := get(t, base+"/repos/octo/alpha", map[string]string{"If-None-Match": etag})
		if resp.StatusCode != http.StatusNotModified || body != "" {
			t.Errorf("conditional request: %d %q, want an empty 304", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Date"); got != now.Format(http.TimeFormat) {
			t.Errorf("Date %q, want the fake's clock", got)
		}
	})
	t.Run("auth, user agent, prefix, injection", func(t *testing.T) {
		resp, _ := get(t, base+"/user", map[string]string{"Authorization": "Bearer other"})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("wrong token: %d", resp.StatusCode)
		}
		resp, _ = get(t, base+"/user", map[string]string{"User-Agent": ""})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("no User-Agent: %d", resp.StatusCode)
		}
		resp, _ = get(t, srv.URL+"/user", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("outside the prefix: %d", resp.StatusCode)
		}
		f.Inject("/user", f.PrimaryRateLimit(http.StatusForbidden, time.Minute))
		resp, _ = get(t, base+"/user", nil)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-RateLimit-Reset") != "1717243260" {
			t.Errorf("injected: %d reset %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Reset"))
		}
		resp, body := get(t, base+"/user", nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"login":"octocat"`) {
			t.Errorf("after the injection: %d %s", resp.StatusCode, body)
		}
	})
	if got := len(f.TakeRequests()); got != 10 {
		t.Errorf("%d requests recorded, want 10", got)
	}
}
