package api

import (
	"context"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/store"
)

// ConnectionHealth derives connections' health (health.Assessor): never decrypting,
// with one batched credential metadata read per call.
type ConnectionHealth interface {
	AssessAll(ctx context.Context, conns []store.Connection) ([]health.Health, error)
	// Scan derives the health of every connection l lists.
	Scan(ctx context.Context, l health.Lister) (health.Report, error)
}

// withHealth sets the health of views, which are conns' views in order.
// Without a Health the views carry none.
func (a *API) withHealth(ctx context.Context, views []apitypes.Connection, conns []store.Connection) error {
	if a.cfg.Health == nil || len(conns) == 0 {
		return nil
	}
	hs, err := a.cfg.Health.AssessAll(ctx, conns)
	if err != nil {
		return err
	}
	for i := range views {
		views[i].Health = toHealth(hs[i])
	}
	return nil
}

// withOneHealth is withHealth for one view.
func (a *API) withOneHealth(ctx context.Context, view apitypes.Connection, c store.Connection) (apitypes.Connection, error) {
	views := []apitypes.Connection{view}
	err := a.withHealth(ctx, views, []store.Connection{c})
	return views[0], err
}

// attention serves GET /v1/attention: every connection whose health
// needs a person, oldest since first, read afresh (a full scan of the
// connections, a page and one batched credential read per 1,000).
func (a *API) attention(w http.ResponseWriter, r *http.Request) error {
	if err := knownParams(r.URL.Query()); err != nil {
		return err
	}
	if a.cfg.Health == nil {
		return &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "this host derives no health", "")}
	}
	rep, err := a.cfg.Health.Scan(r.Context(), a.cfg.Store)
	if err != nil {
		return err
	}
	items := make([]apitypes.AttentionItem, 0, len(rep.Attention))
	for _, it := range rep.Attention {
		items = append(items, toAttentionItem(it))
	}
	writeJSON(w, http.StatusOK, apitypes.List[apitypes.AttentionItem]{Items: items, Next: ""})
	return nil
}
