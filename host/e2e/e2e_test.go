package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/apicall"
	"github.com/connhost/connhost/host/server"
)

const (
	failureUnavailable = "static_secret_credential_unavailable"
	failureRequired    = "credentials_required"
)

// run mirrors the fields of `connhost run … -o json` the issue names, as
// a map so a missing field is caught.
type runJSON map[string]any

func (r runJSON) str(k string) string { s, _ := r[k].(string); return s }

// TestSeedScenariosEndToEnd drives the seed's scenarios through the real
// binaries: `connhost serve` as a subprocess whose environment sets
// DEMO_TOKEN to the empty string, operated only with the `connhost` CLI.
// The steps share one host and run in order.
func TestSeedScenariosEndToEnd(t *testing.T) {
	h := newHarness(t)
	canary := newCanary(t)
	tokenHash := sha256.Sum256([]byte(canary))
	// token_sha256 makes the demo refuse any DEMO_TOKEN but the canary:
	// a succeeded run proves the child got exactly the stored value.
	config := fmt.Sprintf(`{"records":5,"token_sha256":%q}`, hex.EncodeToString(tokenHash[:]))

	// An encrypted keyset under a generated KEK file, made by the CLI.
	initOut := h.okLocal("keyset", "init", "--data-dir", h.dataDir, "--kek-file", h.kekFile)
	if !strings.Contains(initOut, "--kek-file "+h.kekFile) {
		t.Errorf("keyset init does not say how to serve:\n%s", initOut)
	}
	h.start("DEMO_TOKEN=")

	var keyset apitypes.KeysetInfo
	h.okJSON(&keyset, "keyset", "info")
	if !keyset.Encrypted || keyset.KEK != "file" {
		t.Errorf("keyset info = %+v, want encrypted under a KEK file", keyset)
	}
	var connectors []apitypes.Connector
	h.okJSON(&connectors, "connector", "list")
	if i := slices.IndexFunc(connectors, func(c apitypes.Connector) bool { return c.ConnectorKey == "demo" }); i < 0 ||
		connectors[i].Auth.Kind != "static_secret" || !slices.Equal(connectors[i].Auth.Required, []string{"DEMO_TOKEN"}) {
		t.Fatalf("connector list -o json = %+v, want demo requiring DEMO_TOKEN", connectors)
	}

	var scheduled apitypes.Connection
	h.okJSON(&scheduled, "connection", "create", "--connector", "demo", "--label", "e2e-scheduled",
		"--schedule", "@every 1s", "--config", config)
	if scheduled.ID == "" || scheduled.Schedule != "@every 1s" {
		t.Fatalf("connection create = %+v", scheduled)
	}
	id := scheduled.ID

	t.Run("EmptyHostEnvIsNotAuthEvidence", func(t *testing.T) {
		// DEMO_TOKEN="" in the host env and no stored credential: the
		// connection is not enrolled, and a manual run is refused.
		if got := h.enrollment(id); got != "skipped_env" {
			t.Errorf("enrollment before capture = %q, want skipped_env", got)
		}
		// The run is queued, then refused by the launch seam: a run that
		// did not succeed (exit 3), its code first on stderr.
		res := h.cli("", "run", id, "--wait")
		if res.code != 3 || !strings.HasPrefix(res.stderr, "error: "+failureRequired+": ") {
			t.Errorf("manual run without a credential: exit %d, stderr %q; want exit 3 with %s", res.code, res.stderr, failureRequired)
		}
	})

	t.Run("CredentialCapturedFromStdin", func(t *testing.T) {
		res := h.cli("", "credential", "set", id, "DEMO_TOKEN="+canary)
		if res.code != 2 || !strings.Contains(res.stderr, "secret_in_argv") {
			t.Errorf("secret in argv: exit %d, stderr %q; want exit 2 secret_in_argv", res.code, res.stderr)
		}
		out := h.ok("# the demo's token\nDEMO_TOKEN="+canary+"\n", "credential", "set", id, "-o", "json")
		var cred map[string]any
		if err := json.Unmarshal([]byte(out), &cred); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"present", "state", "names", "captured_at"} {
			if _, ok := cred[k]; !ok {
				t.Errorf("credential set -o json lacks %q: %s", k, out)
			}
		}
		// A time not reached is omitted, never "".
		if v, ok := cred["rotated_at"]; ok {
			t.Errorf("credential set -o json has rotated_at %q before any rotation: %s", v, out)
		}
		var show apitypes.Credential
		h.okJSON(&show, "credential", "show", id)
		if !show.Present || show.State != "active" || !slices.Equal(show.Names, []string{"DEMO_TOKEN"}) || show.CapturedAt == "" {
			t.Errorf("credential show = %+v, want present active [DEMO_TOKEN]", show)
		}
		// Capture re-evaluates enrollment at once: no restart needed.
		if got := h.enrollment(id); got != "enrolled" {
			t.Errorf("enrollment after capture = %q, want enrolled", got)
		}
	})

	t.Run("ScheduledRunSucceedsWithNoCredentialEnvVars", func(t *testing.T) {
		h.eventually("two scheduled runs succeed", func() (bool, string) {
			runs := h.runs(id)
			n := 0
			for _, r := range runs {
				if r.Trigger != "scheduled" {
					continue
				}
				if r.Status == "succeeded" {
					n++
				}
				if r.FailureCode == failureRequired || r.FailureCode == failureUnavailable {
					t.Fatalf("scheduled run refused: %+v", r)
				}
			}
			return n >= 2, fmt.Sprintf("%+v", runs)
		})
		runs := h.runs(id)
		for i := 1; i < len(runs); i++ {
			if runs[i-1].CreatedAt < runs[i].CreatedAt {
				t.Errorf("runs list is not newest first: %s before %s", runs[i-1].CreatedAt, runs[i].CreatedAt)
			}
		}
		var records []apitypes.Record
		h.okJSON(&records, "records", "list", id, "--stream", "events")
		if len(records) != 5 {
			t.Errorf("records list = %d records, want 5", len(records))
		}
	})

	t.Run("ManualRunBehavesLikeScheduled", func(t *testing.T) {
		var run runJSON
		h.okJSON(&run, "run", id, "--wait")
		for _, k := range []string{"id", "connection_id", "trigger", "status", "failure_code", "created_at", "started_at", "ended_at", "records"} {
			if _, ok := run[k]; !ok {
				t.Errorf("run --wait -o json lacks %q: %v", k, run)
			}
		}
		if run.str("status") != "succeeded" || run.str("trigger") != "manual" || run.str("connection_id") != id {
			t.Errorf("manual run = %v, want a succeeded manual run of %s", run, id)
		}
	})

	t.Run("ProvenanceIsTheSameOnEveryLaunchPath", func(t *testing.T) {
		// Issue 12: the scheduled and the manual run record the same
		// provenance, DEMO_TOKEN from the stored credential although the
		// host env holds DEMO_TOKEN="", and explain predicts it.
		var scheduledRun, manualRun apitypes.Run
		for _, r := range h.runs(id) {
			switch {
			case r.Status != "succeeded":
			case r.Trigger == "scheduled" && scheduledRun.ID == "":
				h.okJSON(&scheduledRun, "runs", "show", r.ID)
			case r.Trigger == "manual" && manualRun.ID == "":
				h.okJSON(&manualRun, "runs", "show", r.ID)
			}
		}
		if scheduledRun.Provenance == nil || manualRun.Provenance == nil {
			t.Fatalf("provenance missing: scheduled %+v, manual %+v", scheduledRun, manualRun)
		}
		sp, _ := json.Marshal(scheduledRun.Provenance)
		mp, _ := json.Marshal(manualRun.Provenance)
		if string(sp) != string(mp) {
			t.Errorf("scheduled and manual provenance differ:\n%s\n%s", sp, mp)
		}
		if !slices.Contains(manualRun.Provenance.Env, apitypes.EnvVar{Name: "DEMO_TOKEN", Layer: "stored_credential"}) ||
			manualRun.Provenance.CredentialSource != "stored" || manualRun.Provenance.Credential == nil {
			t.Errorf("manual run provenance = %s, want DEMO_TOKEN from the stored credential", mp)
		}
		out := h.ok("", "runs", "show", manualRun.ID)
		for _, want := range []string{"credential: stored credential (active, key id ", "NAME ", " LAYER\n", "DEMO_TOKEN  ", "stored_credential\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("runs show lacks %q:\n%s", want, out)
			}
		}
		var ex apitypes.Explain
		h.okJSON(&ex, "connection", "explain", id)
		ep, _ := json.Marshal(ex.Launch.Env)
		rp, _ := json.Marshal(manualRun.Provenance.Env)
		if ex.Launch.Outcome != "launch" || ex.Launch.CredentialSource != "stored" || string(ep) != string(rp) {
			t.Errorf("explain = %+v, want a launch with the run's env %s", ex.Launch, rp)
		}
		if out := h.ok("", "connection", "explain", id); !strings.Contains(out, "next launch:") || !strings.Contains(out, "launch (scheduled, due ") {
			t.Errorf("connection explain:\n%s", out)
		}
	})

	// A second connection on the connector's default schedule (every
	// minute: it does not fire during the test), captured from a file, whose
	// runs are slow enough to report progress.
	var slow apitypes.Connection
	h.okJSON(&slow, "connection", "create", "--connector", "demo", "--label", "e2e-follow",
		"--config", fmt.Sprintf(`{"records":20,"record_delay_ms":10,"token_sha256":%q}`, hex.EncodeToString(tokenHash[:])))
	credFile := filepath.Join(t.TempDir(), "demo.env")
	if err := os.WriteFile(credFile, []byte("DEMO_TOKEN="+canary+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok("", "credential", "set", slow.ID, "--from-file", credFile)

	t.Run("FollowShowsLiveProgress", func(t *testing.T) {
		out := h.ok("", "run", slow.ID, "--follow")
		for _, want := range []string{" status running\n", " progress events ", "/20", " end succeeded ", "status:     succeeded\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("run --follow output lacks %q:\n%s", want, out)
			}
		}
		var run runJSON
		h.okJSON(&run, "run", slow.ID, "--follow")
		if run.str("status") != "succeeded" {
			t.Errorf("run --follow -o json = %v", run)
		}
	})

	// The data dir while the host runs (SQLite WAL included).
	h.checkCanary(canary, "while serving")
	h.captureAPI()

	t.Run("EnvFreeRestartAutoEnrollsStoreBackedConnection", func(t *testing.T) {
		before := h.runIDs(id)
		h.stop()
		h.start("DEMO_TOKEN=")
		if got := h.enrollment(id); got != "enrolled" {
			t.Errorf("enrollment after an env-free restart = %q, want enrolled", got)
		}
		// Without its own schedule it takes the demo's auto-enrolling
		// default ("@every 1m"), and its stored credential satisfies auth.
		if got := h.enrollment(slow.ID); got != "enrolled" {
			t.Errorf("enrollment of the connection on the default schedule = %q, want enrolled", got)
		}
		h.eventually("a scheduled run after the restart succeeds", func() (bool, string) {
			runs := h.runs(id)
			for _, r := range runs {
				if before[r.ID] || r.Trigger != "scheduled" {
					continue
				}
				if r.Status == "succeeded" {
					return true, ""
				}
				if terminal(r.Status) {
					t.Fatalf("scheduled run after restart ended %s %s", r.Status, r.FailureCode)
				}
			}
			return false, fmt.Sprintf("%+v", runs)
		})
	})

	t.Run("RevokedCredentialRefusesScheduledLaunch", func(t *testing.T) {
		var cred apitypes.Credential
		h.okJSON(&cred, "credential", "revoke", id)
		if cred.State != "revoked" {
			t.Errorf("credential revoke = %+v, want state revoked", cred)
		}
		before := h.runIDs(id)
		var refused apitypes.Run
		h.eventually("the next scheduled run is refused", func() (bool, string) {
			runs := h.runs(id)
			for _, r := range runs {
				if before[r.ID] || r.Trigger != "scheduled" || !terminal(r.Status) {
					continue
				}
				if r.Status != "refused" || r.FailureCode != failureUnavailable {
					t.Fatalf("scheduled run after revoke = %+v, want refused %s", r, failureUnavailable)
				}
				refused = r
				return true, ""
			}
			return false, fmt.Sprintf("%+v", runs)
		})
		if refused.StartedAt != "" || refused.Records != 0 {
			t.Errorf("refused run %+v started a child", refused)
		}
		res := h.cli("", "run", id, "--wait")
		if res.code != 3 || !strings.HasPrefix(res.stderr, "error: "+failureUnavailable+": ") {
			t.Errorf("manual run after revoke: exit %d, stderr %q; want exit 3 with %s", res.code, res.stderr, failureUnavailable)
		}
	})

	t.Run("ExplainAndProvenanceAfterRevoke", func(t *testing.T) {
		var ex apitypes.Explain
		h.okJSON(&ex, "connection", "explain", id)
		r := ex.Launch.Refusal
		if ex.Launch.Outcome != "refused" || r == nil || r.Code != failureUnavailable || r.CredentialState != "revoked" ||
			!strings.Contains(r.Message, "stored credential revoked at ") || len(ex.Launch.Env) != 0 {
			t.Errorf("explain after revoke = %+v", ex.Launch)
		}
		out := h.ok("", "connection", "explain", id)
		if !strings.Contains(out, "refused:          "+failureUnavailable+": ") || !strings.Contains(out, "credential state: revoked\n") {
			t.Errorf("connection explain after revoke:\n%s", out)
		}
		for _, run := range h.runs(id) {
			if run.Status != "refused" || run.FailureCode != failureUnavailable {
				continue
			}
			var shown apitypes.Run
			h.okJSON(&shown, "runs", "show", run.ID)
			if p := shown.Provenance; p == nil || p.Refusal == nil || p.Refusal.CredentialState != "revoked" || len(p.Env) != 0 {
				t.Errorf("refused run %s provenance = %+v", run.ID, p)
			}
			if out := h.ok("", "runs", "show", run.ID); !strings.Contains(out, "credential state: revoked") {
				t.Errorf("runs show of a refused run:\n%s", out)
			}
		}
	})

	t.Run("NoFallbackToHostEnvAndStoredSecretWins", func(t *testing.T) {
		// A non-empty host DEMO_TOKEN now: the revoked connection must not
		// fall back to it, and the active one must get its stored value
		// (the decoy would fail the demo's token check).
		h.stop()
		h.start("DEMO_TOKEN=decoy-host-value")
		res := h.cli("", "run", id, "--wait")
		if res.code != 3 || !strings.HasPrefix(res.stderr, "error: "+failureUnavailable+": ") {
			t.Errorf("revoked connection with a host token: exit %d, stderr %q; want exit 3 with %s", res.code, res.stderr, failureUnavailable)
		}
		var run runJSON
		h.okJSON(&run, "run", slow.ID, "--wait")
		if run.str("status") != "succeeded" {
			t.Errorf("stored credential vs host env: run %v, want succeeded", run)
		}
		var cred apitypes.Credential
		h.okJSON(&cred, "credential", "delete", slow.ID)
		if cred.State != "deleted" {
			t.Errorf("credential delete = %+v", cred)
		}
		res = h.cli("", "run", slow.ID, "--wait")
		if res.code != 3 || !strings.HasPrefix(res.stderr, "error: "+failureUnavailable+": ") {
			t.Errorf("deleted credential with a host token: exit %d, stderr %q; want exit 3 with %s", res.code, res.stderr, failureUnavailable)
		}
		var audit []apitypes.AuditEvent
		h.okJSON(&audit, "audit", "list", "--target", id)
		if len(audit) == 0 {
			t.Error("audit list --target is empty")
		}
	})

	h.captureAPI()
	h.stop()

	t.Run("CanaryNeverLeaks", func(t *testing.T) {
		h.checkCanary(canary, "after shutdown")
	})
}

// newCanary returns a random secret that cannot occur by chance.
func newCanary(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "canary-" + hex.EncodeToString(b)
}

// checkCanary fails on any trace of the secret — raw, hex or base64 — in
// every captured CLI output, API response and server log, and in every
// byte of the data dir. The operator token must not reach the logs or the
// CLI outputs either.
func (h *harness) checkCanary(canary, when string) {
	h.t.Helper()
	forms := map[string][]byte{
		"raw":       []byte(canary),
		"hex":       []byte(hex.EncodeToString([]byte(canary))),
		"base64":    []byte(base64.StdEncoding.EncodeToString([]byte(canary))),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString([]byte(canary))),
	}
	token, err := server.ReadToken(h.dataDir)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	outputs := slices.Clone(h.outputs)
	h.mu.Unlock()
	if s := h.srv; s != nil {
		outputs = append(outputs, captured{"server log (running)", s.stderr.String()}, captured{"server stdout (running)", s.stdout.String()})
	}
	var hits []string
	scanned := 0
	for _, o := range outputs {
		scanned += len(o.text)
		for form, b := range forms {
			if bytes.Contains([]byte(o.text), b) {
				hits = append(hits, fmt.Sprintf("%s (%s)", o.what, form))
			}
		}
		if strings.Contains(o.text, token) {
			hits = append(hits, o.what+" (operator token)")
		}
	}
	files := h.dataDirFiles()
	for path, data := range files {
		scanned += len(data)
		for form, b := range forms {
			if bytes.Contains(data, b) {
				hits = append(hits, fmt.Sprintf("%s (%s)", path, form))
			}
		}
	}
	if len(hits) > 0 {
		h.t.Errorf("%s: the secret appears in: %v", when, hits)
	}
	if len(outputs) < 20 || len(files) < 3 {
		h.t.Errorf("%s: scanned only %d outputs and %d files", when, len(outputs), len(files))
	}
	h.t.Logf("%s: scanned %d outputs and %d data dir files (%d bytes): no trace of the secret", when, len(outputs), len(files), scanned)
}

// captureAPI records raw API responses for the canary check, including
// the ones the CLI reshapes.
func (h *harness) captureAPI() {
	h.t.Helper()
	token, err := server.ReadToken(h.dataDir)
	if err != nil {
		h.t.Fatal(err)
	}
	api := apicall.Caller{T: h.t, Base: h.srv.addr, Auth: "Bearer " + token}
	for _, path := range []string{"/v1/connections", "/v1/runs?limit=500", "/v1/audit?limit=500", "/v1/enrollment", "/v1/keyset", "/metrics"} {
		h.record("GET "+path, string(api.OK(http.StatusOK, http.MethodGet, path, nil, nil).Body))
	}
}

// okLocal runs a CLI command that needs no server (keyset init).
func (h *harness) okLocal(args ...string) string {
	h.t.Helper()
	cmd := exec.Command(h.bin.connhost, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.marker}
	out, err := cmd.CombinedOutput()
	h.record("connhost "+strings.Join(args, " "), string(out))
	if err != nil {
		h.t.Fatalf("connhost %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// enrollment returns the connection's outcome in `connhost enrollment`.
func (h *harness) enrollment(id string) string {
	h.t.Helper()
	var rep apitypes.Enrollment
	h.okJSON(&rep, "enrollment")
	for _, e := range rep.Connections {
		if e.ConnectionID == id {
			return e.Outcome
		}
	}
	return ""
}

// runs lists the connection's runs, newest first.
func (h *harness) runs(id string) []apitypes.Run {
	h.t.Helper()
	var runs []apitypes.Run
	h.okJSON(&runs, "runs", "list", "--connection", id, "--limit", "500")
	return runs
}

func (h *harness) runIDs(id string) map[string]bool {
	h.t.Helper()
	ids := map[string]bool{}
	for _, r := range h.runs(id) {
		ids[r.ID] = true
	}
	return ids
}

func terminal(status string) bool {
	switch status {
	case "succeeded", "failed", "refused", "cancelled":
		return true
	}
	return false
}
