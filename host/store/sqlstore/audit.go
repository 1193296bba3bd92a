package sqlstore

import (
	"context"
	"strings"

	"github.com/connhost/connhost/host/store"
)

const auditCols = `id, at, actor, operation, target_kind, target_id, outcome, detail`

// AppendAudit implements store.Audit.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error) {
	if err := e.Validate(); err != nil {
		return store.AuditEvent{}, err
	}
	e.At = s.stamp()
	id, err := s.newID("aud_", e.At)
	if err != nil {
		return store.AuditEvent{}, err
	}
	e.ID = id
	e.Detail = []byte(bindJSON(e.Detail, "{}"))
	_, err = s.exec(ctx, s.w, `INSERT INTO audit_events (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, s.bindTime(e.At), e.Actor, e.Operation, e.TargetKind, e.TargetID, string(e.Outcome), string(e.Detail))
	if err != nil {
		return store.AuditEvent{}, s.dbErr("append audit", err)
	}
	return e, nil
}

// ListAudit implements store.Audit.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) (store.AuditPage, error) {
	var (
		where []string
		args  []any
	)
	for _, c := range []struct{ col, v string }{
		{"target_kind", f.TargetKind}, {"target_id", f.TargetID}, {"operation", f.Operation},
	} {
		if c.v != "" {
			where, args = append(where, c.col+` = ?`), append(args, c.v)
		}
	}
	if f.Cursor != "" {
		at, id, err := timeCursor(f.Cursor, "audit")
		if err != nil {
			return store.AuditPage{}, err
		}
		where = append(where, `(at, id) < (?, ?)`) // a row value: an index seek
		args = append(args, s.bindTime(at), id)
	}
	limit := store.PageLimit(f.Limit)
	query := `SELECT ` + auditCols + ` FROM audit_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, ` AND `)
	}
	rows, err := s.query(ctx, s.r, query+` ORDER BY at DESC, id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return store.AuditPage{}, s.dbErr("list audit", err)
	}
	defer rows.Close()
	var page store.AuditPage
	for rows.Next() {
		var e store.AuditEvent
		if err := rows.Scan(&e.ID, timeCol{&e.At}, &e.Actor, &e.Operation, &e.TargetKind, &e.TargetID,
			&e.Outcome, (*[]byte)(&e.Detail)); err != nil {
			return store.AuditPage{}, s.dbErr("list audit", err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return store.AuditPage{}, s.dbErr("list audit", err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.Next = encodeCursor("audit", FormatTime(last.At), last.ID)
	}
	return page, nil
}
