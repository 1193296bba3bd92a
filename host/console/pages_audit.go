package console

import (
	"net/http"
	"slices"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// auditPageSize is the audit log's page size.
const auditPageSize = 50

// auditData is the audit log page's data.
type auditData struct {
	Filter client.AuditFilter
	Events []auditRow
	Next   string
	Errors *formErrors
}

// auditRow is an audit event with its detail in key order.
type auditRow struct {
	apitypes.AuditEvent
	Details []detail
}

// detail is one key of an audit event's detail.
type detail struct{ Key, Value string }

// NextURL is the next page's address, the filters kept.
func (d auditData) NextURL() string { return d.url(d.Next) }

// FirstURL is the first page's address, the filters kept.
func (d auditData) FirstURL() string { return d.url("") }

func (d auditData) url(cursor string) string {
	return query(Prefix+"audit", "target", d.Filter.Target, "operation", d.Filter.Operation, "cursor", cursor)
}

// auditPage is the audit log (GET /v1/audit), filtered by target id and
// operation, paged with the API's cursor.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx, cancel := pageContext(r)
	defer cancel()
	q := r.URL.Query()
	d := auditData{Filter: client.AuditFilter{Target: q.Get("target"), Operation: q.Get("operation"),
		Cursor: q.Get("cursor"), Limit: auditPageSize}}
	status := http.StatusOK
	l, err := c.api.ListAudit(ctx, d.Filter)
	if err != nil {
		fe, st, err := filterError(err, "target", "operation")
		if err != nil {
			return err
		}
		d.Errors, status = fe, st
	}
	for _, ev := range l.Items {
		row := auditRow{AuditEvent: ev}
		for k, v := range ev.Detail {
			row.Details = append(row.Details, detail{Key: k, Value: v})
		}
		slices.SortFunc(row.Details, func(a, b detail) int { return strings.Compare(a.Key, b.Key) })
		d.Events = append(d.Events, row)
	}
	d.Next = l.Next
	c.render(w, r, s, status, "audit.html", d)
	return nil
}
