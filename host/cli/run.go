package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

// Run statuses (apitypes.Run.Status).
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusRefused   = "refused"
	StatusCancelled = "cancelled"
)

// terminal reports whether a run status is final.
func terminal(status string) bool {
	switch status {
	case StatusSucceeded, StatusFailed, StatusRefused, StatusCancelled:
		return true
	}
	return false
}

// defaultPollInterval is how often a run is re-read when its event stream
// is not available.
const defaultPollInterval = 500 * time.Millisecond

func (a *app) runCommand() *cobra.Command {
	var wait, follow bool
	cmd := &cobra.Command{
		Use:   "run CONNECTION_ID [--wait | --follow]",
		Short: "Start a manual run of a connection",
		Long: `Start a manual run of a connection, through the same launch path as its
scheduled runs (same credential resolution, same environment).

Without --wait or --follow it prints the queued run and returns. --wait waits
for the run to end and prints it; --follow also shows live progress (a progress
bar on a terminal, one line per event otherwise; with -o json the progress goes
to stderr and only the final run to stdout). With --wait or --follow the exit
status is 3 when the run did not succeed.

A trigger the host refuses (for example a revoked credential, or a run
already active) is a run too, status refused, with the failure code, e.g.
static_secret_credential_unavailable. With --wait or --follow it is printed
like any run that ended (with -o json: the run's JSON on stdout) and the exit
status is 3; without them the refusal is an error (exit status 1) naming the
refused run.

Without a terminal, --follow writes one line per event: each status change
once, and progress, records and end lines with the elapsed time and (from the
first second on) the receive rate, from the host's timestamps.

Once --follow or --wait has received the run's end event, the exit status is
the run's outcome even if the host goes away before the run can be re-read;
the run is then shown as its events reported it (started at: when they said
it started, or "unknown").`,
		Example: `  connhost run CONNECTION_ID --follow
  connhost run CONNECTION_ID --wait -o json`,
		Args: args("CONNECTION_ID"),
	}
	cmd.RunE = a.wrap(func(ctx context.Context, args []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		run, err := c.TriggerRun(ctx, args[0])
		if err != nil {
			if wait || follow {
				if refused, ok := a.refusedRun(ctx, c, err); ok {
					return a.finishRun(refused, false)
				}
			}
			return err
		}
		if !wait && !follow {
			return a.printRun(run)
		}
		p := progress(noProgress{})
		if follow {
			p = a.newProgress()
		}
		run, startUnknown, err := a.waitRun(ctx, c, run, p)
		if err != nil {
			return err
		}
		return a.finishRun(run, startUnknown)
	})
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the run to end and print it")
	cmd.Flags().BoolVar(&follow, "follow", false, "show live progress until the run ends")
	cmd.MarkFlagsMutuallyExclusive("wait", "follow")
	return cmd
}

// refusedRun reads the run row of a refused trigger (the API error names
// it): a refusal is a run that ended refused.
func (a *app) refusedRun(ctx context.Context, c *client.Client, err error) (apitypes.Run, bool) {
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.RunID == "" {
		return apitypes.Run{}, false
	}
	run, gerr := c.GetRun(ctx, ae.RunID)
	if gerr != nil || !terminal(run.Status) {
		return apitypes.Run{}, false
	}
	return run, true
}

// finishRun prints the ended run and turns a run that did not succeed into
// exit status 3. startUnknown: the run is shown as its events reported it
// and they did not say when (or whether) it started.
func (a *app) finishRun(run apitypes.Run, startUnknown bool) error {
	if err := a.printRunStart(run, startUnknown); err != nil {
		return err
	}
	if run.Status == StatusSucceeded {
		return nil
	}
	code := run.FailureCode
	if code == "" {
		code = run.Status
	}
	msg := "run " + run.ID + " " + run.Status
	if run.FailureMessage != "" {
		msg += ": " + run.FailureMessage
	}
	return &cmdError{code: code, msg: msg, exit: ExitRunFailed, runID: run.ID, printed: true}
}

// waitRun follows a run to its end and returns it as the API reports it
// then. It subscribes to the run's events first and reads the run after,
// so an end that happens in between is not missed; when the event stream
// is unavailable or breaks it polls. startUnknown is true when the run
// could not be re-read after its end event and the events did not say
// when it started.
func (a *app) waitRun(ctx context.Context, c *client.Client, run apitypes.Run, p progress) (_ apitypes.Run, startUnknown bool, _ error) {
	events, err := c.RunEvents(ctx, run.ID)
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Code != apitypes.CodeNotFound && ae.Code != apitypes.CodeMethodNotAllowed {
			return run, false, err
		}
		if errors.Is(err, context.Canceled) {
			return run, false, err
		}
		run, err = a.pollRun(ctx, c, run, p)
		return run, false, err
	}
	defer events.Close()
	if run, err = c.GetRun(ctx, run.ID); err != nil {
		return run, false, err
	}
	if terminal(run.Status) {
		p.done(run)
		return run, false, nil
	}
	// startedAt is when the events say the run started: its running
	// status, or else its first progress or records event.
	startedAt := run.StartedAt
	for {
		ev, err := events.Next()
		switch {
		case err == nil && ev.Kind == client.EventKindEnd:
			p.event(ev)
			return a.endedRun(ctx, c, run, ev, startedAt, p)
		case errors.Is(err, io.EOF):
			run, err := c.GetRun(ctx, run.ID)
			if err != nil {
				return run, false, err
			}
			p.done(run)
			return run, false, nil
		case errors.Is(err, client.ErrStreamEnded) && ctx.Err() == nil:
			run, err = a.pollRun(ctx, c, run, p)
			return run, false, err
		case err != nil:
			if ctx.Err() != nil {
				return run, false, ctx.Err()
			}
			return run, false, err
		}
		if startedAt == "" && ev.At != "" && (ev.Kind == "status" && ev.Status == StatusRunning ||
			ev.Kind == "progress" || ev.Kind == "records") {
			startedAt = ev.At
		}
		p.event(ev)
	}
}

// endedRun re-reads a run whose end event arrived, for the full row. The
// end event already holds the outcome: when the host cannot answer any
// more (it shut down right after the run), the run is shown as the events
// reported it (its start from startedAt, the instant the events said it
// started, if any), with a warning, and the exit status still follows it.
func (a *app) endedRun(ctx context.Context, c *client.Client, run apitypes.Run, end apitypes.RunEvent, startedAt string, p progress) (apitypes.Run, bool, error) {
	got, err := c.GetRun(ctx, run.ID)
	if err == nil && terminal(got.Status) {
		p.done(got)
		return got, false, nil
	}
	if ctx.Err() != nil {
		return run, false, ctx.Err()
	}
	if !terminal(end.Status) {
		if err == nil {
			got, err = a.pollRun(ctx, c, got, p)
		}
		return got, false, err
	}
	if err != nil {
		fmt.Fprintf(a.rt.Stderr, "warning: the run ended %s, but re-reading it failed (%s); showing it as its end event reported it\n",
			end.Status, a.classify(err).msg)
	}
	run.Status, run.FailureCode, run.FailureMessage, run.Records = end.Status, end.FailureCode, end.Message, end.Records
	if end.At != "" {
		run.EndedAt = end.At
	}
	if run.StartedAt == "" {
		run.StartedAt = startedAt
	}
	p.done(run)
	return run, run.StartedAt == "" && run.Status != StatusRefused, nil
}

// pollRun re-reads the run until it is terminal.
func (a *app) pollRun(ctx context.Context, c *client.Client, run apitypes.Run, p progress) (apitypes.Run, error) {
	t := time.NewTicker(a.rt.PollInterval)
	defer t.Stop()
	last := ""
	for {
		r, err := c.GetRun(ctx, run.ID)
		if err != nil {
			return run, err
		}
		run = r
		if run.Status != last {
			p.event(apitypes.RunEvent{RunID: run.ID, ConnectionID: run.ConnectionID, Kind: "status",
				At: time.Now().UTC().Format(time.RFC3339), Status: run.Status, FailureCode: run.FailureCode, Records: run.Records})
			last = run.Status
		}
		if terminal(run.Status) {
			p.done(run)
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-t.C:
		}
	}
}

func (a *app) printRun(r apitypes.Run) error { return a.printRunStart(r, false) }

// printRunStart prints a run; startUnknown says "unknown" for its start
// instead of "-" (not started) in the text output. The JSON omits what is
// not known.
func (a *app) printRunStart(r apitypes.Run, startUnknown bool) error {
	if a.json() {
		return printJSON(a.rt.Stdout, r)
	}
	kv := [][2]string{
		{"id", r.ID},
		{"connection", r.ConnectionID},
		{"trigger", r.Trigger},
		{"attempt", itoa(r.Attempt)},
		{"status", r.Status},
		{"failure", r.FailureCode},
	}
	if r.FailureMessage != "" {
		kv = append(kv, [2]string{"failure message", r.FailureMessage})
	}
	if r.RetryOf != "" {
		kv = append(kv, [2]string{"retry of", r.RetryOf})
	}
	if r.ScheduledFor != "" {
		kv = append(kv, [2]string{"scheduled for", ts(r.ScheduledFor)})
	}
	started := ts(r.StartedAt)
	if started == "" && startUnknown {
		started = "unknown"
	}
	kv = append(kv,
		[2]string{"host", r.HostID},
		[2]string{"records", itoa(r.Records)},
		[2]string{"created at", ts(r.CreatedAt)},
		[2]string{"started at", started},
		[2]string{"ended at", ts(r.EndedAt)},
	)
	return fields(a.rt.Stdout, kv)
}

func (a *app) runsCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "runs",
		Short: "List, inspect and cancel runs",
		Long: `Runs are every execution of a connection, scheduled, retried or manual,
including launches the host refused before starting a connector (status
refused, with the failure code saying why).`,
		Example: `  connhost runs list --connection CONNECTION_ID -o json
  connhost runs show RUN_ID
  connhost runs cancel RUN_ID`,
	})
	var (
		filter client.RunFilter
		list   = &cobra.Command{
			Use:   "list [--connection ID] [--status S] [--trigger T] [--host H]",
			Short: "List runs, newest first",
			Long: `List runs, newest first, one page at a time (--limit, --cursor). When more
runs exist, the cursor of the next page is printed on stderr.`,
			Example: `  connhost runs list
  connhost runs list --connection CONNECTION_ID --status refused -o json
  connhost runs list --host HOST_ID --status running
  connhost runs list --trigger scheduled --status failed`,
			Args: args(),
		}
	)
	list.RunE = a.wrap(func(ctx context.Context, _ []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		page, err := c.ListRuns(ctx, filter)
		if err != nil {
			return err
		}
		return printPage(a, page, []string{"ID", "CONNECTION", "TRIGGER", "STATUS", "FAILURE", "RECORDS", "HOST", "SCHEDULED FOR", "CREATED", "STARTED", "ENDED"},
			func(r apitypes.Run) []string {
				return []string{r.ID, r.ConnectionID, r.Trigger, r.Status, r.FailureCode,
					itoa(r.Records), r.HostID, ts(r.ScheduledFor), ts(r.CreatedAt), ts(r.StartedAt), ts(r.EndedAt)}
			})
	})
	f := list.Flags()
	f.StringVar(&filter.Connection, "connection", "", "only runs of this connection")
	f.StringVar(&filter.Status, "status", "", "only runs with this status: queued, running, succeeded, failed, refused, cancelled")
	f.StringVar(&filter.Trigger, "trigger", "", "only runs started so: manual, scheduled or retry")
	f.StringVar(&filter.Host, "host", "", "only runs of this host id (see hosts list)")
	f.IntVar(&filter.Limit, "limit", 0, "page size (default: the server's)")
	f.StringVar(&filter.Cursor, "cursor", "", "the cursor of the page to read, from a previous list")
	_ = list.RegisterFlagCompletionFunc("trigger", cobra.FixedCompletions(
		[]cobra.Completion{"manual", "scheduled", "retry"}, cobra.ShellCompDirectiveNoFileComp))
	_ = list.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(
		[]cobra.Completion{"queued", "running", "succeeded", "failed", "refused", "cancelled"}, cobra.ShellCompDirectiveNoFileComp))

	cmd.AddCommand(list,
		idCommand(a, "runs show", "RUN_ID", "Show a run", `Show a run: trigger, attempt, status, failure code and message, the instant
it was scheduled for, the host that ran it, record count and times, and its
launch provenance: where the credential came from (the stored credential's
state, key id and capture/rotation times, or the host env), every variable
NAME of the child's environment with the layer that supplied it (allowlist,
passthrough, host_env, run_metadata, stored_credential; a later layer wins),
and for a launch refused over its credential the resolution that refused
(credential state, undecryptable, missing names, required names absent or
empty in the host env). Never a value. -o json includes it as "provenance".`,
			(*client.Client).GetRun, a.printRunShow),
		idCommand(a, "runs cancel", "RUN_ID", "Cancel a queued or running run",
			`Cancel a run, whichever host of the cluster runs it: a queued run leaves the
queue, a running one has its connector stopped; the run ends with status
cancelled.`,
			(*client.Client).CancelRun, a.printRun),
	)
	return cmd
}

// nextPage tells the operator, on stderr so stdout stays the data, how to
// read the next page.
func (a *app) nextPage(next string) {
	if next != "" {
		fmt.Fprintf(a.rt.Stderr, "more results: repeat with --cursor %s\n", next)
	}
}
