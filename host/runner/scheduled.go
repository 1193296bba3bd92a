package runner

import (
	"context"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// ForDispatch adapts the runner to the dispatch workers' Launcher: every
// occurrence — scheduled, retry or manual — is a Launch like any other,
// and the worker waits for the run to end so the pool counts real runs.
func (r *Runner) ForDispatch() dispatch.Launcher { return dispatched{r} }

type dispatched struct{ r *Runner }

func (d dispatched) Run(ctx context.Context, req dispatch.Request) dispatch.Outcome {
	actor := audit.ActorScheduler
	if req.Trigger == store.TriggerManual {
		actor = audit.ActorOperator
	}
	h, err := d.r.Launch(ctx, Request{
		ConnectionID: req.ConnectionID,
		Trigger:      req.Trigger,
		Attempt:      req.Attempt,
		RetryOf:      req.RetryOf,
		Actor:        actor,
		RunID:        req.RunID,
		ScheduledFor: req.ScheduledFor,
		OccurrenceID: req.OccurrenceID,
	})
	if h == nil {
		d.r.cfg.Logger.Warn("occurrence not started", "connection_id", req.ConnectionID, "trigger", string(req.Trigger),
			"occurrence_id", req.OccurrenceID, "error", err)
		return dispatch.Outcome{}
	}
	// Shutdown cancels the run itself (host_shutdown); wait for its row.
	run, err := h.Result()
	return dispatch.Outcome{RunID: run.ID, Status: run.Status, Code: run.FailureCode,
		Retryable: run.Status == store.RunFailed && failure.IsRetryable(err)}
}

func (d dispatched) Refuse(ctx context.Context, connectionID string, cause error) (store.Run, error) {
	return d.r.Refuse(ctx, connectionID, cause)
}

var _ dispatch.Launcher = dispatched{}
