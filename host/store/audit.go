package store

import (
	"encoding/json"
	"time"
)

// AuditOutcome is how an audited operation ended.
type AuditOutcome string

// Audit outcomes.
const (
	AuditSucceeded AuditOutcome = "succeeded"
	AuditFailed    AuditOutcome = "failed"
	AuditRefused   AuditOutcome = "refused"
)

// AuditEvent is one append-only audit row. Detail holds non-secret fields
// only: the store cannot tell a secret from a name, so producers must never
// put secret bytes in it.
type AuditEvent struct {
	ID         string // set by the store
	At         time.Time
	Actor      string // "operator", "scheduler", "host", …
	Operation  string // "credential.capture", "connection.delete", …
	TargetKind string // "connection", "credential", "connector", "run", "keyset", …
	TargetID   string
	Outcome    AuditOutcome
	Detail     json.RawMessage // JSON object; nil stores {}
}

// Validate checks the fields a caller supplies (ID and At are ignored).
func (e AuditEvent) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"actor", e.Actor}, {"operation", e.Operation}, {"target_kind", e.TargetKind}, {"outcome", string(e.Outcome)},
	} {
		if err := checkText(f.name, f.v, true); err != nil {
			return err
		}
	}
	if err := checkText("target_id", e.TargetID, false); err != nil {
		return err
	}
	return checkJSONObject("detail", e.Detail, true)
}

// AuditFilter narrows ListAudit; zero fields match everything. Events come
// newest first.
type AuditFilter struct {
	TargetKind string
	TargetID   string
	Operation  string
	Cursor     string // AuditPage.Next of the previous page
	Limit      int    // see PageLimit
}

// AuditPage is one page of audit events. Next is "" on the last page.
type AuditPage struct {
	Events []AuditEvent
	Next   string
}
