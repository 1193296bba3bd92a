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
	// Verdict is true when the check judged the credential: it succeeded
	// (Valid) or the connector refused the credential (credential_rejected,
	// credentials_required). Only a verdict is recorded as the credential's
	// validity; any other outcome (a network or TLS failure, a config the
	// connector refuses, a crash, a timeout) leaves the validity as it was.
	Verdict bool
	Valid   bool
	// Identity is who the credential authenticates as, when Valid.
	Identity string
	// Message explains the result, "code: message" when the check failed
	// (non-secret, redacted).
	Message string
}

// Check asks the connector to validate the connection's credential and
// config without collecting, and records a verdict (see
// CheckResult.Verdict) as the credential's validity. It resolves the
// credential and builds the child's environment exactly as Launch does
// (the same broker call, the same env builder, the stored values last);
// it takes no lease and writes no run row, since it collects nothing.
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
	out := checkResult(cr, err)
	if res.Source == broker.SourceStored && out.Verdict {
		if _, verr := r.cfg.Store.SetCredentialValidity(context.WithoutCancel(ctx), conn.ID, out.Valid, out.Message); verr != nil {
			r.cfg.Logger.Error("record credential validity", "connection_id", conn.ID, "error", verr)
		}
	}
	outcome := store.AuditSucceeded
	if !out.Valid {
		outcome = store.AuditFailed
	}
	r.cfg.Audit.Record(ctx, audit.Event{Actor: audit.ActorHost, Operation: "credential.check", TargetKind: "connection",
		TargetID: conn.ID, Outcome: outcome, Detail: map[string]string{"valid": fmt.Sprint(out.Valid), "verdict": fmt.Sprint(out.Verdict)}})
	return out, nil
}

// checkResult turns what the launcher returned into a CheckResult: err is
// a launch failure (the plugin did not start, crashed or timed out), cr
// the connector's own answer.
func checkResult(cr wire.CheckResult, err error) CheckResult {
	if err != nil {
		msg := failureMessage(err)
		if code := failure.CodeOf(err); code != failure.Internal {
			msg = fmt.Sprintf("%s: %s", code, msg)
		}
		return CheckResult{Verdict: isVerdict(failure.CodeOf(err)), Message: msg}
	}
	switch {
	case cr.Valid:
		out := CheckResult{Verdict: true, Valid: true, Identity: cr.Identity}
		if cr.Identity != "" {
			out.Message = "valid for " + cr.Identity
		}
		return out
	case cr.Failure != nil:
		return CheckResult{Verdict: isVerdict(failure.Code(cr.Failure.Code)), Message: cr.Failure.Code + ": " + cr.Failure.Message}
	}
	// Invalid with no failure to say why: no verdict either.
	return CheckResult{Message: string(failure.ConnectorFailed) + ": the connector reported the check invalid without a failure"}
}

// isVerdict reports a failure that judges the credential: the provider
// refused it, or it lacks what the connector requires. Every other code
// (connector_failed, retryable or not: a network or TLS failure says
// nothing of the credential) is no verdict.
func isVerdict(code failure.Code) bool {
	return code == failure.CredentialRejected || code == failure.CredentialsRequired
}
