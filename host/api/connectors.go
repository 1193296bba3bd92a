package api

import (
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/catalog"
)

// listConnectors is GET /v1/connectors[?all=true]: the catalogued
// connectors, and with all=true the plugin dir's rejected files, each
// with the manifest field at fault and the reason.
func (a *API) listConnectors(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownParams(q, "all"); err != nil {
		return err
	}
	all := false
	switch q.Get("all") {
	case "", "false":
	case "true":
		all = true
	default:
		return invalid("all", "all must be true or false")
	}
	entries := a.cfg.Catalog.List()
	out := apitypes.ConnectorList{Items: make([]apitypes.Connector, 0, len(entries))}
	for _, e := range entries {
		out.Items = append(out.Items, toConnector(e))
	}
	if all {
		out.Rejected = toRejected(a.cfg.Catalog.Rejected())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rescanConnectors is POST /v1/connectors/rescan: this host re-scans its
// plugin dir.
func (a *API) rescanConnectors(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	if a.cfg.Rescanner == nil {
		return &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "this host cannot rescan its plugin dir", "")}
	}
	rep, err := a.cfg.Rescanner.Rescan(r.Context(), Actor)
	if err != nil {
		return err
	}
	out := apitypes.RescanReport{PluginDir: rep.Dir, Connectors: rep.Connectors, Added: []string{},
		Reregistered: []string{}, Removed: []string{}, Rejected: toRejected(rep.Rejected)}
	for _, c := range rep.Changes {
		switch c.Kind {
		case catalog.Added:
			out.Added = append(out.Added, c.Key)
		case catalog.Reregistered:
			out.Reregistered = append(out.Reregistered, c.Key)
		case catalog.Removed:
			out.Removed = append(out.Removed, c.Key)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func toRejected(rs []catalog.Rejection) []apitypes.RejectedPlugin {
	out := make([]apitypes.RejectedPlugin, 0, len(rs))
	for _, r := range rs {
		out = append(out, apitypes.RejectedPlugin{File: r.File, Field: r.Field, Code: string(r.Code), Reason: r.Reason})
	}
	return out
}
