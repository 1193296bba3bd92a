package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/internal/runops"
	"github.com/connhost/connhost/host/store"
)

// triggerRun queues a manual run (control.TriggerRun → the dispatch
// queue; a worker of some host starts it through runner.Launch): 202
// with the queued run, or the typed refusal with the refused run's id.
func (a *API) triggerRun(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	run, err := a.cfg.Control.TriggerRun(r.Context(), Actor, r.PathValue("id"))
	if err != nil {
		a.refused(w, r, run.ID, err)
		return nil
	}
	w.Header().Set("Location", "/v1/runs/"+run.ID)
	writeJSON(w, http.StatusAccepted, toRun(run))
	return nil
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownParams(q, "connection", "status", "trigger", "host", "cursor", "limit"); err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	f := store.RunFilter{ConnectionID: q.Get("connection"), Status: store.RunStatus(q.Get("status")),
		Trigger: store.RunTrigger(q.Get("trigger")), HostID: q.Get("host"), Cursor: q.Get("cursor"), Limit: limit}
	if f.Status != "" && !f.Status.Valid() {
		return invalid("status", "status must be one of queued, running, succeeded, failed, refused, cancelled")
	}
	if f.Trigger != "" && !f.Trigger.Valid() {
		return invalid("trigger", "trigger must be one of manual, scheduled, retry")
	}
	page, err := a.cfg.Store.ListRuns(r.Context(), f)
	if err != nil {
		return err
	}
	if len(page.Runs) == 0 && f.Cursor == "" {
		// Runs outlive their connection and host rows: only an empty
		// answer asks whether the filter names anything.
		if err := a.checkConnectionFilter(r.Context(), "connection", f.ConnectionID); err != nil {
			return err
		}
		if err := a.checkHostFilter(r.Context(), f.HostID); err != nil {
			return err
		}
	}
	items := make([]apitypes.Run, 0, len(page.Runs))
	for _, run := range page.Runs {
		items = append(items, toRun(run))
	}
	writeJSON(w, http.StatusOK, apitypes.List[apitypes.Run]{Items: items, Next: page.Next})
	return nil
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) error {
	run, err := a.cfg.Store.GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRun(run))
	return nil
}

// cancelRun cancels a run — queued, or running on this host or another —
// and answers with its final row once it has ended (children killed,
// lease released).
func (a *API) cancelRun(w http.ResponseWriter, r *http.Request) error {
	if err := emptyBody(w, r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.CancelWait)
	defer cancel()
	run, err := runops.Cancel(ctx, a.cfg.Store, a.cfg.Store, a.cfg.Runs, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toRun(run))
	return nil
}

// runEvents streams the run's events as Server-Sent Events until its end.
func (a *API) runEvents(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.cfg.Store.GetRun(r.Context(), id); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.streams, cancel)
	defer stop()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil // the client is gone
	}
	err := runops.Follow(ctx, a.cfg.Store, a.cfg.Runs.Events(), id, a.cfg.Heartbeat, func(u runops.Update) error {
		if u.Heartbeat {
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return err
			}
			return rc.Flush()
		}
		ev := toRunEvent(u.Event)
		if u.Run != nil {
			ev.Status, ev.FailureCode, ev.Records = string(u.Run.Status), string(u.Run.FailureCode), u.Run.Records
			if u.End() {
				ev.Message = u.Run.FailureMessage
			}
		}
		data, err := marshal(ev)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, data); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && ctx.Err() == nil {
		a.log.Debug("event stream ended", "run_id", id, "error", err)
	}
	// The status line is sent: errors can no longer be reported as JSON.
	return nil
}

func (a *API) listRecords(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownParams(q, "stream", "cursor", "limit"); err != nil {
		return err
	}
	limit, err := queryLimit(q)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	c, err := a.cfg.Store.GetConnection(r.Context(), id)
	if err != nil {
		return err
	}
	stream := q.Get("stream")
	page, err := a.cfg.Store.ListRecords(r.Context(), store.RecordQuery{ConnectionID: id, Stream: stream,
		Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	if stream != "" && len(page.Records) == 0 && q.Get("cursor") == "" {
		if ok, names := a.streamDeclared(c.ConnectorKey, stream); !ok {
			return unknownFilter(apitypes.CodeNotFound, "stream", stream,
				fmt.Sprintf("is not a stream of connector %s (streams: %s)", c.ConnectorKey, strings.Join(names, ", ")))
		}
	}
	items := make([]apitypes.Record, 0, len(page.Records))
	for _, rec := range page.Records {
		items = append(items, toRecord(rec))
	}
	writeJSON(w, http.StatusOK, apitypes.List[apitypes.Record]{Items: items, Next: page.Next})
	return nil
}
