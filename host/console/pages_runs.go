package console

import (
	"net/http"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// runStatuses and runTriggers are the filter choices (GET /v1/runs).
var (
	runStatuses = []string{"queued", "running", "succeeded", "failed", "refused", "cancelled"}
	runTriggers = []string{"manual", "scheduled", "retry"}
)

// runsPageSize is the runs history's page size; suggestLimit bounds the
// connections suggested for the connection filter.
const (
	runsPageSize = 50
	suggestLimit = 200
)

// runsData is the runs history page's data.
type runsData struct {
	Filter client.RunFilter
	Runs   []apitypes.Run
	Next   string
	Hosts  []apitypes.Host
	// Connections is the first page of connections, for the connection
	// filter's suggestions.
	Connections []apitypes.Connection
	Statuses    []string
	Triggers    []string
	Errors      *formErrors
}

// NextURL is the next page's address, the filters kept.
func (d runsData) NextURL() string { return d.url(d.Next) }

// FirstURL is the first page's address, the filters kept.
func (d runsData) FirstURL() string { return d.url("") }

func (d runsData) url(cursor string) string {
	f := d.Filter
	return query(Prefix+"runs", "connection", f.Connection, "trigger", f.Trigger, "status", f.Status, "host", f.Host, "cursor", cursor)
}

// runsPage is the runs history, newest first: a GET filter form
// (connection, trigger, status, host), paged with the API's cursor. A
// filter the API refuses is shown beside its input, with the API's
// status.
func (c *Console) runsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	q := r.URL.Query()
	d := runsData{Statuses: runStatuses, Triggers: runTriggers, Filter: client.RunFilter{
		Connection: q.Get("connection"), Trigger: q.Get("trigger"), Status: q.Get("status"), Host: q.Get("host"),
		Cursor: q.Get("cursor"), Limit: runsPageSize}}
	// The host and connection suggestions are a convenience: without
	// them, the filters still take the ids typed.
	if hl, err := c.api.ListHosts(ctx); err == nil {
		d.Hosts = hl.Hosts
	}
	if cl, err := c.api.ListConnections(ctx, client.ConnectionFilter{Limit: suggestLimit}); err == nil {
		d.Connections = cl.Items
	}
	status := http.StatusOK
	l, err := c.api.ListRuns(ctx, d.Filter)
	if err != nil {
		fe, st, err := filterError(err, "connection", "trigger", "status", "host")
		if err != nil {
			return err
		}
		d.Errors, status = fe, st
	}
	d.Runs, d.Next = l.Items, l.Next
	c.render(w, r, s, status, "runs.html", d)
	return nil
}
