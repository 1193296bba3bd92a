package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/control"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
)

func (a *API) getConnector(w http.ResponseWriter, r *http.Request) error {
	key := r.PathValue("key")
	e, ok := a.cfg.Catalog.Get(key)
	if !ok {
		return &Error{Status: http.StatusNotFound, Body: errBody(string(failure.ConnectorNotFound), fmt.Sprintf("connector %q is not in the catalog", key), "")}
	}
	writeJSON(w, http.StatusOK, toConnector(e))
	return nil
}

// parseJitter parses an optional Go duration.
func parseJitter(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, invalid("jitter", "jitter must be a non-negative Go duration such as \"30s\"")
	}
	return d, nil
}

// checkSchedule validates a spec before anything is stored.
func checkSchedule(spec string) error {
	if spec == "" {
		return nil
	}
	if err := schedule.Check(spec); err != nil {
		return invalid("schedule", "%v", err)
	}
	return nil
}

func encodeConfig(cfg map[string]any) (json.RawMessage, error) {
	if cfg == nil {
		return nil, nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, invalid("config", "config is not encodable as JSON")
	}
	return b, nil
}

func (a *API) createConnection(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ConnectionCreateRequest
	if err := decode(w, r, a.cfg.MaxBody, &req); err != nil {
		return err
	}
	if req.ConnectorKey == "" {
		return invalid("connector_key", "connector_key is required")
	}
	if _, ok := a.cfg.Catalog.Get(req.ConnectorKey); !ok {
		return &Error{Status: http.StatusBadRequest, Body: errBody(string(failure.ConnectorNotFound),
			fmt.Sprintf("connector_key %q names no catalogued connector", req.ConnectorKey), "connector_key")}
	}
	jitter, err := parseJitter(req.Jitter)
	if err != nil {
		return err
	}
	if err := checkSchedule(req.Schedule); err != nil {
		return err
	}
	cfg, err := encodeConfig(req.Config)
	if err != nil {
		return err
	}
	if err := checkLabel(&req.Label); err != nil {
		return err
	}
	c, entry, err := a.cfg.Control.CreateConnection(r.Context(), Actor, store.NewConnection{
		ConnectorKey: req.ConnectorKey, Label: req.Label, Config: cfg,
		Schedule: store.Schedule{Spec: req.Schedule, Jitter: jitter},
	})
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) && fe.Code == failure.ConnectorNotFound {
			return &Error{Status: http.StatusBadRequest, Body: errBody(string(fe.Code), fe.Message, "connector_key")}
		}
		return err
	}
	view, err := a.withOneHealth(r.Context(), a.toConnection(c, liveEntry(entry), a.nextRun(c)), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// nextRun is when the connection's next scheduled run may start: the
// scheduler's next instant, or, while the connection is backed off, the
// first instant at or after its BackoffUntil. A connection not enrolled
// (held, paused, skipped) has none.
func (a *API) nextRun(c store.Connection) time.Time {
	if a.cfg.Schedule == nil {
		return time.Time{}
	}
	t, err := a.cfg.Schedule.NextRun(c.ID)
	if err != nil {
		return time.Time{}
	}
	return a.backedOff(c, t)
}

// backedOff moves next, a connection's next run, past its backoff.
func (a *API) backedOff(c store.Connection, next time.Time) time.Time {
	if next.IsZero() || c.BackoffUntil.IsZero() {
		return next
	}
	t, err := a.cfg.Schedule.NextRunAfter(c.ID, c.BackoffUntil)
	if err != nil {
		return next
	}
	return t
}

// toConnection is a connection's view with its schedule in force: its
// own spec, or its connector's auto-enrolling default (the catalog
// decides; a connector not in the catalog has no default); none for a
// revoked connection, which never runs again. A paused one keeps its
// schedule in force: resume puts it back on it.
func (a *API) toConnection(c store.Connection, entry *apitypes.EnrollmentEntry, next time.Time) apitypes.Connection {
	out := toConnection(c, entry, next)
	out.ScheduleSource = control.ScheduleNone
	if c.State != store.ConnectionRevoked {
		e, _ := a.cfg.Catalog.Get(c.ConnectorKey)
		out.ScheduleInForce, out.ScheduleSource = control.ScheduleInForce(c.Schedule, e.Manifest.DefaultSchedule)
	}
	return out
}

// enrollmentOf returns the stored enrollment entries of the connections
// ids, by connection id.
func (a *API) enrollmentOf(r *http.Request, ids ...string) (map[string]apitypes.EnrollmentEntry, error) {
	entries, err := a.cfg.Store.EnrollmentOf(r.Context(), ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]apitypes.EnrollmentEntry, len(entries))
	for _, e := range entries {
		out[e.ConnectionID] = toEnrollmentEntry(e)
	}
	return out, nil
}

func (a *API) connectionView(r *http.Request, c store.Connection) (apitypes.Connection, error) {
	byID, err := a.enrollmentOf(r, c.ID)
	if err != nil {
		return apitypes.Connection{}, err
	}
	var entry *apitypes.EnrollmentEntry
	if e, ok := byID[c.ID]; ok {
		entry = &e
	}
	return a.withOneHealth(r.Context(), a.toConnection(c, entry, a.nextRun(c)), c)
}

func (a *API) listConnections(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownParams(q, "connector", "state", "health", "cursor", "limit"); err != nil {
		return err
	}
	verdict, err := a.healthFilter(q.Get("health"))
	if err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	f := store.ConnectionPageFilter{
		ConnectionFilter: store.ConnectionFilter{ConnectorKey: q.Get("connector"), State: store.ConnectionState(q.Get("state"))},
		Cursor:           q.Get("cursor"), Limit: limit,
	}
	if f.State != "" && !f.State.Valid() {
		return invalid("state", "state must be active, paused or revoked")
	}
	items, next, err := a.connectionPage(r, f)
	if err != nil {
		return err
	}
	if key := f.ConnectorKey; key != "" && len(items) == 0 && next == "" && f.Cursor == "" && !a.catalogued(key) {
		return unknownFilter(string(failure.ConnectorNotFound), "connector", key, "is not in the catalog and no connection uses it")
	}
	if verdict != "" {
		// Health is derived, not stored: each page read is filtered, and
		// the scan goes on, a page of what is still missing at a time (so
		// the matches never pass the limit and Next resumes right after
		// the last connection read), until the page is full, the list
		// ends, or healthScanRows connections were read for this request.
		items = keepVerdict(items, verdict)
		limit := store.PageLimit(limit)
		for scanned := limit; len(items) < limit && next != "" && scanned < healthScanRows; {
			f.Cursor, f.Limit = next, limit-len(items)
			var more []apitypes.Connection
			if more, next, err = a.connectionPage(r, f); err != nil {
				return err
			}
			scanned += f.Limit
			items = append(items, keepVerdict(more, verdict)...)
		}
	}
	writeJSON(w, http.StatusOK, apitypes.List[apitypes.Connection]{Items: items, Next: next})
	return nil
}

// healthScanRows bounds how many connections one health-filtered list
// request reads: past it the page is returned short, its Next going on.
const healthScanRows = 5000

func keepVerdict(items []apitypes.Connection, verdict string) []apitypes.Connection {
	return slices.DeleteFunc(items, func(c apitypes.Connection) bool {
		return c.Health == nil || c.Health.Verdict != verdict
	})
}

// connectionPage reads one page of connections with their enrollment,
// next run and health.
func (a *API) connectionPage(r *http.Request, f store.ConnectionPageFilter) ([]apitypes.Connection, string, error) {
	page, err := a.cfg.Store.ListConnectionPage(r.Context(), f)
	if err != nil {
		return nil, "", err
	}
	conns := page.Connections
	ids := make([]string, len(conns))
	for i, c := range conns {
		ids[i] = c.ID
	}
	byID, err := a.enrollmentOf(r, ids...)
	if err != nil {
		return nil, "", err
	}
	next := map[string]time.Time{}
	if a.cfg.Schedule != nil {
		for _, j := range a.cfg.Schedule.Jobs() {
			next[j.ConnectionID] = j.NextRun
		}
	}
	items := make([]apitypes.Connection, 0, len(conns))
	for _, c := range conns {
		var entry *apitypes.EnrollmentEntry
		if e, ok := byID[c.ID]; ok {
			entry = &e
		}
		items = append(items, a.toConnection(c, entry, a.backedOff(c, next[c.ID])))
	}
	if err := a.withHealth(r.Context(), items, conns); err != nil {
		return nil, "", err
	}
	return items, page.Next, nil
}

func (a *API) getConnection(w http.ResponseWriter, r *http.Request) error {
	c, err := a.cfg.Store.GetConnection(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	view, err := a.connectionView(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (a *API) updateConnection(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ConnectionUpdateRequest
	if err := decode(w, r, a.cfg.MaxBody, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	var p store.ConnectionPatch
	if req.Label != nil {
		if err := checkLabel(req.Label); err != nil {
			return err
		}
	}
	p.Label = req.Label
	if req.Config != nil {
		if *req.Config == nil {
			return invalid("config", "config must be a JSON object")
		}
		cfg, err := encodeConfig(*req.Config)
		if err != nil {
			return err
		}
		p.Config = cfg
	}
	if req.Schedule != nil || req.Jitter != nil {
		// Spec and jitter are replaced together: read what is not given.
		cur, err := a.cfg.Store.GetConnection(r.Context(), id)
		if err != nil {
			return err
		}
		sch := cur.Schedule
		if req.Schedule != nil {
			if err := checkSchedule(*req.Schedule); err != nil {
				return err
			}
			sch.Spec = *req.Schedule
		}
		if req.Jitter != nil {
			j, err := parseJitter(*req.Jitter)
			if err != nil {
				return err
			}
			sch.Jitter = j
		}
		if req.Schedule != nil && *req.Schedule == "" && req.Jitter == nil {
			// Back on the connector's default, whose period may be
			// shorter: the jitter goes unless given again.
			sch.Jitter = 0
		}
		p.Schedule = &sch
	}
	c, entry, err := a.cfg.Control.UpdateConnection(r.Context(), Actor, id, p)
	if err != nil {
		return err
	}
	view, err := a.withOneHealth(r.Context(), a.toConnection(c, liveEntry(entry), a.nextRun(c)), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (a *API) deleteConnection(w http.ResponseWriter, r *http.Request) error {
	d, err := a.cfg.Control.DeleteConnection(r.Context(), Actor, r.PathValue("id"))
	if err != nil {
		return err
	}
	id := d.Connection.ID
	if id == "" {
		id = r.PathValue("id")
	}
	writeJSON(w, http.StatusOK, apitypes.ConnectionDeleted{ID: id, Records: d.Records,
		Checkpoint: d.Checkpoint, Credential: d.Credential})
	return nil
}

func (a *API) setState(state store.ConnectionState) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := emptyBody(w, r); err != nil {
			return err
		}
		c, err := a.cfg.Control.SetState(r.Context(), Actor, r.PathValue("id"), state)
		if err != nil {
			return err
		}
		view, err := a.connectionView(r, c)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, view)
		return nil
	}
}

// emptyBody accepts no body or an empty JSON object on action routes
// (pause, cancel, …), so a client sending "{}" works and anything else is
// rejected rather than ignored.
func emptyBody(w http.ResponseWriter, r *http.Request) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	var none struct{}
	err := Decode(http.MaxBytesReader(w, r.Body, 4<<10), 4<<10, &none)
	var ae *Error
	if errors.As(err, &ae) && ae.Body.Message == "request body is required" {
		return nil
	}
	return err
}

// healthFilter checks a ?health= value: "" (no filter) or one of the
// verdicts health derives. A host that derives no health cannot filter
// by it.
func (a *API) healthFilter(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !slices.Contains(health.Verdicts, health.Verdict(v)) {
		names := make([]string, len(health.Verdicts))
		for i, h := range health.Verdicts {
			names[i] = string(h)
		}
		return "", invalid("health", "health must be one of %s", strings.Join(names, ", "))
	}
	if a.cfg.Health == nil {
		return "", &Error{Status: http.StatusServiceUnavailable, Body: errBody(apitypes.CodeUnavailable, "this host derives no health", "health")}
	}
	return v, nil
}
