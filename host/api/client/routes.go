package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/connhost/connhost/host/api/apitypes"
)

// ConnectionFilter narrows ListConnections; empty fields match all.
type ConnectionFilter struct {
	Connector string // connector key
	State     string // active | paused | revoked
	// Health is a health verdict (healthy, needs_credential, …). The
	// server filters each page after deriving health, so a page may
	// hold fewer items than Limit while its Next continues.
	Health string
	Cursor string // the Next of the previous page
	Limit  int    // page size; 0 is the server's default
}

// RunFilter narrows ListRuns; empty fields match all.
type RunFilter struct {
	Connection string // connection id
	Status     string // queued | running | succeeded | failed | refused | cancelled
	Trigger    string // manual | scheduled | retry
	Host       string // host id
	Cursor     string // the Next of the previous page
	Limit      int    // page size; 0 is the server's default
}

// RecordFilter narrows ListRecords; empty fields match all.
type RecordFilter struct {
	Stream string
	Cursor string
	Limit  int
}

// AuditFilter narrows ListAudit; empty fields match all.
type AuditFilter struct {
	Target    string // target id (a connection id, a run id, …)
	Operation string
	Cursor    string
	Limit     int
}

// limit is the limit query value: none for 0 (the server's default); a
// negative n is sent as it is, for the server to refuse (400
// invalid_request, field limit) rather than be read as the default.
func limit(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Health checks GET /healthz: the process is up.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready checks GET /readyz: the host has booted and serves.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// ListConnectors is GET /v1/connectors.
func (c *Client) ListConnectors(ctx context.Context) ([]apitypes.Connector, error) {
	var l apitypes.List[apitypes.Connector]
	err := c.do(ctx, http.MethodGet, "/v1/connectors", nil, nil, &l)
	return l.Items, err
}

// GetConnector is GET /v1/connectors/{key}.
func (c *Client) GetConnector(ctx context.Context, key string) (apitypes.Connector, error) {
	var v apitypes.Connector
	if key == "" {
		return v, errEmptyID("connector key")
	}
	err := c.do(ctx, http.MethodGet, pathOf("v1", "connectors", key), nil, nil, &v)
	return v, err
}

// CreateConnection is POST /v1/connections.
func (c *Client) CreateConnection(ctx context.Context, req apitypes.ConnectionCreateRequest) (apitypes.Connection, error) {
	var v apitypes.Connection
	err := c.do(ctx, http.MethodPost, "/v1/connections", nil, req, &v)
	return v, err
}

// ListConnections is GET /v1/connections: one page, oldest first.
func (c *Client) ListConnections(ctx context.Context, f ConnectionFilter) (apitypes.List[apitypes.Connection], error) {
	var l apitypes.List[apitypes.Connection]
	q := values("connector", f.Connector, "state", f.State, "health", f.Health, "cursor", f.Cursor, "limit", limit(f.Limit))
	err := c.do(ctx, http.MethodGet, "/v1/connections", q, nil, &l)
	return l, err
}

// GetConnection is GET /v1/connections/{id}.
func (c *Client) GetConnection(ctx context.Context, id string) (apitypes.Connection, error) {
	return c.connection(ctx, http.MethodGet, id, "", nil)
}

// UpdateConnection is PATCH /v1/connections/{id}.
func (c *Client) UpdateConnection(ctx context.Context, id string, req apitypes.ConnectionUpdateRequest) (apitypes.Connection, error) {
	return c.connection(ctx, http.MethodPatch, id, "", req)
}

// PauseConnection is POST /v1/connections/{id}/pause.
func (c *Client) PauseConnection(ctx context.Context, id string) (apitypes.Connection, error) {
	return c.connection(ctx, http.MethodPost, id, "pause", nil)
}

// ResumeConnection is POST /v1/connections/{id}/resume.
func (c *Client) ResumeConnection(ctx context.Context, id string) (apitypes.Connection, error) {
	return c.connection(ctx, http.MethodPost, id, "resume", nil)
}

// RevokeConnection is POST /v1/connections/{id}/revoke.
func (c *Client) RevokeConnection(ctx context.Context, id string) (apitypes.Connection, error) {
	return c.connection(ctx, http.MethodPost, id, "revoke", nil)
}

func (c *Client) connection(ctx context.Context, method, id, action string, body any) (apitypes.Connection, error) {
	var v apitypes.Connection
	if id == "" {
		return v, errEmptyID("connection id")
	}
	p := pathOf("v1", "connections", id)
	if action != "" {
		p += "/" + action
	}
	err := c.do(ctx, method, p, nil, body, &v)
	return v, err
}

// DeleteConnection is DELETE /v1/connections/{id}.
func (c *Client) DeleteConnection(ctx context.Context, id string) (apitypes.ConnectionDeleted, error) {
	var v apitypes.ConnectionDeleted
	if id == "" {
		return v, errEmptyID("connection id")
	}
	err := c.do(ctx, http.MethodDelete, pathOf("v1", "connections", id), nil, nil, &v)
	return v, err
}

// SetCredential is PUT /v1/connections/{id}/credential: it captures the
// connection's credential, or rotates an active one. The values are sent
// in the request body only; the result is metadata, with Check, the
// outcome of the connector's check that followed the capture.
func (c *Client) SetCredential(ctx context.Context, id string, req apitypes.CredentialSetRequest) (apitypes.Credential, error) {
	return c.credential(ctx, http.MethodPut, id, "", req)
}

// GetCredential is GET /v1/connections/{id}/credential: metadata only.
func (c *Client) GetCredential(ctx context.Context, id string) (apitypes.Credential, error) {
	return c.credential(ctx, http.MethodGet, id, "", nil)
}

// RevokeCredential is POST /v1/connections/{id}/credential/revoke.
func (c *Client) RevokeCredential(ctx context.Context, id string) (apitypes.Credential, error) {
	return c.credential(ctx, http.MethodPost, id, "revoke", nil)
}

// DeleteCredential is DELETE /v1/connections/{id}/credential.
func (c *Client) DeleteCredential(ctx context.Context, id string) (apitypes.Credential, error) {
	return c.credential(ctx, http.MethodDelete, id, "", nil)
}

func (c *Client) credential(ctx context.Context, method, id, action string, body any) (apitypes.Credential, error) {
	var v apitypes.Credential
	if id == "" {
		return v, errEmptyID("connection id")
	}
	p := pathOf("v1", "connections", id, "credential")
	if action != "" {
		p += "/" + action
	}
	err := c.do(ctx, method, p, nil, body, &v)
	return v, err
}

// TriggerRun is POST /v1/connections/{id}/runs: a manual run. The server
// answers 202 with the queued run; a refusal is an *APIError whose code is
// the failure code.
func (c *Client) TriggerRun(ctx context.Context, connectionID string) (apitypes.Run, error) {
	var v apitypes.Run
	if connectionID == "" {
		return v, errEmptyID("connection id")
	}
	err := c.do(ctx, http.MethodPost, pathOf("v1", "connections", connectionID, "runs"), nil, nil, &v)
	return v, err
}

// ListRecords is GET /v1/connections/{id}/records: one page.
func (c *Client) ListRecords(ctx context.Context, connectionID string, f RecordFilter) (apitypes.List[apitypes.Record], error) {
	var l apitypes.List[apitypes.Record]
	if connectionID == "" {
		return l, errEmptyID("connection id")
	}
	q := values("stream", f.Stream, "cursor", f.Cursor, "limit", limit(f.Limit))
	err := c.do(ctx, http.MethodGet, pathOf("v1", "connections", connectionID, "records"), q, nil, &l)
	return l, err
}

// ListRuns is GET /v1/runs: one page, newest first.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) (apitypes.List[apitypes.Run], error) {
	var l apitypes.List[apitypes.Run]
	q := values("connection", f.Connection, "status", f.Status, "trigger", f.Trigger, "host", f.Host, "cursor", f.Cursor, "limit", limit(f.Limit))
	err := c.do(ctx, http.MethodGet, "/v1/runs", q, nil, &l)
	return l, err
}

// GetRun is GET /v1/runs/{id}.
func (c *Client) GetRun(ctx context.Context, id string) (apitypes.Run, error) {
	return c.run(ctx, http.MethodGet, id, "")
}

// CancelRun is POST /v1/runs/{id}/cancel.
func (c *Client) CancelRun(ctx context.Context, id string) (apitypes.Run, error) {
	return c.run(ctx, http.MethodPost, id, "cancel")
}

func (c *Client) run(ctx context.Context, method, id, action string) (apitypes.Run, error) {
	var v apitypes.Run
	if id == "" {
		return v, errEmptyID("run id")
	}
	p := pathOf("v1", "runs", id)
	if action != "" {
		p += "/" + action
	}
	err := c.do(ctx, method, p, nil, nil, &v)
	return v, err
}

// ListAudit is GET /v1/audit: one page.
func (c *Client) ListAudit(ctx context.Context, f AuditFilter) (apitypes.List[apitypes.AuditEvent], error) {
	var l apitypes.List[apitypes.AuditEvent]
	q := values("target", f.Target, "operation", f.Operation, "cursor", f.Cursor, "limit", limit(f.Limit))
	err := c.do(ctx, http.MethodGet, "/v1/audit", q, nil, &l)
	return l, err
}

// Enrollment is GET /v1/enrollment.
func (c *Client) Enrollment(ctx context.Context) (apitypes.Enrollment, error) {
	var v apitypes.Enrollment
	err := c.do(ctx, http.MethodGet, "/v1/enrollment", nil, nil, &v)
	return v, err
}

// Attention is GET /v1/attention.
func (c *Client) Attention(ctx context.Context) (apitypes.List[apitypes.AttentionItem], error) {
	var v apitypes.List[apitypes.AttentionItem]
	err := c.do(ctx, http.MethodGet, "/v1/attention", nil, nil, &v)
	return v, err
}

// ListHosts is GET /v1/hosts.
func (c *Client) ListHosts(ctx context.Context) (apitypes.HostList, error) {
	var v apitypes.HostList
	err := c.do(ctx, http.MethodGet, "/v1/hosts", nil, nil, &v)
	return v, err
}

// KeysetInfo is GET /v1/keyset.
func (c *Client) KeysetInfo(ctx context.Context) (apitypes.KeysetInfo, error) {
	var v apitypes.KeysetInfo
	err := c.do(ctx, http.MethodGet, "/v1/keyset", nil, nil, &v)
	return v, err
}

// RotateKeyset is POST /v1/keyset/rotate.
func (c *Client) RotateKeyset(ctx context.Context) (apitypes.KeysetInfo, error) {
	var v apitypes.KeysetInfo
	err := c.do(ctx, http.MethodPost, "/v1/keyset/rotate", nil, nil, &v)
	return v, err
}

// DisableKey is POST /v1/keyset/keys/{id}/disable.
func (c *Client) DisableKey(ctx context.Context, keyID uint32) (apitypes.KeyChange, error) {
	var v apitypes.KeyChange
	err := c.do(ctx, http.MethodPost, "/v1/keyset/keys/"+strconv.FormatUint(uint64(keyID), 10)+"/disable", nil, nil, &v)
	return v, err
}

// EnableKey is POST /v1/keyset/keys/{id}/enable.
func (c *Client) EnableKey(ctx context.Context, keyID uint32) (apitypes.KeyChange, error) {
	var v apitypes.KeyChange
	err := c.do(ctx, http.MethodPost, "/v1/keyset/keys/"+strconv.FormatUint(uint64(keyID), 10)+"/enable", nil, nil, &v)
	return v, err
}

// RewrapKeyset is POST /v1/keyset/rewrap.
func (c *Client) RewrapKeyset(ctx context.Context) (apitypes.RewrapReport, error) {
	var v apitypes.RewrapReport
	err := c.do(ctx, http.MethodPost, "/v1/keyset/rewrap", nil, nil, &v)
	return v, err
}

// ConsoleSignIn asks the host for a one-time sign-in link for its web
// console; the link is Addr() joined with the returned path.
func (c *Client) ConsoleSignIn(ctx context.Context) (apitypes.ConsoleSignIn, error) {
	var out apitypes.ConsoleSignIn
	err := c.do(ctx, http.MethodPost, "/v1/console/signin", nil, nil, &out)
	return out, err
}
