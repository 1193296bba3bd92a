package runner_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
)

// checkLauncher is a Launcher whose Check answers what the test scripts;
// it starts no child.
type checkLauncher struct {
	check func() (wire.CheckResult, error)
}

func (l checkLauncher) Run(context.Context, launch.Spec, wire.RunRequest, func(wire.Message) error) error {
	return failure.New(failure.Internal, "checkLauncher does not run")
}

func (l checkLauncher) Check(context.Context, launch.Spec, wire.CheckRequest) (wire.CheckResult, error) {
	return l.check()
}

var _ runner.Launcher = checkLauncher{}

// checkRunner is a runner over h's store, catalog and broker whose
// launcher answers every Check with cr and err.
func checkRunner(t *testing.T, h *hosttest.Host, cr wire.CheckResult, err error) *runner.Runner {
	t.Helper()
	r, nerr := runner.New(runner.Config{
		Store: h.Store, Catalog: h.Catalog, Broker: h.Broker, HostID: "host_test",
		Launcher: checkLauncher{check: func() (wire.CheckResult, error) { return cr, err }},
		Audit:    &audit.Log{Store: h.Store, Logger: h.Logger}, Logger: h.Logger.Named("checkrunner"), Now: h.Clock.Now,
	})
	if nerr != nil {
		t.Fatal(nerr)
	}
	return r
}

// A check is a verdict on the credential, stored as its validity, only
// when it succeeded or the connector refused the credential; a network or
// TLS failure (connector_failed, retryable or not), a config the connector
// refuses, a crash or a timeout leaves the validity as it was.
func TestCheckRecordsOnlyVerdicts(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	const netMsg = "network failure with 127.0.0.1:18993 (connect): connection refused"
	tests := map[string]struct {
		prior string // the token captured first, checked by the real demo
		cr    wire.CheckResult
		err   error
		want  runner.CheckResult
	}{
		"valid is recorded": {prior: "wrong-token", cr: wire.CheckResult{Valid: true, Identity: "demo"},
			want: runner.CheckResult{Verdict: true, Valid: true, Identity: "demo", Message: "valid for demo"}},
		"credential_rejected is recorded invalid": {prior: canary,
			cr:   wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialRejected, Message: "token rejected"}},
			want: runner.CheckResult{Verdict: true, Message: "credential_rejected: token rejected"}},
		"credentials_required is recorded invalid": {prior: canary,
			cr:   wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "DEMO_TOKEN is missing"}},
			want: runner.CheckResult{Verdict: true, Message: "credentials_required: DEMO_TOKEN is missing"}},
		"retryable connector_failed keeps a valid credential valid": {prior: canary,
			cr:   wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeConnectorFailed, Message: netMsg, Retryable: true}},
			want: runner.CheckResult{Message: "connector_failed: " + netMsg}},
		"retryable connector_failed keeps an invalid credential invalid": {prior: "wrong-token",
			cr:   wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeConnectorFailed, Message: netMsg, Retryable: true}},
			want: runner.CheckResult{Message: "connector_failed: " + netMsg}},
		"non-retryable connector_failed is not recorded": {prior: canary,
			cr:   wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "TLS failure: set ca_file"}},
			want: runner.CheckResult{Message: "connector_failed: TLS failure: set ca_file"}},
		"invalid_config is not recorded": {prior: canary,
			cr:   wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeInvalidConfig, Message: "unknown field"}},
			want: runner.CheckResult{Message: "invalid_config: unknown field"}},
		"a crash is not recorded": {prior: canary, err: failure.New(failure.ConnectorCrashed, "plugin exited"),
			want: runner.CheckResult{Message: "connector_crashed: plugin exited"}},
		"a timeout is not recorded": {prior: canary, err: failure.New(failure.RunTimeout, "check timed out"),
			want: runner.CheckResult{Message: "run_timeout: check timed out"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := h.CreateDemo(demoConfig(nil), "")
			h.SetToken(c.ID, tc.prior)
			before, err := h.Store.GetCredentialMeta(ctx, c.ID)
			if err != nil || before.Validity == nil || before.Validity.Valid != (tc.prior == canary) {
				t.Fatalf("validity after capturing the prior token = %+v, %v", before.Validity, err)
			}
			h.Clock.Advance(time.Minute) // a new verdict carries a new time

			got, err := checkRunner(t, h, tc.cr, tc.err).Check(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("check result (-want +got):\n%s", diff)
			}
			after, err := h.Store.GetCredentialMeta(ctx, c.ID)
			if err != nil || after.Validity == nil {
				t.Fatalf("validity after the check = %+v, %v", after.Validity, err)
			}
			if !tc.want.Verdict {
				if diff := cmp.Diff(before.Validity, after.Validity); diff != "" {
					t.Errorf("an inconclusive check changed the validity (-before +after):\n%s", diff)
				}
				return
			}
			if after.Validity.Valid != tc.want.Valid || after.Validity.Message != tc.want.Message ||
				!after.Validity.CheckedAt.After(before.Validity.CheckedAt) {
				t.Errorf("validity = %+v (before %+v), want a new verdict valid=%v %q",
					after.Validity, before.Validity, tc.want.Valid, tc.want.Message)
			}
		})
	}
}

// A capture whose check is inconclusive still stores the credential, and
// says why the check reached no verdict; its validity stays unset.
func TestCaptureReportsAnInconclusiveCheck(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ctx := context.Background()
	c := h.CreateDemo(demoConfig(nil), "")
	// A config the schema check let through (or stored before it) that the
	// connector refuses.
	if _, err := h.Store.UpdateConnection(ctx, c.ID, store.ConnectionPatch{Config: json.RawMessage(`{"recrods": 5}`)}); err != nil {
		t.Fatal(err)
	}
	capture, err := h.Control.SetCredential(ctx, "operator", c.ID, map[string]string{"DEMO_TOKEN": canary}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if capture.Credential.Validity != nil {
		t.Errorf("an inconclusive check stored a validity: %+v", capture.Credential.Validity)
	}
	if chk := capture.Check; chk.Verdict || chk.Valid || !strings.HasPrefix(chk.Message, "invalid_config: ") {
		t.Errorf("check = %+v, want an inconclusive invalid_config", chk)
	}
	if strings.Contains(capture.Check.Message, canary) {
		t.Fatal("the check message holds the token")
	}
}
