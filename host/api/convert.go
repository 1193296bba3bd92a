package api

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
)

// stamp formats a timestamp as RFC 3339 UTC, "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// stampNano is stamp with the fraction of a second kept, for instants
// that identify something (an occurrence's due instant).
func stampNano(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// toConnector converts a catalog entry.
func toConnector(e catalog.Entry) apitypes.Connector {
	m := e.Manifest
	streams := make([]apitypes.Stream, 0, len(m.Streams))
	for _, s := range m.Streams {
		streams = append(streams, apitypes.Stream{Name: s.Name, KeyFields: orEmpty(s.KeyFields)})
	}
	out := apitypes.Connector{
		ConnectorKey:    e.Key,
		Version:         m.Version,
		DisplayName:     m.DisplayName,
		Description:     m.Description,
		Auth:            apitypes.Auth{Kind: m.Auth.Kind, Required: orEmpty(m.Auth.Required)},
		EnvPassthrough:  orEmpty(m.EnvPassthrough),
		Streams:         streams,
		DefaultSchedule: m.DefaultSchedule.Spec,
		AutoEnroll:      m.DefaultSchedule.AutoEnroll,
		SHA256:          e.Checksum(),
	}
	if m.ConfigSchema != "" && json.Valid([]byte(m.ConfigSchema)) {
		out.ConfigSchema = json.RawMessage(m.ConfigSchema)
	}
	return out
}

// toConnection converts a connection; entry and next may be zero.
func toConnection(c store.Connection, entry *apitypes.EnrollmentEntry, next time.Time) apitypes.Connection {
	cfg := configJSON(c.Config)
	out := apitypes.Connection{
		ID:           c.ID,
		ConnectorKey: c.ConnectorKey,
		Label:        c.Label,
		Config:       cfg,
		Schedule:     c.Schedule.Spec,
		State:        string(c.State),
		CreatedAt:    stamp(c.CreatedAt),
		UpdatedAt:    stamp(c.UpdatedAt),
		Enrollment:   entry,
		NextRun:      stamp(next),

		CoalescedTicks:  c.CoalescedTicks,
		LastCoalescedAt: stamp(c.LastCoalescedAt),
	}
	if c.Schedule.Jitter > 0 {
		out.Jitter = c.Schedule.Jitter.String()
	}
	out.Hold, out.BackoffUntil, out.Streak = toHold(c.Hold), stamp(c.BackoffUntil), toStreak(c.Streak)
	return out
}

// toHold converts a hold; nil when not held.
func toHold(h store.Hold) *apitypes.Hold {
	if !h.Held() {
		return nil
	}
	return &apitypes.Hold{Code: string(h.Code), Message: h.Message, At: stamp(h.At), RunID: h.RunID}
}

// toStreak converts a streak; nil before the first counted run.
func toStreak(st store.Streak) *apitypes.Streak {
	if st.LastRunStatus == "" {
		return nil
	}
	out := &apitypes.Streak{LastRunStatus: string(st.LastRunStatus), LastRunAt: stamp(st.LastRunAt)}
	if st.FailCount > 0 {
		out.Failures = &apitypes.Failures{Code: string(st.FailCode), Count: st.FailCount, Since: stamp(st.FailSince)}
	}
	return out
}

// toHealth converts a derived health.
func toHealth(h health.Health) *apitypes.Health {
	return &apitypes.Health{Verdict: string(h.Verdict), Reason: h.Reason, Action: h.Action, Since: stamp(h.Since),
		NeedsPerson: h.NeedsPerson}
}

// toAttentionItem converts an attention list entry.
func toAttentionItem(it health.Item) apitypes.AttentionItem {
	return apitypes.AttentionItem{ConnectionID: it.Connection.ID, ConnectorKey: it.Connection.ConnectorKey,
		Label: it.Connection.Label, Verdict: string(it.Health.Verdict), Reason: it.Health.Reason,
		Action: it.Health.Action, Since: stamp(it.Health.Since)}
}

// toEnrollmentEntry converts a stored enrollment entry.
func toEnrollmentEntry(e store.EnrollmentEntry) apitypes.EnrollmentEntry {
	return apitypes.EnrollmentEntry{ConnectionID: e.ConnectionID, ConnectorKey: e.ConnectorKey,
		Outcome: string(e.Outcome), Reason: e.Reason, EvaluatedAt: stamp(e.EvaluatedAt)}
}

// liveEntry converts the gate's fresh decision.
func liveEntry(e enroll.Entry) *apitypes.EnrollmentEntry {
	if e.ConnectionID == "" {
		return nil
	}
	at := e.EvaluatedAt
	if at.IsZero() {
		at = time.Now()
	}
	return &apitypes.EnrollmentEntry{ConnectionID: e.ConnectionID, ConnectorKey: e.ConnectorKey,
		Outcome: string(e.Outcome), Reason: e.Reason, EvaluatedAt: stamp(at)}
}

// credentialNone is the read of a connection that never stored a
// credential.
func credentialNone() apitypes.Credential {
	return apitypes.Credential{State: "none", Names: []string{}}
}

// toCredential converts credential metadata. Present means the credential is
// usable (active), the same question the enrollment gate asks.
func toCredential(m store.CredentialMeta) apitypes.Credential {
	out := apitypes.Credential{
		Present:    m.State == store.CredentialActive,
		Kind:       string(m.Kind),
		State:      string(m.State),
		Names:      orEmpty(m.Names),
		KeyID:      m.KeyID,
		CapturedAt: stamp(m.CapturedAt),
		RotatedAt:  stamp(m.RotatedAt),
		RevokedAt:  stamp(m.RevokedAt),
		DeletedAt:  stamp(m.DeletedAt),
	}
	if m.Validity != nil {
		out.Validity = &apitypes.Validity{CheckedAt: stamp(m.Validity.CheckedAt), Valid: m.Validity.Valid, Message: m.Validity.Message}
	}
	return out
}

// toCredentialCheck converts the check that followed a capture.
func toCredentialCheck(c runner.CheckResult) *apitypes.CredentialCheck {
	return &apitypes.CredentialCheck{Verdict: c.Verdict, Valid: c.Valid, Identity: c.Identity, Message: c.Message}
}

// toRun converts a run row.
func toRun(r store.Run) apitypes.Run {
	return apitypes.Run{
		ID:             r.ID,
		ConnectionID:   r.ConnectionID,
		Trigger:        string(r.Trigger),
		Attempt:        r.Attempt,
		RetryOf:        r.RetryOf,
		Status:         string(r.Status),
		FailureCode:    string(r.FailureCode),
		FailureMessage: r.FailureMessage,
		CreatedAt:      stamp(r.CreatedAt),
		StartedAt:      stamp(r.StartedAt),
		EndedAt:        stamp(r.EndedAt),
		Records:        r.Records,
		StreamRecords:  r.StreamRecords,
		HostID:         r.HostID,
		ScheduledFor:   stampNano(r.ScheduledFor),
		Provenance:     toProvenance(r.Provenance),
	}
}

// toHost converts a host row.
func toHost(h store.Host) apitypes.Host {
	return apitypes.Host{ID: h.ID, Addr: h.Addr, Version: h.Version, Status: string(h.Status), StartedAt: stamp(h.StartedAt),
		LastSeen: stamp(h.LastSeen), EndedAt: stamp(h.EndedAt), RunsActive: h.RunsActive}
}

// toRunEvent converts a live event.
func toRunEvent(ev runevents.Event) apitypes.RunEvent {
	return apitypes.RunEvent{
		RunID:        ev.RunID,
		ConnectionID: ev.ConnectionID,
		Kind:         string(ev.Kind),
		At:           stampNano(ev.At), // to the nanosecond: followers compute elapsed time and rates from it
		Status:       ev.Status,
		FailureCode:  ev.FailureCode,
		Stream:       ev.Stream,
		Done:         ev.Done,
		Total:        ev.Total,
		Message:      ev.Message,
		Records:      ev.Records,
		Received:     ev.Received,
		// The hub's copy is the event's own: no other writer.
		StreamRecords: ev.StreamRecords,
	}
}

// toRecord converts a stored record.
func toRecord(r store.StoredRecord) apitypes.Record {
	return apitypes.Record{Stream: r.Stream, Key: r.Key, Data: json.RawMessage(r.Data), RunID: r.RunID, UpdatedAt: stamp(r.UpdatedAt)}
}

// toAuditEvent converts an audit row. Detail values are strings by
// construction (host/audit); other shapes are dropped.
func toAuditEvent(e store.AuditEvent) apitypes.AuditEvent {
	out := apitypes.AuditEvent{ID: e.ID, At: stamp(e.At), Actor: e.Actor, Operation: e.Operation,
		TargetKind: e.TargetKind, TargetID: e.TargetID, Outcome: string(e.Outcome)}
	if len(e.Detail) > 0 {
		var raw map[string]any
		if json.Unmarshal(e.Detail, &raw) == nil && len(raw) > 0 {
			out.Detail = make(map[string]string, len(raw))
			for k, v := range raw {
				if s, ok := v.(string); ok {
					out.Detail[k] = s
				}
			}
		}
	}
	return out
}

// configJSON is a stored config as the API shows it: the JSON object,
// numbers as written (decoded with UseNumber, so an int64 beyond 2^53 is
// not rounded) and without HTML escaping; {} when there is none or it
// does not decode as an object.
func configJSON(stored []byte) json.RawMessage {
	empty := json.RawMessage(`{}`)
	if len(stored) == 0 {
		return empty
	}
	var cfg map[string]any
	dec := json.NewDecoder(bytes.NewReader(stored))
	dec.UseNumber()
	if err := dec.Decode(&cfg); err != nil || cfg == nil {
		return empty
	}
	b, err := marshal(cfg)
	if err != nil {
		return empty
	}
	return b
}
