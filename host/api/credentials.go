package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/store"
)

// setCredential captures or rotates the connection's credential. The body
// is the only secret-bearing input of the API: it is decoded under its own
// size limit, never logged, and the response carries metadata only, with
// the outcome of the check that followed the capture.
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
	got, err := a.cfg.Control.SetCredential(r.Context(), Actor, r.PathValue("id"), req.Values, req.Order)
	a.keysetMu.RUnlock()
	clear(req.Values)
	if err != nil {
		return err
	}
	out := a.credential(got.Credential)
	out.Check = toCredentialCheck(got.Check)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// credential converts credential metadata, keyset-aware: an active
// credential sealed under a key the loaded keyset does not hold is not
// usable, and reads as state key_missing, not present.
func (a *API) credential(m store.CredentialMeta) apitypes.Credential {
	out := toCredential(m)
	if m.State == store.CredentialActive && !a.cfg.Keyset.Info().Holds(m.KeyID) {
		out.State, out.Present = CredentialKeyMissing, false
	}
	return out
}

// CredentialKeyMissing is the state the API reports for an active
// credential the loaded keyset cannot decrypt.
const CredentialKeyMissing = "key_missing"

func (a *API) getCredential(w http.ResponseWriter, r *http.Request) error {
	meta, err := a.cfg.Store.GetCredentialMeta(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrCredentialNotFound):
		writeJSON(w, http.StatusOK, credentialNone())
		return nil
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, a.credential(meta))
	return nil
}

func (a *API) revokeCredential(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	meta, err := a.cfg.Control.RevokeCredential(r.Context(), Actor, r.PathValue("id"))
	if err != nil {
		return noCredential(err, r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, a.credential(meta))
	return nil
}

func (a *API) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	meta, err := a.cfg.Control.DeleteCredential(r.Context(), Actor, r.PathValue("id"))
	if err != nil {
		return noCredential(err, r.PathValue("id"))
	}
	writeJSON(w, http.StatusOK, a.credential(meta))
	return nil
}

// noCredential names the connection in a credential_not_found.
func noCredential(err error, id string) error {
	if errors.Is(err, store.ErrCredentialNotFound) {
		return &Error{Status: http.StatusNotFound, Body: errBody(apitypes.CodeCredentialNotFound,
			fmt.Sprintf("connection %q has no stored credential", id), "")}
	}
	return err
}
