package runner

import (
	"context"
	"time"

	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
)

// DefaultBackoffCap bounds the backoff of a connection that keeps failing
// when Config.BackoffCap is zero.
const DefaultBackoffCap = 24 * time.Hour

// BackoffAfter is the failure in a row, of one failure code, from which a
// connection's schedule backs off.
const BackoffAfter = 3

// finishPolicy decides, for a scheduled or retry run that ends with res,
// what its connection's schedule does next (issue 12):
//
//   - a failure only a person can fix (store.HoldCodes) holds the
//     schedule: no further scheduled run until the cause is addressed;
//   - from the BackoffAfter-th failure in a row of one other code, the
//     schedule backs off: res.BackoffUntil is the run's end plus the
//     period of the schedule in force times 2^(count-2), capped at
//     Config.BackoffCap. The store refuses every schedule instant before
//     it (store.TickHeld); a success or an operator change clears it.
//
// The count comes from the connection as read at launch (h.conn: its
// streak before this run). A manual run never holds nor backs off: it is
// an operator trying, and the operator sees its result. Runs that say
// nothing about the connection (store.CountsInStreak) change nothing.
func (r *Runner) finishPolicy(h *Handle, req Request, res *store.RunResult) {
	c := h.conn
	if c == nil || req.Trigger == store.TriggerManual || res.Status == store.RunSucceeded ||
		!store.CountsInStreak(res.Status, res.FailureCode) {
		return
	}
	if store.IsHoldCode(res.FailureCode) {
		res.Hold = true
		return
	}
	end := r.cfg.Now().UTC()
	count := c.Streak.After(res.Status, res.FailureCode, end).FailCount
	if count < BackoffAfter {
		return
	}
	entry, _ := r.cfg.Catalog.Get(c.ConnectorKey)
	spec := schedule.InForce(c.Schedule.Spec, entry.Manifest.DefaultSchedule)
	if spec == "" {
		return // no schedule to back off
	}
	interval, err := schedule.IntervalAt(spec, end)
	if err != nil || interval <= 0 {
		r.cfg.Logger.Warn("no backoff: the schedule in force has no interval", "connection_id", c.ID, "spec", spec, "error", err)
		return
	}
	res.BackoffUntil = end.Add(BackoffDelay(interval, count, r.cfg.BackoffCap))
	r.cfg.Logger.Warn("connection backed off after repeated failures", "connection_id", c.ID,
		"failure_code", string(res.FailureCode), "failures_in_a_row", count, "until", res.BackoffUntil.Format(time.RFC3339))
}

// BackoffDelay is how long a connection whose schedule runs every
// interval waits after its count-th failure in a row of one code:
// nothing before BackoffAfter, then interval×2^(count-2), at most limit
// (DefaultBackoffCap when limit is zero or negative).
func BackoffDelay(interval time.Duration, count int, limit time.Duration) time.Duration {
	if limit <= 0 {
		limit = DefaultBackoffCap
	}
	if count < BackoffAfter || interval <= 0 {
		return 0
	}
	d := interval
	for i := 0; i < count-2; i++ {
		if d >= limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// held tells the host that run's connection was just held
// (Config.OnHold), so its schedule stops at once on every host.
func (r *Runner) held(ctx context.Context, res store.RunResult, fin store.Run, ferr error) {
	if !res.Hold || ferr != nil || r.cfg.OnHold == nil {
		return
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	r.cfg.Logger.Warn("connection held: its schedule stops until the cause is addressed", "connection_id", fin.ConnectionID,
		"run_id", fin.ID, "failure_code", string(fin.FailureCode))
	r.cfg.OnHold(hctx, fin.ConnectionID)
}
