package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/wire"
)

// execute is steps 5 and 6 of Launch: stream the run, persist, finish.
func (r *Runner) execute(ctx context.Context, h *Handle, req Request, conn store.Connection,
	entry catalog.Entry, run store.Run, env []string, res broker.Resolution) {
	defer r.wg.Done()
	defer h.cancel(nil)
	start := r.cfg.Now()
	if o := r.cfg.Observer; o != nil {
		o.RunStarted(string(req.Trigger))
	}
	r.publish(runevents.Event{RunID: run.ID, ConnectionID: conn.ID, Kind: runevents.KindStatus, Status: string(store.RunRunning)})

	stopRenew := r.renewLease(ctx, h, conn.ID, run.ID)
	s := r.newStream(ctx, h, conn, run, entry.Key)
	err := func() error {
		checkpoint, _, err := r.cfg.Store.GetCheckpoint(ctx, conn.ID)
		if err != nil {
			return &failure.Error{Code: failure.Internal, Message: "load checkpoint: " + err.Error(), Err: err}
		}
		return r.cfg.Launcher.Run(ctx, launch.Spec{
			Name:    entry.Key,
			Path:    entry.Path,
			SHA256:  entry.SHA256,
			Image:   entry.Image,
			Env:     env,
			Secrets: res.Secrets(),
			Timeout: r.cfg.RunTimeout,
		}, wire.RunRequest{
			RunID: run.ID, ConnectionID: conn.ID, Trigger: string(req.Trigger),
			Config: conn.Config, Checkpoint: checkpoint,
		}, s.emit)
	}()
	// Whatever ended the run, the records received are still saved,
	// those after the last checkpoint too: they are upserts, so the next
	// run re-emitting them is harmless, and the checkpoint never moves
	// past them. A failed commit outranks how the launch ended: it is
	// what the operator must see (a cancel still reads as one, see
	// classify).
	if cerr := s.close(); cerr != nil {
		err = cerr
	}
	stopRenew()

	result := r.classify(ctx, err)
	r.finishPolicy(h, req, &result)
	if result.FailureCode == failure.CredentialRejected {
		if _, verr := r.cfg.Store.SetCredentialValidity(context.WithoutCancel(ctx), conn.ID, false, result.FailureMessage); verr != nil &&
			!errors.Is(verr, store.ErrCredentialNotFound) {
			r.cfg.Logger.Error("record credential validity", "connection_id", conn.ID, "error", verr)
		}
	}
	// The outcome is decided: a cancel from now on finds nothing to
	// cancel (and sees the final row once it is written), never a no-op
	// that reports success.
	r.forget(run.ID)
	finCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fin, ferr := r.cfg.Store.FinishRun(finCtx, run.ID, result)
	r.held(finCtx, result, fin, ferr)
	if ferr != nil {
		r.cfg.Logger.Error("finish run", "run_id", run.ID, "error", ferr)
		fin = run
		fin.Status, fin.FailureCode, fin.FailureMessage = result.Status, result.FailureCode, result.FailureMessage
		fin.Records, fin.StreamRecords = s.committed.Load(), s.streams
	}
	r.release(conn.ID, run.ID)

	elapsed := r.cfg.Now().Sub(start)
	outcome := store.AuditSucceeded
	if result.Status != store.RunSucceeded {
		outcome = store.AuditFailed
	}
	detail := map[string]string{"run_id": run.ID, "trigger": string(req.Trigger), "status": string(result.Status),
		"records": strconv.FormatInt(s.committed.Load(), 10)}
	if result.FailureCode != "" {
		detail["failure_code"] = string(result.FailureCode)
	}
	r.cfg.Audit.Record(finCtx, audit.Event{
		Actor: req.Actor, Operation: "run.finish", TargetKind: "connection", TargetID: conn.ID, Outcome: outcome, Detail: detail,
	})
	if o := r.cfg.Observer; o != nil {
		o.RunEnded(string(req.Trigger), result.Status, result.FailureCode, elapsed)
	}
	r.cfg.Logger.Info("run finished", "run_id", run.ID, "connection_id", conn.ID, "trigger", string(req.Trigger),
		"status", string(result.Status), "failure_code", string(result.FailureCode), "records", s.committed.Load(), "duration", elapsed)

	var runErr error
	if result.Status != store.RunSucceeded {
		// A held connection is not retried: only a person can fix it.
		runErr = &failure.Error{Code: result.FailureCode, Message: result.FailureMessage, Retryable: failure.IsRetryable(err) && !result.Hold}
	}
	r.fail(h, fin, runErr)
}

// classify turns the launcher's result into a run result.
func (r *Runner) classify(ctx context.Context, err error) store.RunResult {
	if err == nil {
		return store.RunResult{Status: store.RunSucceeded}
	}
	// A cancel carries its cause: operator cancel or host shutdown.
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		var fe *failure.Error
		if errors.As(cause, &fe) {
			return store.RunResult{Status: store.RunCancelled, FailureCode: fe.Code, FailureMessage: fe.Message}
		}
	}
	code := failure.CodeOf(err)
	status := store.RunFailed
	if code == failure.Cancelled || code == failure.HostShutdown {
		status = store.RunCancelled
	}
	return store.RunResult{Status: status, FailureCode: code, FailureMessage: failureMessage(err)}
}

// renewLease keeps the run's lease alive until the returned func is
// called. A lease that is gone — the other hosts declared this one dead
// and took its runs back — ends the run at once: its child is killed
// rather than left to run beside the connection's next run (its commits
// are fenced on the lease anyway).
func (r *Runner) renewLease(ctx context.Context, h *Handle, connectionID, runID string) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.LeaseTTL/3)
				_, err := r.cfg.Store.RenewLease(rctx, connectionID, runID, r.cfg.LeaseTTL)
				cancel()
				switch {
				case errors.Is(err, store.ErrLeaseNotHeld):
					r.leaseLost(h, connectionID, runID)
					return
				case err != nil:
					r.cfg.Logger.Error("renew lease", "connection_id", connectionID, "run_id", runID, "error", err)
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

// leaseLost stops a run whose lease is gone: the other hosts declared
// this one dead and took its runs back (found by a renewal or a commit).
func (r *Runner) leaseLost(h *Handle, connectionID, runID string) {
	r.cfg.Logger.Error("the run's lease was taken back (this host was declared dead); stopping the run",
		"connection_id", connectionID, "run_id", runID)
	h.cancel(failure.New(failure.HostCrashed, "the run's lease was taken back: the other hosts declared this host dead"))
}

// stream receives a run's messages and persists them: emit, on the
// launcher's receive goroutine, checks each record and queues it in a
// bounded pipe; the run's committer goroutine commits what is queued, in
// batches that end at checkpoints (see pipe).
type stream struct {
	r            *Runner
	ctx          context.Context
	conn         store.Connection
	run          store.Run
	connectorKey string

	// lost is called when a commit finds the run's lease gone.
	lost      func()
	pipe      *pipe
	received  atomic.Int64 // records received from the connector
	committed atomic.Int64 // records committed
	// streams is committed by stream name: written by the committer
	// alone, read once it has stopped (after close).
	streams map[string]int64
	done    chan struct{} // closed when the committer has stopped
}

func (r *Runner) newStream(ctx context.Context, h *Handle, conn store.Connection, run store.Run, connectorKey string) *stream {
	s := &stream{r: r, ctx: ctx, conn: conn, run: run, connectorKey: connectorKey,
		lost: func() { r.leaseLost(h, conn.ID, run.ID) },
		pipe: newPipe(r.cfg.BufferRecords, r.cfg.BufferBytes, r.cfg.CommitEvery, r.buffers), done: make(chan struct{})}
	go s.commitLoop()
	return s
}

// emit handles one message. It blocks while the pipe is full, and returns
// an error, which ends the run, for an invalid record or once a commit
// failed.
func (s *stream) emit(m wire.Message) error {
	switch m.Kind {
	case wire.KindRecords:
		recs := make([]store.Record, 0, len(m.Records))
		bytes := 0
		var bad error
		for i, rec := range m.Records {
			r, err := store.Record{Stream: rec.Stream, Key: rec.Key, Data: rec.Data}.Check()
			if err != nil {
				bad = &failure.Error{Code: failure.Internal, Message: "invalid record " + strconv.Itoa(i) + " of a batch: " + err.Error(), Err: err}
				break
			}
			recs = append(recs, r)
			bytes += recordBytes(r)
		}
		// Counted before they are queued, so no event ever reads more
		// committed than received.
		s.received.Add(int64(len(recs)))
		if err := s.pipe.put(recs, bytes); err != nil {
			return s.commitFailure(err)
		}
		return bad
	case wire.KindCheckpoint:
		if err := s.pipe.putCheckpoint(m.Checkpoint); err != nil {
			return s.commitFailure(err)
		}
	case wire.KindProgress:
		s.r.publish(runevents.Event{RunID: s.run.ID, ConnectionID: s.conn.ID, Kind: runevents.KindProgress,
			Stream: m.Progress.Stream, Done: m.Progress.Done, Total: m.Progress.Total, Message: m.Progress.Message,
			Records: s.committed.Load(), Received: s.received.Load()})
	case wire.KindInteraction:
		s.r.cfg.Logger.Warn("connector asked for an interaction", "run_id", s.run.ID, "connection_id", s.conn.ID,
			"kind", m.Interaction.Kind, "missing", m.Interaction.Missing)
		s.r.publish(runevents.Event{RunID: s.run.ID, ConnectionID: s.conn.ID, Kind: runevents.KindProgress,
			Message: m.Interaction.Kind})
	}
	return nil
}

// commitLoop commits the pipe's batches until it is closed and drained or
// a commit fails.
func (s *stream) commitLoop() {
	defer close(s.done)
	for {
		b, ok := s.pipe.next()
		if !ok {
			return
		}
		s.pipe.done(b, s.commit(b))
	}
}

// commit commits one batch in one transaction.
func (s *stream) commit(b batch) error {
	if len(b.recs) == 0 && b.checkpoint == nil {
		return nil
	}
	// The commit must land even while the run is being cancelled: these
	// records were already received.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 30*time.Second)
	defer cancel()
	if err := s.r.cfg.Store.CommitBatch(ctx, s.conn.ID, s.run.ID, b.recs, b.checkpoint); err != nil {
		var state *store.RunStateError
		if errors.Is(err, store.ErrLeaseNotHeld) || errors.As(err, &state) {
			// Taken back (or ended) elsewhere: the run stops as a lost
			// renewal stops it.
			s.lost()
		}
		return err
	}
	n := len(b.recs)
	s.streams = store.CountStreams(s.streams, b.recs)
	total := s.committed.Add(int64(n))
	if n > 0 {
		if o := s.r.cfg.Observer; o != nil {
			o.RecordsCommitted(s.connectorKey, n)
		}
		s.r.publish(runevents.Event{RunID: s.run.ID, ConnectionID: s.conn.ID, Kind: runevents.KindRecords,
			Records: total, Received: s.received.Load(), StreamRecords: maps.Clone(s.streams)})
	}
	return nil
}

func (s *stream) commitFailure(err error) error {
	return &failure.Error{Code: failure.Internal, Message: "commit records: " + err.Error(), Err: err}
}

// close ends the receive side and waits until everything received is
// committed. After a failed commit it returns the run's internal failure,
// saying how many received records were not committed.
func (s *stream) close() error {
	s.pipe.close()
	<-s.done
	err := s.pipe.failed()
	if err == nil {
		return nil
	}
	lost := s.received.Load() - s.committed.Load()
	s.r.cfg.Logger.Error("commit records", "run_id", s.run.ID, "connection_id", s.conn.ID,
		"not_committed", lost, "error", err)
	return &failure.Error{Code: failure.Internal, Err: err,
		Message: fmt.Sprintf("commit records: %v (%d received records were not committed)", err, lost)}
}

// Recover runs at boot on a store this host owns alone (SQLite), after
// cluster.Join reaped the earlier processes of the data dir: whatever is
// still leased, running, or queued with no occurrence to start it (left
// by a process that predates the dispatch queue, or by a crash between
// two writes) is failed with host_crashed. A manual run queued in the
// dispatch queue is kept: it runs now.
func (r *Runner) Recover(ctx context.Context) (int, error) {
	leases, err := r.cfg.Store.ReclaimLeases(ctx, store.ReclaimFilter{ExpiredBy: r.cfg.Now().Add(100 * 365 * 24 * time.Hour)})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range leases {
		if r.failOrphan(ctx, l) {
			n++
		}
	}
	occs, err := r.cfg.Store.ListOccurrences(ctx, store.OccurrenceFilter{})
	if err != nil {
		return n, err
	}
	queued := map[string]bool{}
	for _, o := range occs {
		if o.RunID != "" {
			queued[o.RunID] = true
		}
	}
	for _, st := range []store.RunStatus{store.RunQueued, store.RunRunning} {
		f := store.RunFilter{Status: st, Limit: 500}
		for {
			page, err := r.cfg.Store.ListRuns(ctx, f)
			if err != nil {
				return n, err
			}
			for _, run := range page.Runs {
				if st == store.RunQueued && queued[run.ID] {
					continue
				}
				if r.failRun(ctx, run.ID) {
					n++
				}
			}
			if page.Next == "" {
				break
			}
			f.Cursor = page.Next
		}
	}
	return n, nil
}

// failOrphan marks the run of a reclaimed lease failed.
func (r *Runner) failOrphan(ctx context.Context, l store.Lease) bool {
	return r.failRun(ctx, l.RunID)
}

func (r *Runner) failRun(ctx context.Context, runID string) bool {
	run, err := r.cfg.Store.FinishRun(ctx, runID, store.RunResult{
		Status: store.RunFailed, FailureCode: failure.HostCrashed,
		FailureMessage: "the host running it stopped before the run ended",
	})
	if err != nil {
		if !errors.Is(err, store.ErrRunState) && !errors.Is(err, store.ErrRunNotFound) {
			r.cfg.Logger.Error("fail orphaned run", "run_id", runID, "error", err)
		}
		return false
	}
	r.cfg.Logger.Warn("orphaned run marked failed", "run_id", run.ID, "connection_id", run.ConnectionID)
	r.cfg.Audit.Record(ctx, audit.Event{Actor: audit.ActorHost, Operation: "run.reclaim", TargetKind: "connection",
		TargetID: run.ConnectionID, Outcome: store.AuditFailed,
		Detail: map[string]string{"run_id": run.ID, "failure_code": string(failure.HostCrashed)}})
	return true
}
