package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// editForm is the edit form's values: the connection's, or the ones a
// refused submission sent (none secret).
type editForm struct {
	Label    string
	Config   string
	Schedule string
	Jitter   string
}

// editFields are the edit form's fields, by their API names.
var editFields = []string{"label", "config", "schedule", "jitter"}

// connectionData is connection.html's data.
type connectionData struct {
	Conn apitypes.Connection
	// Connector is nil when the connector is not in the catalog
	// (ConnectorError says so).
	Connector      *apitypes.Connector
	ConnectorError string
	Credential     apitypes.Credential
	// Explain is nil when the host could not explain (ExplainError).
	Explain      *apitypes.Explain
	ExplainError string
	Checkpoint   apitypes.Checkpoint
	LastRun      *apitypes.Run
	Form         editForm
	Errors       *formErrors
}

// connectionPage shows one connection: its facts, health, config and
// schema, credential panel, explain panel, checkpoint, and its forms.
func (c *Console) connectionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderConnection(w, r, s, http.StatusOK, nil, &formErrors{})
}

// renderConnection renders the connection page; form, when not nil, is
// a refused edit to show again with fe.
func (c *Console) renderConnection(w http.ResponseWriter, r *http.Request, s *session, status int, form *editForm, fe *formErrors) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	d, err := c.loadConnection(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.Errors = fe
	if form != nil {
		d.Form = *form
	}
	c.render(w, r, s, status, "connection.html", d)
	return nil
}

// loadConnection reads what the connection page shows. The connection
// must exist (connection_not_found is the 404 page); a connector missing
// from the catalog or an explain the host cannot give is shown in its
// panel instead.
func (c *Console) loadConnection(ctx context.Context, id string) (connectionData, error) {
	var d connectionData
	var err error
	if d.Conn, d.Connector, d.ConnectorError, err = c.connectionAndConnector(ctx, id); err != nil {
		return d, err
	}
	conn := d.Conn
	d.Form = editForm{Label: conn.Label, Config: prettyJSON(conn.Config), Schedule: conn.Schedule, Jitter: conn.Jitter}
	if d.Credential, err = c.api.GetCredential(ctx, id); err != nil {
		return d, err
	}
	ex, err := c.api.ExplainConnection(ctx, id)
	switch msg, ok := refusal(err); {
	case ok:
		d.ExplainError = msg
	case err != nil:
		return d, err
	default:
		d.Explain = &ex
	}
	if d.Checkpoint, err = c.api.GetCheckpoint(ctx, id); err != nil {
		return d, err
	}
	if d.LastRun, err = c.lastRun(ctx, id); err != nil {
		return d, err
	}
	return d, nil
}

// connectionAndConnector reads a connection (which must exist:
// connection_not_found is the 404 page) and its connector; a connector
// the API refuses (gone from the catalog) is nil, with the refusal as
// connectorErr for the page to show.
func (c *Console) connectionAndConnector(ctx context.Context, id string) (conn apitypes.Connection, connector *apitypes.Connector, connectorErr string, err error) {
	if conn, err = c.api.GetConnection(ctx, id); err != nil {
		return conn, nil, "", err
	}
	ctr, err := c.api.GetConnector(ctx, conn.ConnectorKey)
	if msg, ok := refusal(err); ok {
		return conn, nil, msg, nil
	}
	if err != nil {
		return conn, nil, "", err
	}
	return conn, &ctr, "", nil
}

// refusal returns "code: message" for an API refusal short of a server
// error, to show in a panel.
func refusal(err error) (string, bool) {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status < 500 {
		return ae.Code + ": " + ae.Message, true
	}
	return "", false
}

// editConnection applies the edit form: the fields that differ from the
// connection's are sent (schedule and jitter together, as the form shows
// them), so an unchanged field is not rewritten. An empty schedule
// removes the connection's own and puts it on its connector's default.
func (c *Console) editConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	f := editForm{
		Label:    r.PostForm.Get("label"),
		Config:   r.PostForm.Get("config"),
		Schedule: strings.TrimSpace(r.PostForm.Get("schedule")),
		Jitter:   strings.TrimSpace(r.PostForm.Get("jitter")),
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	cur, err := c.api.GetConnection(ctx, id)
	if err != nil {
		return err
	}
	req, err := editRequest(cur, f)
	if err == nil {
		if req == (apitypes.ConnectionUpdateRequest{}) {
			c.setFlash(s, "Nothing changed.")
			http.Redirect(w, r, connPath(id), http.StatusSeeOther)
			return nil
		}
		if _, err = c.api.UpdateConnection(ctx, id, req); err == nil {
			c.setFlash(s, "Connection saved.")
			http.Redirect(w, r, connPath(id), http.StatusSeeOther)
			return nil
		}
	}
	status := apiStatus(err)
	fe, err := formError(pointerField(err), editFields...)
	if err != nil {
		return err
	}
	return c.renderConnection(w, r, s, status, &f, fe)
}

// editRequest is the update that takes cur to the form's values.
func editRequest(cur apitypes.Connection, f editForm) (apitypes.ConnectionUpdateRequest, error) {
	var req apitypes.ConnectionUpdateRequest
	if f.Label != cur.Label {
		req.Label = &f.Label
	}
	cfg, err := parseConfig(f.Config)
	if err != nil {
		return req, err
	}
	if cfg == nil {
		cfg = map[string]any{}
	}
	if !sameJSON(cur.Config, cfg) {
		req.Config = &cfg
	}
	if f.Schedule != cur.Schedule || f.Jitter != cur.Jitter {
		req.Schedule, req.Jitter = &f.Schedule, &f.Jitter
	}
	return req, nil
}

// sameJSON reports whether raw and v are the same JSON value.
func sameJSON(raw json.RawMessage, v map[string]any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	norm := func(b []byte) (any, bool) {
		if len(bytes.TrimSpace(b)) == 0 {
			b = []byte("{}")
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var out any
		return out, dec.Decode(&out) == nil
	}
	x, ok1 := norm(raw)
	y, ok2 := norm(b)
	return ok1 && ok2 && reflect.DeepEqual(x, y)
}

// pauseConnection pauses the connection's schedule.
func (c *Console) pauseConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.connectionAction(w, r, s, (*client.Client).PauseConnection, "Connection paused: its schedule starts no run until it is resumed.")
}

// resumeConnection puts a paused connection back on its schedule.
func (c *Console) resumeConnection(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.connectionAction(w, r, s, (*client.Client).ResumeConnection, "Connection resumed.")
}

func (c *Console) connectionAction(w http.ResponseWriter, r *http.Request, s *session,
	do func(*client.Client, context.Context, string) (apitypes.Connection, error), flash string) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	conn, err := do(c.api, ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	c.setFlash(s, flash)
	http.Redirect(w, r, connPath(conn.ID), http.StatusSeeOther)
	return nil
}

// triggerRun queues a manual run and goes to its page, which follows it
// live (a worker launches it, or refuses it there, typed). A refusal the
// API gave at once with a recorded run goes to that refused run with the
// typed reason as a flash; any other refusal is the error page.
func (c *Console) triggerRun(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	run, err := c.api.TriggerRun(ctx, r.PathValue("id"))
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && ae.RunID != "":
		c.setFlash(s, "Run refused: "+ae.Code+": "+ae.Message)
		http.Redirect(w, r, runPath(ae.RunID), http.StatusSeeOther)
		return nil
	case err != nil:
		return err
	}
	c.setFlash(s, "Run queued: a worker launches it now; this page follows it.")
	http.Redirect(w, r, runPath(run.ID), http.StatusSeeOther)
	return nil
}

// runPath is a run's page.
func runPath(id string) string { return Prefix + "runs/" + url.PathEscape(id) }
