// Package github is the GitHub connector: it collects, for the owner of a
// GitHub token, the repositories they can see, the issues and pull
// requests of those repositories, and the repositories they starred. The
// plugin binary is plugins/github, whose main is
//
//	func main() { sdk.Serve(github.New()) }
//
// It is built only on the public SDK (package sdk, sdk/manifest, and
// sdk/sdktest in tests) and is the worked example of a real connector;
// README.md beside the plugin walks through it for connector authors.
//
// # Manifest
//
// Key "github", auth static_secret requiring GITHUB_TOKEN, env_passthrough
// GITHUB_API_URL (default https://api.github.com; for GitHub Enterprise
// Server, https://HOST/api/v3), default schedule "0 */6 * * *" with
// auto-enrolment, and three streams:
//
//   - repos: GET /user/repos (or, with a "repos" allowlist,
//     GET /repos/{owner}/{name} for each), keyed by "id", the repository
//     object as GitHub returns it;
//   - issues: GET /repos/{owner}/{name}/issues for every repository, which
//     returns issues and pull requests alike, keyed by "id", the issue
//     object as GitHub returns it (a pull request has "pull_request");
//   - starred: GET /user/starred, keyed by "repo.id", as
//     {"starred_at": "…", "repo": {…}}.
//
// # Why starred, not stargazers
//
// connhost collects a person's own data. The repositories a person starred
// are theirs: bookmarks they chose, with the time they chose them
// (starred_at), in one list however many repositories they own. The
// stargazers of their repositories are the opposite: profiles of other
// people, one list per repository, growing with others' activity, and
// mostly a popularity count the repository object already carries
// (stargazers_count). So the connector reads starred, with the star media
// type (application/vnd.github.star+json, the documented way to get
// starred_at) for that one request; every other request sends
// application/vnd.github+json.
//
// # Config
//
// A JSON object, decoded strictly (ConfigSchema is its JSON Schema):
//
//	{"affiliation": "owner,collaborator,organization_member",
//	 "visibility": "all", "issues_state": "all",
//	 "streams": ["repos", "issues", "starred"]}
//
// (the defaults), or with "repos": ["owner/name", …] to read exactly those
// repositories instead of the listing (then without affiliation and
// visibility). See Config.
//
// # Requests
//
// Every request is a GET with the token in "Authorization: Bearer …" and
// nowhere else, User-Agent connhost-github/<Version>, Accept
// application/vnd.github+json, X-GitHub-Api-Version 2022-11-28, and a
// timeout (RequestTimeout). Requests go one at a time. GITHUB_API_URL must
// be https (http only for loopback hosts), and the connector never sends
// a request, Link or redirect included, outside its scheme and host.
//
// Lists are read page by page (per_page 100) by following the Link
// header's rel="next". Each page's ETag is kept in the checkpoint, and the
// next run asks for the page with If-None-Match: an unchanged page is a
// 304, which costs no rate limit and is not downloaded or emitted again.
//
// # Incremental issues
//
// The checkpoint keeps, per repository, the newest updated_at seen
// (Cursor.Since); the next run asks with since= for the issues updated at
// or after it, newest first. The connector checkpoints after each
// repository's issues, so a run that fails or crashes midway resumes with
// the repositories already done asking only for what changed since. With
// nothing changed, a repository costs one 304.
//
// # Failures
//
//   - 401: sdk.CredentialRejected, not retried: the operator must rotate
//     the token. A token holding whitespace is rejected the same way,
//     without a request.
//   - Rate limits (a 403 or 429 with Retry-After, or with
//     X-RateLimit-Remaining 0 until X-RateLimit-Reset, or a secondary
//     limit): the connector waits and retries, if the wait fits in the
//     run's deadline (ctx) and MaxWait; otherwise it fails with a
//     retryable failure (sdk.Retryable, wrapping ErrRateLimited), and the
//     host retries the run later. A response that spends the limit makes
//     the next request wait for the reset instead of being refused.
//   - 5xx and transport errors: retried with exponential backoff (1 s,
//     2 s, 4 s, …, at most MaxAttempts tries, each wait within the
//     deadline), then a retryable failure wrapping ErrUnavailable.
//   - 403 (not a rate limit): the token lacks a permission; the failure
//     names the one needed, not retried.
//   - 404 or 410 on a repository's issues (issues disabled, repository
//     gone): the repository is skipped with a warning. 404 on an
//     allowlisted repository fails the run: the config is wrong.
//
// Records are upserted by key; nothing is deleted. A repository, issue or
// star deleted on GitHub keeps its last record.
//
// # Check
//
// Check (sdk.ConnectorWithCheck) validates the config, then the token with
// GET /user, and reports the login as the credential's identity.
//
// # Testing
//
// Package githubtest is a fake GitHub API (pagination with Link headers,
// ETags, since, rate-limit and error injection) for tests of this
// connector and of hosts that run it. The connector's tests run it
// in-process with sdktest.Run, replacing Sleep to see waits without
// spending them, and the plugin's tests run the built binary with
// sdktest.Acceptance and sdktest.RunPlugin against the same fake.
package github
