package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// Bounds of the per-stream count on a run page: the records the run
// last wrote are counted by reading the stream's records a page at a
// time, up to streamScanPages pages.
const (
	streamScanPage  = 100
	streamScanPages = 10
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
	// Streams are the connector's streams with the records of each that
	// this run last wrote; StreamsNote says why there are none to show.
	Streams     []runStream
	StreamsNote string
}

// runStream is one stream of a run's connector.
type runStream struct {
	Name string
	// Held counts the stream's records whose latest write is this run's;
	// Capped says the count stopped at the scan bound (so it is a floor).
	Held   int64
	Capped bool
	// Scanned is how many records were read when Capped.
	Scanned int
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
	d := runData{Run: run, Ended: terminal(run.Status)}
	conn, err := c.api.GetConnection(ctx, run.ConnectionID)
	switch {
	case err == nil:
		d.Connection = &conn
		d.Streams, d.StreamsNote, err = c.runStreams(ctx, conn, run.ID)
		if err != nil {
			return err
		}
	case isNotFound(err):
		d.ConnectionGone = true
		d.StreamsNote = "The connection was deleted, and its records with it."
	default:
		return err
	}
	c.render(w, r, s, http.StatusOK, "run.html", d)
	return nil
}

// runStreams counts, per stream of the connection's connector, the
// records whose latest write is run's.
func (c *Console) runStreams(ctx context.Context, conn apitypes.Connection, runID string) ([]runStream, string, error) {
	ctr, err := c.api.GetConnector(ctx, conn.ConnectorKey)
	if isNotFound(err) {
		return nil, "Connector " + conn.ConnectorKey + " is no longer catalogued: its streams are unknown.", nil
	}
	if err != nil {
		return nil, "", err
	}
	out := make([]runStream, 0, len(ctr.Streams))
	for _, st := range ctr.Streams {
		rs := runStream{Name: st.Name}
		cursor := ""
		for page := 0; ; page++ {
			if page == streamScanPages {
				rs.Capped = true
				break
			}
			l, err := c.api.ListRecords(ctx, conn.ID, client.RecordFilter{Stream: st.Name, Cursor: cursor, Limit: streamScanPage})
			if err != nil {
				return nil, "", err
			}
			for _, rec := range l.Items {
				rs.Scanned++
				if rec.RunID == runID {
					rs.Held++
				}
			}
			if l.Next == "" {
				break
			}
			cursor = l.Next
		}
		out = append(out, rs)
	}
	return out, "", nil
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
