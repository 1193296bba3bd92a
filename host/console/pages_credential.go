package console

import (
	"context"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
)

// credentialField is one write-only input of the credential form.
type credentialField struct {
	// Name is the env name the connector requires (DEMO_TOKEN).
	Name string
	// Field is the API's field for it (values.DEMO_TOKEN), where its
	// typed error lands.
	Field string
}

// credentialData is credential.html's data. It never holds a value:
// the form's inputs are always rendered empty.
type credentialData struct {
	Conn       apitypes.Connection
	Credential apitypes.Credential
	// Auth is the connector's auth capability; nil when the connector
	// is not in the catalog (ConnectorError says so) and the form
	// cannot be shown.
	Auth           *apitypes.Auth
	ConnectorError string
	Fields         []credentialField
	Errors         *formErrors
}

// credentialPage shows the credential's metadata and the write-only
// capture/rotation form: one password field per name the connector
// requires.
func (c *Console) credentialPage(w http.ResponseWriter, r *http.Request, s *session) error {
	return c.renderCredential(w, r, s, http.StatusOK, &formErrors{})
}

func (c *Console) renderCredential(w http.ResponseWriter, r *http.Request, s *session, status int, fe *formErrors) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	d, err := c.loadCredential(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	d.Errors = fe
	c.render(w, r, s, status, "credential.html", d)
	return nil
}

func (c *Console) loadCredential(ctx context.Context, id string) (credentialData, error) {
	var d credentialData
	conn, connector, connectorErr, err := c.connectionAndConnector(ctx, id)
	if err != nil {
		return d, err
	}
	d.Conn, d.ConnectorError = conn, connectorErr
	if connector != nil {
		d.Auth = &connector.Auth
		for _, n := range connector.Auth.Required {
			d.Fields = append(d.Fields, credentialField{Name: n, Field: "values." + n})
		}
	}
	if d.Credential, err = c.api.GetCredential(ctx, id); err != nil {
		return d, err
	}
	return d, nil
}

// captureFlash says the credential is saved and how the check that
// followed the capture ended: an inconclusive check (a network failure, a
// config the connector refuses, a crash) is not recorded as the
// credential's validity, so the flash is the only place the operator
// sees it.
func captureFlash(chk *apitypes.CredentialCheck) string {
	switch {
	case chk == nil:
		return "Credential saved"
	case !chk.Verdict:
		return "Credential saved; its check was inconclusive (validity not recorded): " + chk.Message
	case chk.Valid && chk.Message != "":
		return "Credential saved; check: " + chk.Message
	case chk.Valid:
		return "Credential saved; check: valid"
	}
	return "Credential saved; check: invalid: " + chk.Message
}

// setCredential captures or rotates the credential from the form. Every
// required name is sent (an empty one for the API to refuse, typed, on
// its field). A refusal re-renders the form with the error beside the
// field and every input empty: a submitted value is never rendered.
func (c *Console) setCredential(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	id := r.PathValue("id")
	d, err := c.loadCredential(ctx, id)
	if err != nil {
		return err
	}
	if d.Auth == nil {
		return &pageError{status: http.StatusConflict, code: "connector_not_found",
			msg: "the connection's connector is not in the catalog, so the names its credential needs are unknown: " + d.ConnectorError}
	}
	if len(d.Fields) == 0 {
		return &pageError{status: http.StatusConflict, code: "invalid_request",
			msg: "the connector's auth kind is " + d.Auth.Kind + ": it requires no credential value"}
	}
	req := apitypes.CredentialSetRequest{Values: make(map[string]string, len(d.Fields))}
	fields := make([]string, 0, len(d.Fields))
	for _, f := range d.Fields {
		req.Values[f.Name] = r.PostForm.Get("value." + f.Name)
		req.Order = append(req.Order, f.Name)
		fields = append(fields, f.Field)
	}
	cred, err := c.api.SetCredential(ctx, id, req)
	clear(req.Values)
	clear(r.PostForm)
	clear(r.Form)
	if err == nil {
		c.setFlash(s, captureFlash(cred.Check))
		http.Redirect(w, r, connPath(id), http.StatusSeeOther)
		return nil
	}
	status := apiStatus(err)
	fe, err := formError(err, fields...)
	if err != nil {
		return err
	}
	d.Errors = fe
	c.render(w, r, s, status, "credential.html", d)
	return nil
}
