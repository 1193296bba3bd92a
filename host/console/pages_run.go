package console

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// runData is the run page's data.
type runData struct {
	Run apitypes.Run
	// Ended is true once the run's status is terminal: the page then
	// shows final facts and opens no event stream.
	Ended bool
	// Connection is the run's connection; nil when it was deleted
	// (ConnectionGone).
	Connection     *apitypes.Connection
	ConnectionGone bool
	// Streams are the connector's streams, then any other stream the run
	// committed to, each with the records the run committed to it;
	// StreamsNote says what the table cannot show.
	Streams     []runStream
	StreamsNote string
	// Uncounted is true for a run that committed records before the host
	// kept counts by stream: only its total is known.
	Uncounted bool
	// Retries are the runs that retry this one (an ended run that did
	// not succeed: a failure the dispatcher retries, a host crash or
	// shutdown), newest first.
	Retries []apitypes.Run
}

// runStream is one row of a run's streams table.
type runStream struct {
	Name string
	// Committed is the records the run committed to the stream (a key
	// written twice counts twice, as in the run's total).
	Committed int64
	// Undeclared is true for a stream the run committed to that the
	// connector (as catalogued now) does not declare.
	Undeclared bool
}

// Cancellable reports whether the run can still be cancelled.
func (d runData) Cancellable() bool { return !d.Ended }

// EventsURL is the page's live relay.
func (d runData) EventsURL() string { return Prefix + "runs/" + url.PathEscape(d.Run.ID) + "/events" }

// terminal reports whether a run status is final.
func terminal(status string) bool {
	switch status {
	case "succeeded", "failed", "refused", "cancelled":
		return true
	}
	return false
}

// runPage shows one run: its status, trigger, attempt, times, host,
// records (in all and per stream), failure, launch provenance and
// connection, a cancel form while it has not ended, and live progress
// (console.js follows the relayed event stream).
func (c *Console) runPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	run, err := c.api.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := runData{Run: run, Ended: terminal(run.Status), Uncounted: run.Records > 0 && len(run.StreamRecords) == 0}
	conn, err := c.api.GetConnection(ctx, run.ConnectionID)
	switch {
	case err == nil:
		d.Connection = &conn
		var declared []string
		declared, d.StreamsNote, err = c.connectorStreams(ctx, conn.ConnectorKey)
		if err != nil {
			return err
		}
		d.Streams = runStreams(declared, run.StreamRecords)
		if d.Retries, err = c.retriesOf(ctx, run); err != nil {
			return err
		}
	case isNotFound(err):
		d.ConnectionGone = true
		d.StreamsNote = "The connection was deleted, and its records with it; the counts are what this run committed."
		d.Streams = runStreams(nil, run.StreamRecords)
	default:
		return err
	}
	c.render(w, r, s, http.StatusOK, "run.html", d)
	return nil
}

// retryPageSize bounds the look-up of a run's retries: they are the
// connection's newest retry runs, and a retry follows its run closely.
const retryPageSize = 50

// retriesOf returns the runs that retry run: among the first page of
// its connection's retry runs (newest first), those whose retry_of is
// run. A run that has not ended, or that succeeded, has none.
func (c *Console) retriesOf(ctx context.Context, run apitypes.Run) ([]apitypes.Run, error) {
	if !terminal(run.Status) || run.Status == "succeeded" {
		return nil, nil
	}
	l, err := c.api.ListRuns(ctx, client.RunFilter{Connection: run.ConnectionID, Trigger: "retry", Limit: retryPageSize})
	if err != nil {
		return nil, err
	}
	return retriesIn(run.ID, l.Items), nil
}

// retriesIn returns the runs of runs that retry the run id, in order.
func retriesIn(id string, runs []apitypes.Run) []apitypes.Run {
	var out []apitypes.Run
	for _, r := range runs {
		if r.RetryOf == id {
			out = append(out, r)
		}
	}
	return out
}

// connectorStreams returns the names of the streams connector key
// declares, or a note when it is no longer catalogued.
func (c *Console) connectorStreams(ctx context.Context, key string) ([]string, string, error) {
	ctr, err := c.api.GetConnector(ctx, key)
	if isNotFound(err) {
		return nil, "Connector " + key + " is no longer catalogued: only the streams this run committed to are listed.", nil
	}
	if err != nil {
		return nil, "", err
	}
	names := make([]string, len(ctr.Streams))
	for i, st := range ctr.Streams {
		names[i] = st.Name
	}
	return names, "", nil
}

// runStreams lists the declared streams in their order, each with the
// run's committed count (0 for a stream it did not touch), then the
// streams in counts that are not declared, by name.
func runStreams(declared []string, counts map[string]int64) []runStream {
	out := make([]runStream, 0, len(declared)+len(counts))
	for _, name := range declared {
		out = append(out, runStream{Name: name, Committed: counts[name]})
	}
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(declared, name) {
			out = append(out, runStream{Name: name, Committed: counts[name], Undeclared: true})
		}
	}
	return out
}

// isNotFound reports whether err is an API 404.
func isNotFound(err error) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// cancelRun cancels a queued or running run (POST /v1/runs/{id}/cancel)
// and goes back to its page. A refusal a person can read (the run had
// already ended) is the next page's notice; others are the error page.
func (c *Console) cancelRun(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	id := r.PathValue("id")
	run, err := c.api.CancelRun(ctx, id)
	var ae *client.APIError
	switch {
	case err == nil:
		c.setFlash(s, "Run cancelled: status "+run.Status+".")
	case errors.As(err, &ae) && ae.Status == http.StatusConflict:
		c.setFlash(s, "Cancel refused: "+ae.Code+": "+ae.Message)
	default:
		return err
	}
	http.Redirect(w, r, Prefix+"runs/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// runEvents relays the run's event stream (GET /v1/runs/{id}/events) to
// the browser: the API's own handler writes to the browser's
// ResponseWriter (whose Flush passes through), so the events, the
// heartbeats and the stream's end are the API's. The request the API
// sees is built here: the operator token, none of the browser's headers
// (its cookie stays in the console).
func (c *Console) runEvents(w http.ResponseWriter, r *http.Request, _ *session) error {
	id := r.PathValue("id")
	ctx, cancel := pageContext(r)
	_, err := c.api.GetRun(ctx, id)
	cancel()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	req.Header.Set("Accept", "text/event-stream")
	req.RequestURI = req.URL.RequestURI()
	req.RemoteAddr = "console"
	req.Host = r.Host
	c.cfg.API.ServeHTTP(w, req)
	return nil
}
