package console

import (
	"fmt"
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
)

// connectorsPage lists the catalog: each connector's auth requirement,
// streams, default schedule and pinned checksum, and the plugin files the
// last scan rejected. A rescan button re-scans the plugin dir.
func (c *Console) connectorsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	l, err := c.api.ListConnectorsAll(ctx)
	if err != nil {
		return err
	}
	c.render(w, r, s, http.StatusOK, "connectors.html", l)
	return nil
}

// rescan re-scans the plugin dir (POST /v1/connectors/rescan) and says
// what changed.
func (c *Console) rescan(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	rep, err := c.api.RescanConnectors(ctx)
	if err != nil {
		return err
	}
	c.setFlash(s, rescanSummary(rep))
	http.Redirect(w, r, Prefix+"connectors", http.StatusSeeOther)
	return nil
}

func rescanSummary(rep apitypes.RescanReport) string {
	return fmt.Sprintf("Rescanned %s: %d connectors; added %d, re-registered %d, removed %d, rejected %d.",
		rep.PluginDir, rep.Connectors, len(rep.Added), len(rep.Reregistered), len(rep.Removed), len(rep.Rejected))
}
