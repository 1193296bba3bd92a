// Package control is the host's operator-facing service layer: the one
// place connection and credential lifecycle operations happen, so the HTTP
// API, the gRPC admin service and boot share the same rules.
//
// Each operation changes the store, writes audit, and keeps the scheduler
// and the enrollment report in step: a connection created with a schedule,
// updated, paused or resumed is re-evaluated by the enrollment gate at
// once, and so is a connection whose credential is captured — a
// skipped_env connection enrolls without a restart. Revoking or deleting a
// credential leaves the job in place on purpose: the next scheduled run is
// refused with static_secret_credential_unavailable, visibly, rather than
// the schedule silently disappearing.
//
// On a shared store every change is also announced to the other hosts
// (notify.Connection), which re-evaluate that connection against their
// own scheduler (Apply) within milliseconds; the store change itself —
// pending occurrences removed, the schedule generation moved — is already
// in force for every host when the call returns.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/hashicorp/go-hclog"
)

// Scheduler is the part of the scheduler control drives.
type Scheduler interface {
	Upsert(j schedule.Job) error
	Remove(connectionID string)
}

// Queue takes manual triggers (the dispatcher).
type Queue interface {
	Enqueue(ctx context.Context, connectionID string) (store.Run, error)
}

// Catalog finds connectors.
type Catalog interface {
	Get(key string) (catalog.Entry, bool)
	List() []catalog.Entry
}

// Checker is the runner's credential check.
type Checker interface {
	Check(ctx context.Context, connectionID string) (runner.CheckResult, error)
}

// CheckTimeout bounds the connector Check that follows a capture.
const CheckTimeout = 30 * time.Second

// Config wires a Service.
type Config struct {
	Store     store.Store
	Catalog   Catalog
	Broker    *broker.Broker
	Runner    Checker
	Queue     Queue
	Scheduler Scheduler
	Gate      *enroll.Gate
	// Bus announces changes to the other hosts (default notify.None).
	Bus    notify.Bus
	Audit  *audit.Log
	Logger hclog.Logger
}

// Validate reports a wiring error.
func (c *Config) Validate() error {
	if c.Store == nil || c.Catalog == nil || c.Broker == nil || c.Runner == nil || c.Queue == nil || c.Scheduler == nil || c.Gate == nil {
		return errors.New("control: Store, Catalog, Broker, Runner, Queue, Scheduler and Gate are required")
	}
	return nil
}

// Service runs lifecycle operations.
type Service struct {
	cfg Config
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Bus == nil {
		cfg.Bus = notify.None{}
	}
	s := &Service{cfg: cfg}
	cfg.Bus.Subscribe(notify.Connection, s.remoteChange)
	return s, nil
}

// InvalidError is a bad operator input; Field names it.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("control: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap matches store.ErrInvalid so callers map both to 400.
func (e *InvalidError) Unwrap() error { return store.ErrInvalid }

// CreateConnection creates a connection of a catalogued connector and
// enrolls it when the gate allows.
func (s *Service) CreateConnection(ctx context.Context, actor string, n store.NewConnection) (store.Connection, enroll.Entry, error) {
	entry, ok := s.cfg.Catalog.Get(n.ConnectorKey)
	if !ok {
		return store.Connection{}, enroll.Entry{}, failure.New(failure.ConnectorNotFound, "connector %q is not in the catalog", n.ConnectorKey)
	}
	if err := validateInput(n.Config, n.Schedule); err != nil {
		return store.Connection{}, enroll.Entry{}, err
	}
	if err := checkJitter(n.Schedule, entry.Manifest.DefaultSchedule); err != nil {
		return store.Connection{}, enroll.Entry{}, err
	}
	if err := entry.Config.Validate(n.Config); err != nil {
		return store.Connection{}, enroll.Entry{}, err
	}
	c, err := s.cfg.Store.CreateConnection(ctx, n)
	if err != nil {
		return store.Connection{}, enroll.Entry{}, err
	}
	s.record(ctx, actor, "connection.create", c.ID, nil, map[string]string{"connector_key": c.ConnectorKey, "schedule": c.Schedule.Spec})
	return c, s.Reevaluate(ctx, c.ID), nil
}

// UpdateConnection applies a patch (label, config, schedule) and
// re-evaluates enrollment.
func (s *Service) UpdateConnection(ctx context.Context, actor, id string, p store.ConnectionPatch) (store.Connection, enroll.Entry, error) {
	cfg := p.Config
	var sch store.Schedule
	if p.Schedule != nil {
		sch = *p.Schedule
	}
	if err := validateInput(cfg, sch); err != nil {
		return store.Connection{}, enroll.Entry{}, err
	}
	if (p.Schedule != nil && p.Schedule.Jitter > 0) || p.Config != nil {
		cur, err := s.cfg.Store.GetConnection(ctx, id)
		if err != nil {
			return store.Connection{}, enroll.Entry{}, err
		}
		entry, _ := s.cfg.Catalog.Get(cur.ConnectorKey)
		if p.Schedule != nil {
			if err := checkJitter(sch, entry.Manifest.DefaultSchedule); err != nil {
				return store.Connection{}, enroll.Entry{}, err
			}
		}
		if p.Config != nil {
			if err := entry.Config.Validate(p.Config); err != nil {
				return store.Connection{}, enroll.Entry{}, err
			}
		}
	}
	c, err := s.cfg.Store.UpdateConnection(ctx, id, p)
	s.record(ctx, actor, "connection.update", id, err, nil)
	if err != nil {
		return store.Connection{}, enroll.Entry{}, err
	}
	return c, s.Reevaluate(ctx, c.ID), nil
}

// Where a connection's schedule in force comes from (ScheduleInForce).
const (
	ScheduleOwn              = "own"               // the connection's own spec
	ScheduleConnectorDefault = "connector_default" // its connector's auto-enrolling default
	ScheduleNone             = "none"              // neither: manual runs only
)

// ScheduleInForce is the spec a connection is scheduled by and where it
// comes from: its own spec, else its connector's default when that
// auto-enrolls (the enrollment gate's rule), else none.
func ScheduleInForce(own store.Schedule, def manifest.Schedule) (spec, source string) {
	switch spec := schedule.InForce(own.Spec, def); {
	case own.Spec != "":
		return spec, ScheduleOwn
	case spec != "":
		return spec, ScheduleConnectorDefault
	}
	return "", ScheduleNone
}

// checkJitter bounds a jitter by the period of the schedule it spreads:
// the schedule in force, the connection's own or its connector's default.
// Jitter with no schedule in force spreads nothing and is refused.
func checkJitter(sch store.Schedule, def manifest.Schedule) error {
	if sch.Jitter <= 0 {
		return nil
	}
	spec, _ := ScheduleInForce(sch, def)
	if spec == "" {
		return &InvalidError{Field: "jitter", Reason: "needs a schedule: the connection has none and its connector has no auto-enrolling default"}
	}
	if err := schedule.CheckJitter(spec, sch.Jitter); err != nil {
		return &InvalidError{Field: "jitter", Reason: strings.TrimPrefix(err.Error(), "schedule: ")}
	}
	return nil
}

func validateInput(config json.RawMessage, sch store.Schedule) error {
	if len(config) > 0 {
		var obj map[string]any
		if err := json.Unmarshal(config, &obj); err != nil || obj == nil {
			return &InvalidError{Field: "config", Reason: "must be a JSON object"}
		}
	}
	if sch.Spec != "" {
		if err := schedule.Check(sch.Spec); err != nil {
			return &InvalidError{Field: "schedule", Reason: err.Error()}
		}
	}
	if sch.Jitter < 0 {
		return &InvalidError{Field: "jitter", Reason: "must not be negative"}
	}
	return nil
}

// SetState pauses, resumes or revokes a connection. Asking for the state
// the connection is in (pause of a paused one, resume of an active one)
// succeeds and changes nothing: it is audited succeeded with detail
// unchanged=true. A transition the state forbids (resume of a revoked
// connection) is failure.Conflict, audited with that code.
func (s *Service) SetState(ctx context.Context, actor, id string, state store.ConnectionState) (store.Connection, error) {
	// The state before, for the audit row only: the store decides.
	prev, perr := s.cfg.Store.GetConnection(ctx, id)
	c, err := s.cfg.Store.SetConnectionState(ctx, id, state)
	op := map[store.ConnectionState]string{store.ConnectionPaused: "connection.pause",
		store.ConnectionActive: "connection.resume", store.ConnectionRevoked: "connection.revoke"}[state]
	var detail map[string]string
	unchanged := err == nil && perr == nil && prev.State == state
	if perr == nil {
		detail = map[string]string{"from": string(prev.State)}
		if unchanged {
			detail["unchanged"] = "true"
		}
	}
	s.record(ctx, actor, op, id, err, detail)
	if err != nil {
		return store.Connection{}, err
	}
	if !unchanged {
		s.Reevaluate(ctx, id)
	}
	return c, nil
}

// DeleteConnection deletes a connection with its records, checkpoint,
// schedule and credential; it is refused with run_active while a run holds
// the connection's lease.
func (s *Service) DeleteConnection(ctx context.Context, actor, id string) (store.ConnectionDeletion, error) {
	d, err := s.cfg.Store.DeleteConnection(ctx, id)
	var detail map[string]string
	if err == nil {
		detail = map[string]string{"records": fmt.Sprint(d.Records), "checkpoint": fmt.Sprint(d.Checkpoint), "credential": fmt.Sprint(d.Credential)}
	}
	s.record(ctx, actor, "connection.delete", id, err, detail)
	if err != nil {
		return d, err
	}
	s.cfg.Scheduler.Remove(id)
	s.announce(id)
	return d, nil
}

// ResetCheckpoint clears the connection's checkpoint so its next run
// starts from scratch (its records stay), audited connection.reset_state
// with the run that had committed the removed checkpoint. It is refused
// run_active, naming the run, while a run holds the connection's lease.
func (s *Service) ResetCheckpoint(ctx context.Context, actor, id string) (store.Checkpoint, bool, error) {
	cp, had, err := s.cfg.Store.ResetCheckpoint(ctx, id)
	detail := map[string]string{"removed": fmt.Sprint(had)}
	if had {
		detail["run_id"] = cp.RunID
	}
	if err != nil {
		detail = nil
	}
	s.record(ctx, actor, "connection.reset_state", id, err, detail)
	return cp, had, err
}

// Capture is the outcome of SetCredential.
type Capture struct {
	// Credential is the stored credential's metadata, validity included.
	Credential store.CredentialMeta
	// Check is the connector's check run right after the capture. Only a
	// verdict (Check.Verdict) is stored as the credential's validity; after
	// an inconclusive check (a network failure, a config the connector
	// refuses, a crash) the new credential stays unchecked, and
	// Check.Message tells the operator why.
	Check runner.CheckResult
	// Enrollment is the connection's enrollment, re-evaluated.
	Enrollment enroll.Entry
}

// SetCredential captures the connection's credential, or rotates it when
// an active one exists, then checks it and re-evaluates enrollment at
// once. A revoked connection is refused connection_revoked (audited)
// before anything is stored or any plugin starts: it never runs again, so
// a credential for it could only be a secret kept for nothing.
// order is the names of values as the operator gave them (may be nil),
// so an invalid name is reported by its position, never its text.
func (s *Service) SetCredential(ctx context.Context, actor, id string, values map[string]string, order []string) (Capture, error) {
	c, err := s.cfg.Store.GetConnection(ctx, id)
	if err != nil {
		return Capture{}, err
	}
	if c.State == store.ConnectionRevoked {
		err := failure.New(failure.ConnectionRevoked, "connection %s is revoked: its credential cannot be set", id)
		s.recordCredential(ctx, actor, id, err)
		return Capture{}, err
	}
	entry, ok := s.cfg.Catalog.Get(c.ConnectorKey)
	if !ok {
		return Capture{}, failure.New(failure.ConnectorNotFound, "connector %q is not in the catalog", c.ConnectorKey)
	}
	req := broker.Capture{ConnectionID: id, Auth: entry.Manifest.Auth, Values: values, Order: order, Actor: actor}
	active, err := s.cfg.Store.HasActiveCredential(ctx, id)
	if err != nil {
		return Capture{}, err
	}
	var meta store.CredentialMeta
	if active {
		meta, err = s.cfg.Broker.Rotate(ctx, req)
	} else {
		meta, err = s.cfg.Broker.Capture(ctx, req)
	}
	if err != nil {
		return Capture{}, err
	}
	// Validate right away; a verdict is stored as the credential's
	// validity. A connector that cannot be checked does not undo the
	// capture: the result says so instead.
	cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	check, cerr := s.cfg.Runner.Check(cctx, id)
	cancel()
	if cerr != nil {
		s.cfg.Logger.Warn("credential check after capture failed", "connection_id", id, "failure_code", string(failure.CodeOf(cerr)))
		check = runner.CheckResult{Message: uncheckedMessage(cerr)}
	}
	if m, merr := s.cfg.Store.GetCredentialMeta(ctx, id); merr == nil {
		meta = m
	}
	return Capture{Credential: meta, Check: check, Enrollment: s.Reevaluate(ctx, id)}, nil
}

// uncheckedMessage says why the check could not start, from typed
// failures only: any other error's text stays in the log.
func uncheckedMessage(err error) string {
	var fe *failure.Error
	if errors.As(err, &fe) {
		return fe.Error()
	}
	return string(failure.Internal) + ": the check could not start"
}

// RevokeCredential revokes the connection's credential.
func (s *Service) RevokeCredential(ctx context.Context, actor, id string) (store.CredentialMeta, error) {
	return s.cfg.Broker.Revoke(ctx, id, actor)
}

// DeleteCredential deletes the connection's credential (tombstone kept).
func (s *Service) DeleteCredential(ctx context.Context, actor, id string) (store.CredentialMeta, error) {
	return s.cfg.Broker.Delete(ctx, id, actor)
}

// TriggerRun queues a manual run; a worker of some host starts it through
// the single launch seam. It returns the queued run, or the refused run
// and its typed failure.
func (s *Service) TriggerRun(ctx context.Context, actor, id string) (store.Run, error) {
	return s.cfg.Queue.Enqueue(ctx, id)
}

// Reevaluate runs the enrollment gate for one connection, enrolls or
// removes its job, stores the entry and tells the other hosts.
func (s *Service) Reevaluate(ctx context.Context, id string) enroll.Entry {
	defer s.announce(id)
	c, err := s.cfg.Store.GetConnection(ctx, id)
	if err != nil {
		s.cfg.Scheduler.Remove(id)
		return enroll.Entry{ConnectionID: id, Outcome: enroll.SkippedUnknownConnector, Reason: "connection not found"}
	}
	e := s.apply(ctx, c)
	if _, err := s.cfg.Store.UpsertEnrollment(ctx, toStoreEntry(e)); err != nil {
		s.cfg.Logger.Error("store enrollment entry", "connection_id", id, "error", err)
	}
	return e
}

// ReleaseAddressedHolds releases the holds whose cause is gone without
// an operator touching the connection, and re-evaluates each at once, so
// it enrolls again without a restart, on every host:
//
//   - connector_not_found, when the connector is in the catalog again
//     (a rescan, SIGHUP, or a start with the binary back);
//   - credentials_required, when the enrollment gate — which reads the
//     host env and stored credentials by presence only — would now enroll
//     the connection but for its hold (the host env provides the names
//     since a restart).
//
// It also lifts the backoff of a connection whose runs failed
// plugin_checksum_mismatch once its connector's binary was pinned again
// after the failures began (a rescan pins what is on disk now), so a
// fixed plugin runs at its next occurrence instead of after hours of
// backoff.
//
// Each release is audited connection.release_hold (release_backoff for a
// backoff). The rescan and boot call it; it returns the ids released.
func (s *Service) ReleaseAddressedHolds(ctx context.Context, actor string) ([]string, error) {
	conns, err := s.cfg.Store.ListConnections(ctx, store.ConnectionFilter{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range conns {
		if s.repinned(c) {
			_, changed, err := s.cfg.Store.ClearHold(ctx, c.ID, failure.PluginChecksumMismatch)
			if err != nil {
				s.cfg.Logger.Error("lift a backoff", "connection_id", c.ID, "error", err)
				continue
			}
			if changed {
				s.record(ctx, actor, "connection.release_backoff", c.ID, nil, map[string]string{
					"fail_code": string(c.Streak.FailCode), "connector_key": c.ConnectorKey})
				s.Reevaluate(ctx, c.ID)
				out = append(out, c.ID)
			}
			continue
		}
		detail := map[string]string{"hold_code": string(c.Hold.Code), "connector_key": c.ConnectorKey}
		switch c.Hold.Code {
		case failure.ConnectorNotFound:
			if _, ok := s.cfg.Catalog.Get(c.ConnectorKey); !ok {
				continue
			}
		case failure.CredentialsRequired:
			in := GateInput(c)
			in.Hold = enroll.Hold{}
			e := s.cfg.Gate.Evaluate(ctx, in)
			if e.Outcome != enroll.Enrolled {
				continue
			}
			detail["reason"] = e.Reason
		default:
			continue
		}
		_, changed, err := s.cfg.Store.ClearHold(ctx, c.ID, c.Hold.Code)
		if err != nil {
			s.cfg.Logger.Error("release a hold", "connection_id", c.ID, "hold_code", string(c.Hold.Code), "error", err)
			continue
		}
		if !changed {
			continue
		}
		s.record(ctx, actor, "connection.release_hold", c.ID, nil, detail)
		s.Reevaluate(ctx, c.ID)
		out = append(out, c.ID)
	}
	return out, nil
}

// repinned reports whether c is backed off (not held) after runs that
// failed plugin_checksum_mismatch, and its connector's binary was pinned
// since the first of them: the cause is gone.
func (s *Service) repinned(c store.Connection) bool {
	if c.Hold.Held() || c.BackoffUntil.IsZero() || c.Streak.FailCode != failure.PluginChecksumMismatch {
		return false
	}
	e, ok := s.cfg.Catalog.Get(c.ConnectorKey)
	return ok && e.ScannedAt.After(c.Streak.FailSince)
}

// Apply makes this host's scheduler agree with the connection as stored:
// what another host's change, announced over the bus, calls. The
// enrollment report is the announcing host's to write.
func (s *Service) Apply(ctx context.Context, id string) {
	c, err := s.cfg.Store.GetConnection(ctx, id)
	if err != nil {
		s.cfg.Scheduler.Remove(id)
		return
	}
	s.apply(ctx, c)
}

// Resync applies every connection, for a host that may have missed
// announcements (its bus connection dropped).
func (s *Service) Resync(ctx context.Context) error {
	conns, err := s.cfg.Store.ListConnections(ctx, store.ConnectionFilter{})
	if err != nil {
		return err
	}
	for _, c := range conns {
		s.apply(ctx, c)
	}
	return nil
}

func (s *Service) remoteChange(id string) {
	// Off the bus's goroutine: Apply reads the store.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Apply(ctx, id)
	}()
}

// announce tells the other hosts that connection id changed.
func (s *Service) announce(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Bus.Publish(ctx, notify.Connection, id); err != nil {
		s.cfg.Logger.Warn("announce a connection change to the other hosts", "connection_id", id, "error", err)
	}
}

// Boot evaluates every connection, enrolls the eligible ones, replaces the
// stored report and returns it. The caller logs enroll.Summary.
func (s *Service) Boot(ctx context.Context) ([]enroll.Entry, error) {
	var conns []store.Connection
	conns, err := s.cfg.Store.ListConnections(ctx, store.ConnectionFilter{})
	if err != nil {
		return nil, err
	}
	entries := make([]enroll.Entry, 0, len(conns))
	stored := make([]store.EnrollmentEntry, 0, len(conns))
	for _, c := range conns {
		e := s.apply(ctx, c)
		entries = append(entries, e)
		stored = append(stored, toStoreEntry(e))
	}
	if err := s.cfg.Store.ReplaceEnrollment(ctx, stored); err != nil {
		return entries, err
	}
	return entries, nil
}

// GateInput is what the enrollment gate is told about c: every caller of
// the gate (enrollment here, explain) builds it the same way.
func GateInput(c store.Connection) enroll.Connection {
	return enroll.Connection{
		ID: c.ID, ConnectorKey: c.ConnectorKey, State: string(c.State), Schedule: c.Schedule.Spec,
		Hold: enroll.Hold{Code: string(c.Hold.Code), Message: c.Hold.Message, At: c.Hold.At},
	}
}

// apply evaluates c and makes the scheduler agree.
func (s *Service) apply(ctx context.Context, c store.Connection) enroll.Entry {
	e := s.cfg.Gate.Evaluate(ctx, GateInput(c))
	if e.Outcome == enroll.Enrolled {
		if err := s.cfg.Scheduler.Upsert(schedule.Job{ConnectionID: c.ID, Spec: e.Spec, Jitter: c.Schedule.Jitter,
			Gen: c.ScheduleGen, Anchor: c.CreatedAt.Truncate(time.Second), Since: c.UpdatedAt}); err != nil {
			s.cfg.Logger.Error("enroll schedule", "connection_id", c.ID, "error", err)
			e.Outcome, e.Reason = enroll.SkippedInvalidSchedule, err.Error()
		}
		return e
	}
	s.cfg.Scheduler.Remove(c.ID)
	return e
}

func toStoreEntry(e enroll.Entry) store.EnrollmentEntry {
	return store.EnrollmentEntry{ConnectionID: e.ConnectionID, ConnectorKey: e.ConnectorKey, Outcome: store.EnrollmentOutcome(e.Outcome), Reason: e.Reason}
}

func (s *Service) record(ctx context.Context, actor, op, id string, err error, detail map[string]string) {
	ev := audit.Event{Actor: actor, Operation: op, TargetKind: "connection", TargetID: id, Detail: detail}
	if err != nil {
		ev.Outcome = store.AuditFailed
		if detail == nil {
			ev.Detail = map[string]string{}
		}
		ev.Detail["failure_code"] = string(failure.CodeOf(err))
	}
	s.cfg.Audit.Record(ctx, ev)
}

// recordCredential audits a credential set the service refused itself
// (the broker audits the captures and rotations it performs).
func (s *Service) recordCredential(ctx context.Context, actor, id string, err error) {
	s.cfg.Audit.Record(ctx, audit.Event{Actor: actor, Operation: "credential.set", TargetKind: "connection", TargetID: id,
		Outcome: store.AuditRefused, Detail: map[string]string{"failure_code": string(failure.CodeOf(err))}})
}

// Manifests adapts a Catalog to the enrollment gate.
type Manifests struct{ Catalog Catalog }

// Manifest returns the connector's manifest.
func (m Manifests) Manifest(key string) (manifest.Manifest, bool) {
	e, ok := m.Catalog.Get(key)
	return e.Manifest, ok
}
