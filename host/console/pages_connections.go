package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// verdicts are the health verdicts a connection can have (apitypes.Health),
// the choices of the list's health filter.
var verdicts = []string{"healthy", "never_run", "failing", "invalid_config", "needs_credential",
	"credential_rejected", "credential_unavailable", "connector_missing", "paused", "revoked"}

// listLimit is the connections list's page size: each row also reads the
// connection's latest run.
const listLimit = 50

// connectionRow is one row of the connections list.
type connectionRow struct {
	apitypes.Connection
	// LastRun is the connection's newest run, nil before the first.
	LastRun *apitypes.Run
}

// connectionFilter is the list's GET filter form.
type connectionFilter struct {
	Connector string
	Health    string
	Cursor    string
}

// createForm is the create form's submitted values (none secret), kept
// to re-render a refused form.
type createForm struct {
	ConnectorKey string
	Label        string
	Config       string
	Schedule     string
	Jitter       string
}

// connectionsData is connections.html's data.
type connectionsData struct {
	Rows       []connectionRow
	Next       string
	Connectors []apitypes.Connector
	Verdicts   []string
	Filter     connectionFilter
	// FilterError is a refused filter (shown in the filter form).
	FilterError *formErrors
	Form        createForm
	Errors      *formErrors
}

// createFields are the create form's fields, by their API names.
var createFields = []string{"connector_key", "label", "config", "schedule", "jitter"}

// connectionsPage lists connections (filtered by connector and health)
// with the create form.
func (c *Console) connectionsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderConnections(w, r, s, http.StatusOK, createForm{}, &formErrors{})
}

// renderConnections renders the list under the create form's values and
// errors.
func (c *Console) renderConnections(w http.ResponseWriter, r *http.Request, s *session, status int, form createForm, fe *formErrors) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	q := r.URL.Query()
	d := connectionsData{Verdicts: verdicts, Form: form, Errors: fe, FilterError: &formErrors{},
		Filter: connectionFilter{Connector: q.Get("connector"), Health: q.Get("health"), Cursor: q.Get("cursor")}}
	connectors, err := c.api.ListConnectors(ctx)
	if err != nil {
		return err
	}
	d.Connectors = connectors
	if d.Form.ConnectorKey == "" && len(connectors) == 1 {
		d.Form.ConnectorKey = connectors[0].ConnectorKey
	}
	page, err := c.api.ListConnections(ctx, client.ConnectionFilter{Connector: d.Filter.Connector, Health: d.Filter.Health,
		Cursor: d.Filter.Cursor, Limit: listLimit})
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.Status < 500:
		// A filter naming nothing, an unknown verdict, a stale cursor:
		// said in the filter form with the API's status, the list left
		// empty.
		d.FilterError.General = ae.Code + ": " + ae.Message
		if status == http.StatusOK {
			status = ae.Status
		}
	case err != nil:
		return err
	}
	for _, conn := range page.Items {
		row := connectionRow{Connection: conn}
		if row.LastRun, err = c.lastRun(ctx, conn.ID); err != nil {
			return err
		}
		d.Rows = append(d.Rows, row)
	}
	if page.Next != "" {
		d.Next = query(Prefix+"connections", "connector", d.Filter.Connector, "health", d.Filter.Health, "cursor", page.Next)
	}
	c.render(w, r, s, status, "connections.html", d)
	return nil
}

// lastRun returns a connection's newest run, nil when it has none.
func (c *Console) lastRun(ctx context.Context, id string) (*apitypes.Run, error) {
	runs, err := c.api.ListRuns(ctx, client.RunFilter{Connection: id, Limit: 1})
	if err != nil || len(runs.Items) == 0 {
		return nil, err
	}
	return &runs.Items[0], nil
}

// createConnection creates a connection from the create form and goes to
// it; a refusal re-renders the list with the error beside its field.
func (c *Console) createConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	f := createForm{
		ConnectorKey: strings.TrimSpace(r.PostForm.Get("connector_key")),
		Label:        r.PostForm.Get("label"),
		Config:       r.PostForm.Get("config"),
		Schedule:     strings.TrimSpace(r.PostForm.Get("schedule")),
		Jitter:       strings.TrimSpace(r.PostForm.Get("jitter")),
	}
	// The list under the form keeps no filter: the form posts to the
	// bare path.
	r.URL.RawQuery = ""
	cfg, err := parseConfig(f.Config)
	if err == nil {
		ctx, cancel := pageContext(r)
		var conn apitypes.Connection
		conn, err = c.api.CreateConnection(ctx, apitypes.ConnectionCreateRequest{ConnectorKey: f.ConnectorKey,
			Label: f.Label, Config: cfg, Schedule: f.Schedule, Jitter: f.Jitter})
		cancel()
		if err == nil {
			c.setFlash(s, "Connection "+conn.Label+" created.")
			http.Redirect(w, r, connPath(conn.ID), http.StatusSeeOther)
			return nil
		}
	}
	status := apiStatus(err)
	fe, err := formError(pointerField(err), createFields...)
	if err != nil {
		return err
	}
	return c.renderConnections(w, r, s, status, f, fe)
}

// errConfig is the console's own refusal of a config field that is not
// a JSON object, typed like the API's.
var errConfig = &client.APIError{Status: http.StatusBadRequest, Code: apitypes.CodeInvalidRequest, Field: "config",
	Message: `config must be a JSON object, e.g. {"records": 5}`}

// parseConfig parses a config field: a JSON object, its numbers kept as
// written (an int64 beyond 2^53 is not rounded); "" is no config (nil).
func parseConfig(s string) (map[string]any, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var cfg map[string]any
	if err := dec.Decode(&cfg); err != nil || cfg == nil {
		return nil, errConfig
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errConfig
	}
	return cfg, nil
}

// pointerField turns the JSON pointer an invalid_config names
// ("/config/records") into a form field path ("config.records"), so
// formError places it beside the config field.
func pointerField(err error) error {
	var ae *client.APIError
	if !errors.As(err, &ae) || !strings.HasPrefix(ae.Field, "/") {
		return err
	}
	cp := *ae
	cp.Field = strings.ReplaceAll(strings.TrimPrefix(ae.Field, "/"), "/", ".")
	return &cp
}

// apiStatus is the HTTP status of an API refusal (400 for anything else).
func apiStatus(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status >= 400 {
		return ae.Status
	}
	return http.StatusBadRequest
}

// connPath is a connection's page.
func connPath(id string) string { return Prefix + "connections/" + url.PathEscape(id) }
