package console

import (
	"errors"
	"net/http"

	"github.com/connhost/connhost/host/api/client"
)

// registerActivity declares the run, records, enrollment, attention and
// audit pages.
func (c *Console) registerActivity() {
	c.mux.HandleFunc("GET "+Prefix+"attention", c.page(c.attentionPage))
	c.mux.HandleFunc("GET "+Prefix+"enrollment", c.page(c.enrollmentPage))
	c.mux.HandleFunc("GET "+Prefix+"runs", c.page(c.runsPage))
	c.mux.HandleFunc("GET "+Prefix+"runs/{id}", c.page(c.runPage))
	c.mux.Handle("POST "+Prefix+"runs/{id}/cancel", c.action(c.cancelRun))
	// Without a session the relay answers 401 (toSignIn), never a
	// redirect an EventSource would follow into an HTML page.
	c.mux.HandleFunc("GET "+Prefix+"runs/{id}/events", c.page(c.runEvents))
	c.mux.HandleFunc("GET "+Prefix+"connections/{id}/records", c.page(c.recordsPage))
	c.mux.HandleFunc("GET "+Prefix+"audit", c.page(c.auditPage))
}

// attentionPage lists the connections whose health needs a person (GET
// /v1/attention), with what to do about each.
func (c *Console) attentionPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	l, err := c.api.Attention(ctx)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "attention.html", l)
	return nil
}

// enrollmentPage shows every connection's enrollment outcome (GET
// /v1/enrollment).
func (c *Console) enrollmentPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	en, err := c.api.Enrollment(ctx)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "enrollment.html", en)
	return nil
}

// filterError places an API refusal of a list's filters beside the
// filter input it names: a 400 (a malformed value, a stale cursor) or a
// 404 (a filter naming nothing) with a field the form has. The page is
// then re-rendered with the API's status. Anything else is returned for
// the error page.
func filterError(err error, fields ...string) (*formErrors, int, error) {
	var ae *client.APIError
	if !errors.As(err, &ae) || (ae.Status != http.StatusBadRequest && ae.Status != http.StatusNotFound) || ae.Field == "" {
		return nil, 0, err
	}
	fe := &formErrors{Fields: map[string]string{}, Code: ae.Code}
	msg := ae.Code + ": " + ae.Message
	for _, f := range fields {
		if ae.Field == f {
			fe.Fields[f] = msg
			return fe, ae.Status, nil
		}
	}
	fe.General = msg + " (field " + ae.Field + ")"
	return fe, ae.Status, nil
}
