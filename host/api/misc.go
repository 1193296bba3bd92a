package api

import (
	"context"
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/version"
	"github.com/connhost/connhost/keysets"
)

// OpenAPI is the OpenAPI 3.1 document served at /v1/openapi.json. It is
// written by hand next to the handlers; TestOpenAPIMatchesRoutes keeps it
// and the registered routes equal.
//
//go:embed openapi.json
var OpenAPI []byte

func (a *API) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(OpenAPI)
	return nil
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok", Version: version.Version})
	return nil
}

// readyz answers 200 when the store answers and the host is not shutting
// down.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	if a.closing.Load() {
		return &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "shutting down", "")}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := a.cfg.Store.Ping(ctx); err != nil {
		a.log.Warn("readiness: store ping failed", "error", err)
		if failure.CodeOf(err) == failure.StoreCorrupt {
			return &Error{Status: http.StatusServiceUnavailable, Body: errBody(string(failure.StoreCorrupt), "the store is corrupt: restore it from a backup", "")}
		}
		return &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "store unavailable", "")}
	}
	writeJSON(w, http.StatusOK, Health{Status: "ready", Version: version.Version})
	return nil
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownParams(q, "target", "target_kind", "operation", "cursor", "limit"); err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	page, err := a.cfg.Store.ListAudit(r.Context(), store.AuditFilter{TargetID: q.Get("target"), TargetKind: q.Get("target_kind"),
		Operation: q.Get("operation"), Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	items := make([]apitypes.AuditEvent, 0, len(page.Events))
	for _, e := range page.Events {
		items = append(items, toAuditEvent(e))
	}
	writeJSON(w, http.StatusOK, apitypes.List[apitypes.AuditEvent]{Items: items, Next: page.Next})
	return nil
}

func (a *API) enrollment(w http.ResponseWriter, r *http.Request) error {
	if err := knownParams(r.URL.Query()); err != nil {
		return err
	}
	entries, err := a.cfg.Store.ListEnrollment(r.Context())
	if err != nil {
		return err
	}
	out := apitypes.Enrollment{Connections: make([]apitypes.EnrollmentEntry, 0, len(entries))}
	for _, e := range entries {
		out.Connections = append(out.Connections, toEnrollmentEntry(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) listHosts(w http.ResponseWriter, r *http.Request) error {
	if err := knownParams(r.URL.Query()); err != nil {
		return err
	}
	hosts, err := a.cfg.Store.ListHosts(r.Context())
	if err != nil {
		return err
	}
	out := apitypes.HostList{Hosts: make([]apitypes.Host, 0, len(hosts))}
	for _, h := range hosts {
		out.Hosts = append(out.Hosts, toHost(h))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func toKeysetInfo(info keysets.Info) apitypes.KeysetInfo {
	out := apitypes.KeysetInfo{PrimaryKeyID: info.PrimaryKeyID, Encrypted: info.Encrypted, KEK: info.KEK,
		Keys: make([]apitypes.KeyInfo, 0, len(info.Keys))}
	for _, k := range info.Keys {
		out.Keys = append(out.Keys, apitypes.KeyInfo{ID: k.ID, Status: k.Status, Type: k.Type, Primary: k.Primary})
	}
	return out
}

func toRewrapReport(rep broker.RewrapReport) apitypes.RewrapReport {
	out := apitypes.RewrapReport{PrimaryKeyID: rep.PrimaryKeyID, Scanned: rep.Scanned, Rewrapped: rep.Rewrapped,
		Current: rep.Current, Quarantined: orEmpty(rep.Quarantined), Failed: make([]apitypes.RewrapFailure, 0, len(rep.Failed))}
	for _, f := range rep.Failed {
		out.Failed = append(out.Failed, apitypes.RewrapFailure{ConnectionID: f.ConnectionID, Reason: f.Reason})
	}
	return out
}

func (a *API) keysetInfo(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, toKeysetInfo(a.cfg.Keyset.Info()))
	return nil
}

// rotateKeyset adds a new primary key and loads it. It waits for captures
// and rewraps in flight and holds new ones back until the new keyset is
// loaded.
func (a *API) rotateKeyset(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	a.keysetMu.Lock()
	info, err := a.cfg.Keyset.Rotate(r.Context(), Actor)
	a.keysetMu.Unlock()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toKeysetInfo(info))
	return nil
}

func (a *API) rewrapKeyset(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	a.keysetMu.RLock()
	rep, err := a.cfg.Keyset.Rewrap(r.Context(), Actor)
	a.keysetMu.RUnlock()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRewrapReport(rep))
	return nil
}

// setKey disables or enables a keyset key. Like a rotation, it waits for
// captures and rewraps in flight and holds new ones back meanwhile.
func (a *API) setKey(enable bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := emptyBody(w, r); err != nil {
			return err
		}
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
		if err != nil {
			return invalid("id", "not a key id: want a decimal number from 0 to 4294967295, as GET /v1/keyset lists them")
		}
		a.keysetMu.Lock()
		var ch KeyChange
		if enable {
			ch, err = a.cfg.Keyset.EnableKey(r.Context(), Actor, uint32(id))
		} else {
			ch, err = a.cfg.Keyset.DisableKey(r.Context(), Actor, uint32(id))
		}
		a.keysetMu.Unlock()
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, apitypes.KeyChange{KeyID: ch.KeyID, Changed: ch.Changed,
			QuarantinedCredentials: ch.QuarantinedCredentials, Keyset: toKeysetInfo(ch.Keyset)})
		return nil
	}
}
