package github_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/connhost/connhost/plugins/github/github"
	"github.com/connhost/connhost/plugins/github/githubtest"
	"github.com/connhost/connhost/sdk/sdktest"
)

// Example runs the connector twice against the fake GitHub API, the way
// the host runs it on a schedule: the second run resumes from the first
// one's checkpoint and asks only for what changed.
func Example() {
	f := githubtest.New("example-token")
	f.AddRepo(githubtest.Repo{ID: 1, FullName: "octo/hello"})
	f.PutIssue("octo/hello", githubtest.Issue{ID: 10, Number: 1, Title: "Add a README", UpdatedAt: githubtest.DefaultNow})
	f.AddStar(githubtest.Star{StarredAt: githubtest.DefaultNow, Repo: githubtest.Repo{ID: 2, FullName: "golang/go"}})
	srv := httptest.NewServer(f)
	defer srv.Close()

	o := sdktest.Options{Env: map[string]string{
		github.TokenEnv:  "example-token",
		github.APIURLEnv: srv.URL,
	}}
	first, err := sdktest.RunContext(context.Background(), github.New(), o)
	if err != nil || first.Err != nil {
		fmt.Println(err, first.Err)
		return
	}
	for _, r := range first.Records {
		fmt.Println("record", r.Stream, r.Key)
	}
	f.TakeRequests()

	o.Checkpoint = first.LastCheckpoint()
	if _, err := sdktest.RunContext(context.Background(), github.New(), o); err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range f.TakeRequests() {
		fmt.Println("GET", r.Path, r.Query.Get("since"), r.Status)
	}
	// Output:
	// record repos 1
	// record issues 10
	// record starred 2
	// GET /user/repos  304
	// GET /repos/octo/hello/issues 2024-06-01T12:00:00Z 200
	// GET /user/starred  304
}
