package api

import (
	"net/http"

	"github.com/connhost/connhost/host/version"
)

// buildInfo answers GET /v1/version: this host's version and build
// (version.Info: no secret). It is under /v1, so it takes the operator
// token like every /v1 route; /healthz keeps the bare version for probes.
func (a *API) buildInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, version.Get())
	return nil
}
