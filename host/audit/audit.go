// Package audit records operator-visible events — connection, credential,
// connector, keyset and run lifecycle — in the store's append-only audit
// log.
//
// Details are built from names, ids, states and codes only. The Log type
// takes a map of strings so nothing richer (a credential value map, a
// request body) can slip in by accident.
package audit

import (
	"context"
	"encoding/json"

	"github.com/connhost/connhost/host/store"
	"github.com/hashicorp/go-hclog"
)

// Actors.
const (
	ActorOperator  = "operator"
	ActorScheduler = "scheduler"
	ActorHost      = "host"
)

// Appender is the part of the store the log writes to.
type Appender interface {
	AppendAudit(ctx context.Context, e store.AuditEvent) (store.AuditEvent, error)
}

// Log writes audit events. A failed write is logged, never returned: the
// operation it describes has already happened.
type Log struct {
	Store  Appender
	Logger hclog.Logger
}

// Event is one event to record.
type Event struct {
	Actor      string
	Operation  string
	TargetKind string
	TargetID   string
	Outcome    store.AuditOutcome
	// Detail holds non-secret fields only.
	Detail map[string]string
}

// Record appends e.
func (l *Log) Record(ctx context.Context, e Event) {
	if l == nil || l.Store == nil {
		return
	}
	if e.Actor == "" {
		e.Actor = ActorHost
	}
	if e.Outcome == "" {
		e.Outcome = store.AuditSucceeded
	}
	var detail json.RawMessage
	if len(e.Detail) > 0 {
		detail, _ = json.Marshal(e.Detail) // keys come out sorted
	}
	_, err := l.Store.AppendAudit(context.WithoutCancel(ctx), store.AuditEvent{
		Actor: e.Actor, Operation: e.Operation, TargetKind: e.TargetKind,
		TargetID: e.TargetID, Outcome: e.Outcome, Detail: detail,
	})
	if err != nil && l.Logger != nil {
		l.Logger.Error("audit write failed", "operation", e.Operation, "target_id", e.TargetID, "error", err)
	}
}
