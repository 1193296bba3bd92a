// Package api is connhost's HTTP JSON API: the operator surface under /v1,
// plus /healthz, /readyz and /metrics. Request and response bodies are the
// types of package apitypes; /v1/openapi.json describes every route, and a
// test keeps that document and the registered routes equal.
//
// # Authentication
//
// Every /v1 route and /metrics require "Authorization: Bearer <token>",
// the operator token from the data dir, compared in constant time. A
// missing or wrong token is 401 {"error":{"code":"unauthorized",…}} with
// no detail, before any routing: an unauthenticated caller learns nothing,
// not even which routes exist. /healthz, /readyz and /v1/openapi.json
// (the API's description: no data) are open.
//
// # Errors
//
// Every non-2xx response is {"error":{"code","message","field"}} (see
// apitypes.ErrorBody). Codes are the host/failure codes where one applies
// (connection_not_found 404, run_active 409, the launch refusals 409, …)
// and the apitypes codes otherwise (invalid_request 400 with the field,
// conflict 409 for a state transition, payload_too_large 413, …). A
// refused run trigger also carries the refused run's id. Bad input is
// rejected before anything is stored. No error ever echoes a request
// body: JSON errors name a byte offset or a field, never a value.
//
// # Bodies
//
// Bodies are size-limited (1 MiB, 256 KiB for a credential), must be one
// JSON object, and unknown fields are rejected. The credential body is
// write-only: reads return names, states and timestamps, never values.
//
// # Following a run
//
// GET /v1/runs/{id}/events is a Server-Sent Events stream of
// apitypes.RunEvent: "event: <kind>" and "data: <json>" per event, a
// status snapshot first, live progress and record counts, and a final
// "end" event after which the server closes the stream. A comment line
// (": heartbeat") every 15 s keeps proxies from closing an idle stream.
package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/internal/bearer"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
)

// Body size limits.
const (
	// DefaultMaxBody bounds every request body but the credential's.
	DefaultMaxBody = 1 << 20
	// DefaultMaxCredentialBody bounds PUT …/credential.
	DefaultMaxCredentialBody = 256 << 10
)

// Actor is the audit actor of every API operation.
const Actor = "operator"

// Control is the lifecycle service (host/control).
type Control interface {
	CreateConnection(ctx context.Context, actor string, n store.NewConnection) (store.Connection, enroll.Entry, error)
	UpdateConnection(ctx context.Context, actor, id string, p store.ConnectionPatch) (store.Connection, enroll.Entry, error)
	SetState(ctx context.Context, actor, id string, state store.ConnectionState) (store.Connection, error)
	DeleteConnection(ctx context.Context, actor, id string) (store.ConnectionDeletion, error)
	SetCredential(ctx context.Context, actor, id string, values map[string]string, order []string) (control.Capture, error)
	RevokeCredential(ctx context.Context, actor, id string) (store.CredentialMeta, error)
	DeleteCredential(ctx context.Context, actor, id string) (store.CredentialMeta, error)
	TriggerRun(ctx context.Context, actor, id string) (store.Run, error)
	ResetCheckpoint(ctx context.Context, actor, id string) (store.Checkpoint, bool, error)
}

// Store is the read side of the store the API uses.
type Store interface {
	GetConnection(ctx context.Context, id string) (store.Connection, error)
	ListConnectionPage(ctx context.Context, f store.ConnectionPageFilter) (store.ConnectionPage, error)
	GetCredentialMeta(ctx context.Context, connectionID string) (store.CredentialMeta, error)
	GetRun(ctx context.Context, id string) (store.Run, error)
	ListRuns(ctx context.Context, f store.RunFilter) (store.RunPage, error)
	ListRecords(ctx context.Context, q store.RecordQuery) (store.RecordPage, error)
	LastCheckpoint(ctx context.Context, connectionID string) (store.Checkpoint, bool, error)
	ListAudit(ctx context.Context, f store.AuditFilter) (store.AuditPage, error)
	ListEnrollment(ctx context.Context) ([]store.EnrollmentEntry, error)
	EnrollmentOf(ctx context.Context, connectionIDs []string) (map[string]store.EnrollmentEntry, error)
	ListHosts(ctx context.Context) ([]store.Host, error)
	CancelQueuedRun(ctx context.Context, runID string, res store.RunResult) (store.Run, error)
	Ping(ctx context.Context) error
}

// Catalog lists the catalogued connectors and the rejected files.
type Catalog interface {
	Get(key string) (catalog.Entry, bool)
	List() []catalog.Entry
	Rejected() []catalog.Rejection
}

// Rescanner re-scans the host's plugin dir, registers what changed
// (audited as actor) and swaps the catalog; runs in flight keep their
// binary.
type Rescanner interface {
	Rescan(ctx context.Context, actor string) (catalog.RescanReport, error)
}

// Runs is the runner's live side: cancel (here or on the host that runs
// the run) and follow.
type Runs interface {
	Cancel(runID string) error
	CancelElsewhere(ctx context.Context, runID string) error
	Ended(run store.Run)
	Events() *runevents.Hub
}

// Schedule reports next scheduled runs: one connection's, or every
// enrolled connection's at once (for lists).
type Schedule interface {
	NextRun(connectionID string) (time.Time, error)
	// NextRunAfter is the next run of a connection backed off until t
	// (its first instant at or after t).
	NextRunAfter(connectionID string, t time.Time) (time.Time, error)
	Jobs() []schedule.JobInfo
}

// Keyset manages the credential keyset: describe, rotate (a new primary
// key, loaded at once) and rewrap (re-encrypt every stored credential
// under the primary).
type Keyset interface {
	Info() keysets.Info
	Rotate(ctx context.Context, actor string) (keysets.Info, error)
	Rewrap(ctx context.Context, actor string) (broker.RewrapReport, error)
	// DisableKey disables a non-primary key no credential needs any more;
	// EnableKey undoes it. Refusals are typed (key_not_found,
	// key_is_primary, key_in_use).
	DisableKey(ctx context.Context, actor string, keyID uint32) (KeyChange, error)
	EnableKey(ctx context.Context, actor string, keyID uint32) (KeyChange, error)
}

// KeyChange is the outcome of Keyset.DisableKey and EnableKey.
type KeyChange struct {
	Keyset  keysets.Info
	KeyID   uint32
	Changed bool
	// QuarantinedCredentials counts quarantined credentials under the
	// key (disable only).
	QuarantinedCredentials int
}

// ConsoleSignIn issues one-time sign-in codes for the web console
// (package console).
type ConsoleSignIn interface {
	IssueSignIn() (code string, expires time.Time)
}

// Observer receives one call per request (Prometheus metrics).
type Observer interface {
	ObserveHTTP(route string, code int, d time.Duration, stream bool)
}

// Config configures an API.
type Config struct {
	// Token is the operator bearer token. Required.
	Token    string
	Store    Store
	Control  Control
	Catalog  Catalog
	Runs     Runs
	Schedule Schedule
	Keyset   Keyset
	// Rescanner serves POST /v1/connectors/rescan; nil answers it 503
	// unavailable.
	Rescanner Rescanner
	// Health derives each connection's health for the connection views
	// and GET /v1/attention; nil leaves views without health and answers
	// attention 503 unavailable.
	Health ConnectionHealth
	// Explainer serves GET /v1/connections/{id}/explain; nil answers it
	// 503 unavailable.
	Explainer Explainer
	// Console issues the web console's one-time sign-in codes (POST
	// /v1/console/signin); nil answers that route 503 unavailable.
	Console ConsoleSignIn
	// Metrics serves /metrics behind the token; nil leaves /metrics
	// unregistered.
	Metrics  http.Handler
	Observer Observer
	Logger   hclog.Logger
	// MaxBody and MaxCredentialBody bound request bodies (defaults
	// DefaultMaxBody, DefaultMaxCredentialBody).
	MaxBody           int64
	MaxCredentialBody int64
	// Heartbeat is the event stream keep-alive interval (default 15s).
	Heartbeat time.Duration
	// CancelWait bounds how long a cancel waits for the run to end
	// (default 30s).
	CancelWait time.Duration
}

// Validate reports a wiring error.
func (c *Config) Validate() error {
	var missing []string
	for name, ok := range map[string]bool{
		"Token": c.Token != "", "Store": c.Store != nil, "Control": c.Control != nil,
		"Catalog": c.Catalog != nil, "Runs": c.Runs != nil, "Keyset": c.Keyset != nil,
	} {
		if !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("%w: %s required", ErrInvalidConfig, strings.Join(missing, ", "))
	}
	if c.MaxBody < 0 || c.MaxCredentialBody < 0 || c.Heartbeat < 0 || c.CancelWait < 0 {
		return fmt.Errorf("%w: negative limit", ErrInvalidConfig)
	}
	return nil
}

// Errors.
var (
	// ErrInvalidConfig is wrapped by Config.Validate errors.
	ErrInvalidConfig = errors.New("api: invalid config")
)

// API serves the HTTP API.
type API struct {
	cfg     Config
	auth    bearer.Checker
	mux     *http.ServeMux
	routes  []string
	log     hclog.Logger
	closing atomic.Bool
	// streams ends open event streams at shutdown.
	streams     context.Context
	stopStreams context.CancelFunc
	// keysetMu orders keyset rotation against credential captures and
	// rewraps: the broker reads the primary key id and the AEAD in two
	// calls, so a rotation between them must not be possible.
	keysetMu sync.RWMutex
}

// New returns an API.
func New(cfg Config) (*API, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxCredentialBody == 0 {
		cfg.MaxCredentialBody = DefaultMaxCredentialBody
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.CancelWait == 0 {
		cfg.CancelWait = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &API{cfg: cfg, auth: bearer.New(cfg.Token), mux: http.NewServeMux(), log: cfg.Logger,
		streams: ctx, stopStreams: cancel}
	a.register()
	return a, nil
}

// register declares every route. The OpenAPI test reads Routes, so a
// route added here and not documented fails the build's tests.
func (a *API) register() {
	a.handle("GET /healthz", a.healthz)
	a.handle("GET /readyz", a.readyz)
	if a.cfg.Metrics != nil {
		a.mux.Handle("GET /metrics", a.cfg.Metrics)
		a.routes = append(a.routes, "GET /metrics")
	}
	a.handle("GET /v1/openapi.json", a.openapi)
	a.handle("GET /v1/version", a.buildInfo)

	a.handle("GET /v1/connectors", a.listConnectors)
	a.handle("GET /v1/connectors/{key}", a.getConnector)
	a.handle("POST /v1/connectors/rescan", a.rescanConnectors)

	a.handle("POST /v1/connections", a.createConnection)
	a.handle("GET /v1/connections", a.listConnections)
	a.handle("GET /v1/connections/{id}", a.getConnection)
	a.handle("PATCH /v1/connections/{id}", a.updateConnection)
	a.handle("DELETE /v1/connections/{id}", a.deleteConnection)
	a.handle("POST /v1/connections/{id}/pause", a.setState(store.ConnectionPaused))
	a.handle("POST /v1/connections/{id}/resume", a.setState(store.ConnectionActive))
	a.handle("POST /v1/connections/{id}/revoke", a.setState(store.ConnectionRevoked))

	a.handle("PUT /v1/connections/{id}/credential", a.setCredential)
	a.handle("GET /v1/connections/{id}/credential", a.getCredential)
	a.handle("POST /v1/connections/{id}/credential/revoke", a.revokeCredential)
	a.handle("DELETE /v1/connections/{id}/credential", a.deleteCredential)

	a.handle("POST /v1/connections/{id}/runs", a.triggerRun)
	a.handle("GET /v1/connections/{id}/records", a.listRecords)
	a.handle("GET /v1/connections/{id}/checkpoint", a.getCheckpoint)
	a.handle("GET /v1/connections/{id}/explain", a.explainConnection)
	a.handle("DELETE /v1/connections/{id}/checkpoint", a.resetCheckpoint)

	a.handle("GET /v1/runs", a.listRuns)
	a.handle("GET /v1/runs/{id}", a.getRun)
	a.handle("POST /v1/runs/{id}/cancel", a.cancelRun)
	a.handle("GET /v1/runs/{id}/events", a.runEvents)

	a.handle("GET /v1/audit", a.listAudit)
	a.handle("GET /v1/enrollment", a.enrollment)
	a.handle("GET /v1/attention", a.attention)
	a.handle("GET /v1/hosts", a.listHosts)
	a.handle("POST /v1/console/signin", a.consoleSignIn)

	a.handle("GET /v1/keyset", a.keysetInfo)
	a.handle("POST /v1/keyset/rotate", a.rotateKeyset)
	a.handle("POST /v1/keyset/rewrap", a.rewrapKeyset)
	a.handle("POST /v1/keyset/keys/{id}/disable", a.setKey(false))
	a.handle("POST /v1/keyset/keys/{id}/enable", a.setKey(true))
}

// handlerFunc is a route handler: it writes a success itself and returns
// an error for the caller to map.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (a *API) handle(pattern string, h handlerFunc) {
	a.routes = append(a.routes, pattern)
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.fail(w, r, err)
		}
	})
}

// Routes returns the registered route patterns ("GET /v1/runs/{id}"),
// sorted.
func (a *API) Routes() []string {
	out := slices.Clone(a.routes)
	slices.Sort(out)
	return out
}

// Handler returns the API's root handler: request logging and metrics,
// then authentication, then routing with typed 404 and 405 errors.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(a.serve)
}

// Close makes /readyz fail and ends open event streams. The server calls
// it during shutdown, after the runner has ended every run (so followers
// got their run's end first).
func (a *API) Close() {
	a.closing.Store(true)
	a.stopStreams()
}

// needsAuth reports whether a path is token-protected: all of /v1 but
// the OpenAPI document, which describes the API and holds no data.
func needsAuth(path string) bool {
	if path == "/v1/openapi.json" {
		return false
	}
	return path == "/v1" || strings.HasPrefix(path, "/v1/") || path == "/metrics"
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	route := ""
	defer func() {
		a.logRequest(r, rec, route, time.Since(start))
	}()
	if needsAuth(r.URL.Path) && !a.auth.Authorized(r.Header.Get("Authorization")) {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="connhost"`)
		writeError(rec, http.StatusUnauthorized, errBody(apitypes.CodeUnauthorized, "unauthorized", ""))
		return
	}
	h, pattern := a.mux.Handler(r)
	if pattern == "" {
		// No route: the mux's own handler says 404 or 405 (with Allow) in
		// plain text; answer the same status as a typed JSON error.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			rec.Header().Set("Allow", allow)
		}
		switch probe.status {
		case http.StatusMethodNotAllowed:
			writeError(rec, probe.status, errBody(apitypes.CodeMethodNotAllowed, "method "+r.Method+" not allowed", ""))
		case http.StatusNotFound, 0:
			writeError(rec, http.StatusNotFound, errBody(apitypes.CodeNotFound, "no such route", ""))
		default:
			// A redirect to the cleaned path, for example.
			for k, v := range probe.header {
				rec.Header()[k] = v
			}
			rec.WriteHeader(probe.status)
		}
		return
	}
	route = pattern
	a.mux.ServeHTTP(rec, r)
}

func (a *API) logRequest(r *http.Request, rec *recorder, route string, d time.Duration) {
	stream := strings.HasSuffix(route, "/events")
	if a.cfg.Observer != nil {
		a.cfg.Observer.ObserveHTTP(route, rec.status, d, stream)
	}
	// Path only: ids are not secrets, and bodies are never logged.
	args := []any{"method", r.Method, "path", r.URL.Path, "status", rec.status, "bytes", rec.bytes, "duration", d}
	switch {
	case rec.status >= 500 && r.Context().Err() != nil:
		a.log.Debug("http request", args...) // the caller went away
	case rec.status >= 500:
		a.log.Error("http request", args...)
	case rec.status >= 400:
		a.log.Info("http request", args...)
	default:
		a.log.Debug("http request", args...)
	}
}

// recorder captures the status and size of a response. It forwards
// Flush and Unwrap so event streams work through it.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Flush forwards to the underlying writer.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// statusProbe records what the mux's fallback handler would answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}
func (p *statusProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}

var (
	_ http.Flusher        = (*recorder)(nil)
	_ http.ResponseWriter = (*statusProbe)(nil)
)
