package console

import (
	"net/http"
	"net/url"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// recordsPageSize is the records browser's page size: records may be
// large, and each is shown in full.
const recordsPageSize = 25

// recordsData is the records browser's data.
type recordsData struct {
	Connection apitypes.Connection
	// Streams are the connector's stream names; empty when the connector
	// is no longer catalogued (the chooser then takes any name).
	Streams []string
	Stream  string
	Cursor  string
	Records []apitypes.Record
	Next    string
	Errors  *formErrors
}

// NextURL is the next page's address, the stream kept.
func (d recordsData) NextURL() string { return d.url(d.Next) }

// FirstURL is the first page's address, the stream kept.
func (d recordsData) FirstURL() string { return d.url("") }

func (d recordsData) url(cursor string) string {
	return query(Prefix+"connections/"+url.PathEscape(d.Connection.ID)+"/records", "stream", d.Stream, "cursor", cursor)
}

// recordsPage browses a connection's collected records, a stream at a
// time (or all of them), paged with the API's cursor: each record's key,
// the run that last wrote it, when, and its data as indented JSON.
func (c *Console) recordsPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	conn, err := c.api.GetConnection(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := recordsData{Connection: conn, Stream: q.Get("stream"), Cursor: q.Get("cursor")}
	ctr, err := c.api.GetConnector(ctx, conn.ConnectorKey)
	switch {
	case err == nil:
		for _, st := range ctr.Streams {
			d.Streams = append(d.Streams, st.Name)
		}
	case !isNotFound(err):
		return err
	}
	status := http.StatusOK
	l, err := c.api.ListRecords(ctx, conn.ID, client.RecordFilter{Stream: d.Stream, Cursor: d.Cursor, Limit: recordsPageSize})
	if err != nil {
		fe, st, err := filterError(err, "stream")
		if err != nil {
			return err
		}
		d.Errors, status = fe, st
	}
	d.Records, d.Next = l.Items, l.Next
	c.render(w, r, s, status, "records.html", d)
	return nil
}
