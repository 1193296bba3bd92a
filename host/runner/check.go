package runner

import (
	"context"
	"fmt"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/wire"
)

// CheckResult is the outcome of Check.
type CheckResult struct {
	Valid    bool
	Identity string
	// Message explains an invalid result (non-secret, redacted).
	Message string
}

// Check asks the connector to validate the connection's credential and
// config without collecting, and records the result as the credential's
// validity. It resolves the credential and builds the child's environment
// exactly as Launch does (the same broker call, the same env builder, the
// stored values last); it takes no lease and writes no run row, since it
// collects nothing.
func (r *Runner) Check(ctx context.Context, connectionID string) (CheckResult, error) {
	conn, err := r.cfg.Store.GetConnection(ctx, connectionID)
	if err != nil {
		return CheckResult{}, err
	}
	entry, ok := r.cfg.Catalog.Get(conn.ConnectorKey)
	if !ok {
		return CheckResult{}, failure.New(failure.ConnectorNotFound, "connector %q is not in the catalog", conn.ConnectorKey)
	}
	res, err := r.cfg.Broker.Resolve(ctx, broker.Target{ConnectionID: conn.ID, Auth: entry.Manifest.Auth})
	if err != nil {
		return CheckResult{}, err
	}
	env, _ := r.childEnv(entry, res, conn.ID, "", "check")
	cr, err := r.cfg.Launcher.Check(ctx, launch.Spec{Name: entry.Key, Path: entry.Path, SHA256: entry.SHA256, Image: entry.Image,
		Env: env, Secrets: res.Secrets()}, wire.CheckRequest{ConnectionID: conn.ID, Config: conn.Config})
	out := CheckResult{Valid: err == nil && cr.Valid, Identity: cr.Identity}
	switch {
	case err != nil:
		out.Message = failureMessage(err)
		if code := failure.CodeOf(err); code != failure.Internal {
			out.Message = fmt.Sprintf("%s: %s", code, out.Message)
		}
	case !cr.Valid && cr.Failure != nil:
		out.Message = cr.Failure.Code + ": " + cr.Failure.Message
	case cr.Valid && cr.Identity != "":
		out.Message = "valid for " + cr.Identity
	}
	// The result is a verdict on the credential unless the check never
	// reached one: a config the connector refuses (invalid_config), or a
	// plugin that crashed, timed out or did not start leaves the last
	// validity as it was.
	code := failure.CodeOf(err)
	if err == nil && cr.Failure != nil {
		code = failure.Code(cr.Failure.Code)
	}
	verdict := err == nil && code != failure.InvalidConfig || err != nil && !noVerdict(code)
	if res.Source == broker.SourceStored && verdict {
		if _, verr := r.cfg.Store.SetCredentialValidity(context.WithoutCancel(ctx), conn.ID, out.Valid, out.Message); verr != nil {
			r.cfg.Logger.Error("record credential validity", "connection_id", conn.ID, "error", verr)
		}
	}
	outcome := store.AuditSucceeded
	if !out.Valid {
		outcome = store.AuditFailed
	}
	r.cfg.Audit.Record(ctx, audit.Event{Actor: audit.ActorHost, Operation: "credential.check", TargetKind: "connection",
		TargetID: conn.ID, Outcome: outcome, Detail: map[string]string{"valid": fmt.Sprint(out.Valid)}})
	return out, nil
}

// noVerdict reports a failure that says nothing of the credential.
func noVerdict(code failure.Code) bool {
	switch code {
	case failure.InvalidConfig, failure.ConnectorCrashed, failure.RunTimeout, failure.PluginHandshakeFailed,
		failure.PluginChecksumMismatch, failure.Cancelled, failure.HostShutdown, failure.Internal:
		return true
	}
	return false
}
