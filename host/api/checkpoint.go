package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/store"
)

// getCheckpoint shows the connection's last committed checkpoint.
func (a *API) getCheckpoint(w http.ResponseWriter, r *http.Request) error {
	if err := knownParams(r.URL.Query()); err != nil {
		return err
	}
	cp, ok, err := a.cfg.Store.LastCheckpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toCheckpoint(cp, ok))
	return nil
}

// resetCheckpoint clears the connection's checkpoint (audited; refused
// run_active while a run holds the connection's lease).
func (a *API) resetCheckpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	cp, had, err := a.cfg.Control.ResetCheckpoint(r.Context(), Actor, id)
	if err != nil {
		return err
	}
	out := apitypes.CheckpointReset{ConnectionID: id, Removed: had}
	if had {
		prev := toCheckpoint(cp, true)
		out.Previous = &prev
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// toCheckpoint converts a stored checkpoint: JSON state as JSON, other
// bytes as base64.
func toCheckpoint(cp store.Checkpoint, ok bool) apitypes.Checkpoint {
	out := apitypes.Checkpoint{ConnectionID: cp.ConnectionID, Present: ok}
	if !ok {
		return out
	}
	out.Bytes, out.RunID, out.UpdatedAt = len(cp.State), cp.RunID, stamp(cp.UpdatedAt)
	if len(cp.State) > 0 && json.Valid(cp.State) {
		out.State = json.RawMessage(cp.State)
	} else if len(cp.State) > 0 {
		out.StateBase64 = base64.StdEncoding.EncodeToString(cp.State)
	}
	return out
}
