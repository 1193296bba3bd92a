package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// Manifest values.
const (
	Key     = "github"
	Version = "1.0.0"
	// TokenEnv is the credential: a GitHub token, sent as
	// "Authorization: Bearer <token>".
	TokenEnv = "GITHUB_TOKEN"
	// APIURLEnv is the env_passthrough variable naming the API's base URL
	// (DefaultAPIURL when unset), for GitHub Enterprise Server
	// (https://HOST/api/v3) and for tests.
	APIURLEnv = "GITHUB_API_URL"
	// DefaultSchedule runs a connection every six hours.
	DefaultSchedule = "0 */6 * * *"
)

// Streams.
const (
	// StreamRepos holds repositories, keyed by "id".
	StreamRepos = "repos"
	// StreamIssues holds issues and pull requests, keyed by "id".
	StreamIssues = "issues"
	// StreamStarred holds the repositories the token's owner starred, as
	// {"starred_at": …, "repo": {…}}, keyed by "repo.id".
	StreamStarred = "starred"
)

// Connector is the GitHub connector. The zero value, and New, use the
// defaults; the fields exist for tests and for embedding the connector in
// another program.
type Connector struct {
	// HTTPClient sends the requests. Nil means a client with Go's default
	// transport. Either way the connector refuses redirects to another
	// scheme or host unless the client sets its own CheckRedirect.
	HTTPClient *http.Client
	// PageSize is per_page, 1 to 100. Zero means DefaultPageSize.
	PageSize int
	// RequestTimeout bounds one request. Zero means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxAttempts bounds the tries of a request on 5xx and transport
	// errors, and its rate-limit waits. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// MaxWait caps one wait. Zero means DefaultMaxWait.
	MaxWait time.Duration
	// Sleep waits d or until ctx ends, returning ctx's error then. Nil
	// means a timer. Tests replace it to see the waits without spending
	// them.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the local clock, used only when a response has no Date
	// header. Nil means time.Now.
	Now func() time.Time
}

// New returns the GitHub connector with the default settings.
func New() *Connector { return &Connector{} }

// Validate reports the first rule c's settings break.
func (c *Connector) Validate() error {
	switch {
	case c.PageSize < 0 || c.PageSize > 100:
		return fmt.Errorf("%w: PageSize %d is outside [0, 100]", ErrInvalidConnector, c.PageSize)
	case c.RequestTimeout < 0:
		return fmt.Errorf("%w: RequestTimeout is negative", ErrInvalidConnector)
	case c.MaxAttempts < 0:
		return fmt.Errorf("%w: MaxAttempts is negative", ErrInvalidConnector)
	case c.MaxWait < 0:
		return fmt.Errorf("%w: MaxWait is negative", ErrInvalidConnector)
	}
	return nil
}

// Manifest describes the GitHub connector.
func (c *Connector) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: Key,
		Version:      Version,
		DisplayName:  "GitHub",
		Description:  "Repositories, issues and pull requests, and starred repositories of a GitHub or GitHub Enterprise Server account.",
		Auth: manifest.Auth{
			Kind:     manifest.AuthStaticSecret,
			Required: []string{TokenEnv},
		},
		EnvPassthrough: []string{APIURLEnv},
		Streams: []manifest.Stream{
			{Name: StreamRepos, KeyFields: []string{"id"}},
			{Name: StreamIssues, KeyFields: []string{"id"}},
			{Name: StreamStarred, KeyFields: []string{"repo.id"}},
		},
		DefaultSchedule: manifest.Schedule{Spec: DefaultSchedule, AutoEnroll: true},
		ConfigSchema:    ConfigSchema,
	}
}

// Check validates the config and the token: GET /user must answer, and
// the token's login is the identity.
func (c *Connector) Check(ctx context.Context, ch *sdk.Check) (string, error) {
	if _, err := loadConfig(ch.Config); err != nil {
		return "", err
	}
	cl, err := c.client(ch.LookupEnv, ch.Credential(TokenEnv), ch.Logger())
	if err != nil {
		return "", err
	}
	resp, err := cl.get(ctx, cl.url("/user", nil), "", MediaType)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("%w; is %s right? (GitHub Enterprise Server: https://HOST/api/v3)", err, APIURLEnv)
	}
	if err != nil {
		return "", err
	}
	var u struct {
		Login string `json:"login"`
	}
	if err := json.Unmarshal(resp.body, &u); err != nil || u.Login == "" {
		return "", fmt.Errorf("%w: GET /user: no login in the response", ErrUnexpectedResponse)
	}
	return u.Login, nil
}

// Run collects the selected streams: the repositories first (their list
// drives the issues), then each repository's issues, checkpointing after
// each repository, then the starred repositories.
func (c *Connector) Run(ctx context.Context, r *sdk.Run) error {
	cfg, err := loadConfig(r.Config)
	if err != nil {
		return err
	}
	cl, err := c.client(r.LookupEnv, r.Credential(TokenEnv), r.Logger())
	if err != nil {
		return err
	}
	s := &syncer{r: r, cl: cl, cfg: cfg, log: r.Logger(), last: r.State()}
	s.st = loadState(r, cl.base.String(), cfg.IssuesState, s.log)
	return s.run(ctx)
}

// client returns the API client for one run or check.
func (c *Connector) client(lookup func(string) (string, bool), token string, log hclog.Logger) (*client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !validToken(token) {
		return nil, &sdk.Error{Code: wire.CodeCredentialRejected, Message: ErrInvalidToken.Error(), Err: ErrInvalidToken}
	}
	raw, _ := lookup(APIURLEnv)
	base, err := parseAPIURL(raw)
	if err != nil {
		return nil, err
	}
	cl := &client{
		base:     base,
		token:    token,
		sleep:    c.Sleep,
		now:      c.Now,
		pageSize: c.PageSize,
		timeout:  c.RequestTimeout,
		attempts: c.MaxAttempts,
		maxWait:  c.MaxWait,
		log:      log,
	}
	hc := http.Client{}
	if c.HTTPClient != nil {
		hc = *c.HTTPClient
	}
	if hc.CheckRedirect == nil {
		hc.CheckRedirect = sameOriginRedirect
	}
	cl.hc = &hc
	if cl.sleep == nil {
		cl.sleep = sleepCtx
	}
	if cl.now == nil {
		cl.now = time.Now
	}
	if cl.pageSize == 0 {
		cl.pageSize = DefaultPageSize
	}
	if cl.timeout == 0 {
		cl.timeout = DefaultRequestTimeout
	}
	if cl.attempts == 0 {
		cl.attempts = DefaultMaxAttempts
	}
	if cl.maxWait == 0 {
		cl.maxWait = DefaultMaxWait
	}
	return cl, nil
}

// loadConfig decodes, validates and normalizes the connection config.
func loadConfig(decode func(any) error) (*Config, error) {
	var cfg Config
	if err := decode(&cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Normalize()
	return &cfg, nil
}

// loadState returns the last checkpoint, or a fresh state when there is
// none or it cannot be used. Starting over is always correct (records are
// upserted by key); it only costs requests, so an unusable checkpoint is
// logged, not fatal.
func loadState(r *sdk.Run, api, issuesState string, log hclog.Logger) *State {
	var st State
	ok, err := r.DecodeState(&st)
	switch {
	case !ok:
		return newState(api, issuesState)
	case err != nil:
		log.Warn("checkpoint unreadable; starting over", "error", err.Error())
		return newState(api, issuesState)
	}
	if err := st.usable(api, issuesState); err != nil {
		log.Warn("checkpoint not usable; starting over", "reason", err.Error())
		return newState(api, issuesState)
	}
	if st.Issues == nil {
		st.Issues = map[string]*Cursor{}
	}
	return &st
}

var _ sdk.ConnectorWithCheck = (*Connector)(nil)
