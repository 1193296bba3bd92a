package runner_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/enroll"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/keysets"
	"github.com/google/go-cmp/cmp"
)

const (
	canary     = "CANARY-stored-token-7f3e91"
	hostSecret = "HOST-SECRET-never-in-child-41c2"
)

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// echoNames is every name DESIGN section 3 allows in a child, plus a
// planted host secret that must not be there.
var echoNames = append(append([]string{}, launch.DefaultAllowlist...),
	"DEMO_TOKEN", "DEMO_LABEL", "CONNHOST_CONNECTION_ID", "CONNHOST_RUN_ID", "CONNHOST_TRIGGER", "AWS_SECRET_ACCESS_KEY")

func demoConfig(extra map[string]any) map[string]any {
	cfg := map[string]any{"records": 3, "token_sha256": sha(canary), "echo_env": echoNames}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

func hostEnv(token *string) map[string]string {
	env := map[string]string{
		"PATH":                  os.Getenv("PATH"),
		"HOME":                  os.Getenv("HOME"),
		"DEMO_LABEL":            "lab",
		"AWS_SECRET_ACCESS_KEY": hostSecret,
	}
	if token != nil {
		env["DEMO_TOKEN"] = *token
	}
	return env
}

func ptr[T any](v T) *T { return &v }

// withoutRunMeta drops the names that differ per run by design.
func withoutRunMeta(m map[string]hosttest.EnvRecord) map[string]hosttest.EnvRecord {
	out := map[string]hosttest.EnvRecord{}
	for k, v := range m {
		if k != "CONNHOST_RUN_ID" && k != "CONNHOST_TRIGGER" {
			out[k] = v
		}
	}
	return out
}

func findRun(t *testing.T, runs []store.Run, trig store.RunTrigger, status store.RunStatus) store.Run {
	t.Helper()
	for _, r := range runs {
		if r.Trigger == trig && r.Status == status {
			return r
		}
	}
	t.Fatalf("no %s run with status %s in %+v", trig, status, runs)
	return store.Run{}
}

// Seed scenario: "Scheduled run succeeds with no credential env vars".
func TestScheduledRunSucceedsWithNoCredentialEnvVars(t *testing.T) {
	t.Parallel()
	for name, token := range map[string]*string{"host env absent": nil, "host env empty string": ptr("")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(token), AllowHostEnv: true})
			ctx := context.Background()
			conn := h.CreateDemo(demoConfig(nil), "@every 1h")
			// Before a credential: the env cannot satisfy auth.
			if e, _ := h.Store.ListEnrollment(ctx); len(e) != 1 || e[0].Outcome != store.EnrollmentOutcome(enroll.SkippedEnv) {
				t.Fatalf("enrollment before capture = %+v", e)
			}
			h.SetToken(conn.ID, canary) // re-evaluates: enrolls without a restart
			if !h.Scheduler.Enrolled(conn.ID) {
				t.Fatal("capture did not enroll the connection")
			}

			// 1. A scheduled run.
			h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(conn.ID)) >= 1 })
			scheduled := findRun(t, h.Runs(conn.ID), store.TriggerScheduled, store.RunSucceeded)
			envScheduled := h.EnvRecords(conn.ID)

			// 2. A retry: the next scheduled run fails retryably once.
			if _, _, err := h.Control.UpdateConnection(ctx, "operator", conn.ID, store.ConnectionPatch{
				Config: mustJSON(t, demoConfig(map[string]any{"records": 6, "fail_at": 1, "fail_triggers": []string{"scheduled"}})),
			}); err != nil {
				t.Fatal(err)
			}
			h.AdvanceUntil(time.Minute, 90*time.Second, func() bool {
				for _, r := range h.Runs(conn.ID) {
					if r.Trigger == store.TriggerRetry && r.Status.Terminal() {
						return true
					}
				}
				return false
			})
			failed := findRun(t, h.Runs(conn.ID), store.TriggerScheduled, store.RunFailed)
			retry := findRun(t, h.Runs(conn.ID), store.TriggerRetry, store.RunSucceeded)
			if retry.RetryOf != failed.ID || retry.Attempt != 2 || failed.FailureCode != failure.ConnectorFailed {
				t.Fatalf("retry %+v of failed %+v", retry, failed)
			}
			envRetry := h.EnvRecords(conn.ID)

			// 3. A manual run.
			manual, err := h.RunNow(conn.ID)
			if err != nil || manual.Status != store.RunSucceeded {
				t.Fatalf("manual run = %+v, %v", manual, err)
			}
			envManual := h.EnvRecords(conn.ID)

			// The child received the stored value on every path.
			for label, env := range map[string]map[string]hosttest.EnvRecord{"scheduled": envScheduled, "retry": envRetry, "manual": envManual} {
				if got := env["DEMO_TOKEN"]; !got.Present || got.SHA256 != sha(canary) {
					t.Fatalf("%s run: DEMO_TOKEN = %+v, want the stored value", label, got)
				}
				if env["AWS_SECRET_ACCESS_KEY"].Present {
					t.Fatalf("%s run: a host secret reached the child", label)
				}
				if got := env["CONNHOST_TRIGGER"].SHA256; got != sha(label) {
					t.Fatalf("%s run: CONNHOST_TRIGGER hash %s", label, got)
				}
			}
			// Same child environment, names and value hashes, on all three paths.
			if diff := cmp.Diff(withoutRunMeta(envScheduled), withoutRunMeta(envRetry)); diff != "" {
				t.Fatalf("scheduled vs retry env (-scheduled +retry):\n%s", diff)
			}
			if diff := cmp.Diff(withoutRunMeta(envScheduled), withoutRunMeta(envManual)); diff != "" {
				t.Fatalf("scheduled vs manual env (-scheduled +manual):\n%s", diff)
			}
			// No credentials_required anywhere.
			for _, r := range h.Runs(conn.ID) {
				if r.FailureCode == failure.CredentialsRequired {
					t.Fatalf("run %s raised credentials_required", r.ID)
				}
			}
			_ = scheduled
			if strings.Contains(h.Logs.String(), canary) {
				t.Fatal("canary reached the host log")
			}
		})
	}
}

// Seed scenario: "Credential resolution failure refuses the launch".
func TestCredentialResolutionFailureRefusesTheLaunch(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T, h *hosttest.Host, connID string){
		"revoked": func(t *testing.T, h *hosttest.Host, id string) {
			if _, err := h.Control.RevokeCredential(context.Background(), "operator", id); err != nil {
				t.Fatal(err)
			}
		},
		"deleted": func(t *testing.T, h *hosttest.Host, id string) {
			if _, err := h.Control.DeleteCredential(context.Background(), "operator", id); err != nil {
				t.Fatal(err)
			}
		},
		"undecryptable": func(t *testing.T, h *hosttest.Host, id string) {
			ctx := context.Background()
			c, err := h.Store.GetCredential(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			bad := append([]byte(nil), c.Ciphertext...)
			bad[len(bad)-1] ^= 0x55
			if err := h.Store.ReplaceCiphertext(ctx, id, c.Ciphertext, bad, c.KeyID); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, breakIt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// The host env holds a different, non-empty value: no fallback.
			h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(ptr("different-non-empty-host-token")), AllowHostEnv: true})
			conn := h.CreateDemo(demoConfig(nil), "@every 1h")
			h.SetToken(conn.ID, canary)
			breakIt(t, h, conn.ID)
			before := h.Launcher.Launches()

			h.AdvanceUntil(time.Minute, 60*time.Second, func() bool { return len(h.Finished(conn.ID)) >= 1 })
			run := h.Finished(conn.ID)[0]
			if run.Trigger != store.TriggerScheduled || run.Status != store.RunRefused || run.FailureCode != failure.StaticSecretUnavailable {
				t.Fatalf("scheduled run = %+v, want refused %s", run, failure.StaticSecretUnavailable)
			}
			// The manual path refuses the same way.
			manual, err := h.RunNow(conn.ID)
			if failure.CodeOf(err) != failure.StaticSecretUnavailable || manual.Status != store.RunRefused {
				t.Fatalf("manual run = %+v, %v", manual, err)
			}
			if n := h.Launcher.Launches() - before; n != 0 {
				t.Fatalf("%d children spawned for a refused launch", n)
			}
			if pids := demoProcesses(t, h.PluginDir); len(pids) != 0 {
				t.Fatalf("connector processes exist: %v", pids)
			}
		})
	}
}

// demoProcesses lists live processes whose executable is a plugin in dir
// (or a private memfd copy named for it).
func demoProcesses(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join("/proc", e.Name(), "cmdline")); err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		cmd := string(b)
		if strings.Contains(cmd, dir) {
			out = append(out, e.Name()+":"+cmd)
		}
	}
	return out
}

// trapStore is a store whose decrypt-side read fails the test: the gate
// must decide on presence alone.
type trapStore struct {
	store.Presence
	t *testing.T
}

func (s trapStore) GetCredential(context.Context, string) (store.Credential, error) {
	s.t.Fatal("eligibility read a ciphertext")
	return store.Credential{}, nil
}

// Seed scenario: "Env-free deployment auto-enrolls a store-backed connector".
func TestEnvFreeDeploymentAutoEnrollsAStoreBackedConnector(t *testing.T) {
	t.Parallel()
	for name, token := range map[string]*string{"host env absent": nil, "host env empty string": ptr("")} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			first := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(token), AllowHostEnv: true, DataDir: dir})
			// No schedule of its own: the demo's default auto-enrolls.
			conn := first.CreateDemo(demoConfig(nil), "")
			first.SetToken(conn.ID, canary)
			first.Close()

			// Boot again, env-free, with a Presence that holds no key —
			// only the keyset's key ids — over a store whose ciphertext
			// read fails the test.
			h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(token), AllowHostEnv: true, DataDir: dir})
			h.Gate.Presence = broker.Presence{Store: trapStore{Presence: h.Store, t: t}, Keys: keyIDsOnly{h.Keyset.Info()}}
			entries, err := h.Control.Boot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Outcome != enroll.Enrolled {
				t.Fatalf("boot report = %+v, want enrolled", entries)
			}
			if !h.Scheduler.Enrolled(conn.ID) {
				t.Fatal("connection not scheduled")
			}
			stored, _ := h.Store.ListEnrollment(context.Background())
			if len(stored) != 1 || stored[0].Outcome != store.EnrollmentOutcome(enroll.Enrolled) {
				t.Fatalf("stored report = %+v", stored)
			}
			if got := enroll.Summary(entries); got != "enrolled=1" {
				t.Fatalf("summary = %q", got)
			}
		})
	}
}

// keyIDsOnly describes a keyset and holds no key.
type keyIDsOnly struct{ info keysets.Info }

func (k keyIDsOnly) Info() keysets.Info { return k.info }

// The keyset-aware half of the same rule: an active stored credential
// whose key the loaded keyset does not hold (the keyset was replaced)
// satisfies nothing, and the host env does not stand in for it — the
// connection is reported skipped_key_missing, typed.
func TestCredentialUnderAMissingKeyIsNotPresence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(nil), AllowHostEnv: true, DataDir: dir})
	conn := first.CreateDemo(demoConfig(nil), "")
	first.SetToken(conn.ID, canary)
	first.Close()
	if err := os.Remove(filepath.Join(dir, "keyset.json")); err != nil {
		t.Fatal(err)
	}
	// A new keyset, and a decoy the host env would otherwise offer.
	h := hosttest.New(t, hosttest.Options{HostEnv: hostEnv(ptr("decoy")), AllowHostEnv: true, DataDir: dir})
	entries, err := h.Control.Boot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Outcome != enroll.SkippedKeyMissing || !strings.Contains(entries[0].Reason, "key id") {
		t.Fatalf("boot report = %+v, want skipped_key_missing", entries)
	}
	if h.Scheduler.Enrolled(conn.ID) {
		t.Fatal("scheduled on the host env's decoy")
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var _ runner.Launcher = (*hosttest.CountingLauncher)(nil)
