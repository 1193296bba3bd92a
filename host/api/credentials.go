package api

import (
	"errors"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/store"
)

// setCredential captures or rotates the connection's credential. The body
// is the only secret-bearing input of the API: it is decoded under its own
// size limit, never logged, and the response carries metadata only.
func (a *API) setCredential(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.CredentialSetRequest
	if err := decode(w, r, a.cfg.MaxCredentialBody, &req); err != nil {
		return err
	}
	if len(req.Values) == 0 {
		return invalid("values", "values must name at least one credential value")
	}
	// Shared with rewrap, exclusive with rotation (see API.keysetMu).
	a.keysetMu.RLock()
	meta, _, err := a.cfg.Control.SetCredential(r.Context(), Actor, r.PathValue("id"), req.Values)
	a.keysetMu.RUnlock()
	clear(req.Values)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toCredential(meta))
	return nil
}

func (a *API) getCredential(w http.ResponseWriter, r *http.Request) error {
	meta, err := a.cfg.Store.GetCredentialMeta(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrCredentialNotFound):
		writeJSON(w, http.StatusOK, credentialNone())
		return nil
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, toCredential(meta))
	return nil
}

func (a *API) revokeCredential(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	meta, err := a.cfg.Control.RevokeCredential(r.Context(), Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toCredential(meta))
	return nil
}

func (a *API) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	meta, err := a.cfg.Control.DeleteCredential(r.Context(), Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toCredential(meta))
	return nil
}
