package runner

import (
	"context"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
)

// ForScheduler adapts the runner to the scheduler's Launcher: a scheduled
// occurrence or a retry is a Launch like any other, and the scheduler
// waits for the run to end so its concurrency limit counts real runs.
func (r *Runner) ForScheduler() schedule.Launcher { return scheduled{r} }

type scheduled struct{ r *Runner }

func (s scheduled) Launch(ctx context.Context, a schedule.Attempt) schedule.Result {
	h, err := s.r.Launch(ctx, Request{
		ConnectionID: a.ConnectionID,
		Trigger:      store.RunTrigger(a.Trigger),
		Attempt:      a.Attempt,
		RetryOf:      a.RetryOf,
		Actor:        audit.ActorScheduler,
	})
	if h == nil {
		s.r.cfg.Logger.Warn("scheduled launch not started", "connection_id", a.ConnectionID, "failure_code", string(failure.CodeOf(err)))
		return schedule.Result{}
	}
	// Shutdown cancels the run itself (host_shutdown); wait for its row.
	run, err := h.Result()
	return schedule.Result{RunID: run.ID, Retryable: run.Status == store.RunFailed && failure.IsRetryable(err)}
}

var _ schedule.Launcher = scheduled{}
