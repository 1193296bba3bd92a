package launch

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// TestSeedScenario_HostEnvTokenCannotShadowStoredCredential reproduces the
// seed's bug: a run whose connection holds a stored credential, launched
// while the host environment has DEMO_TOKEN set to "" or to a stale value.
// Through go-plugin's default environment handling (SkipHostEnv false) the
// host value is appended after cmd.Env and wins, so the stored value is
// lost; through the launcher the stored value is what the child sees.
func TestSeedScenario_HostEnvTokenCannotShadowStoredCredential(t *testing.T) {
	const stored = "stored-token-3f9a61"
	for name, hostValue := range map[string]string{
		"host DEMO_TOKEN is empty": "",
		"host DEMO_TOKEN is stale": "stale-token-0b1c",
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("DEMO_TOKEN", hostValue)

			t.Run("go-plugin default env handling loses the stored value", func(t *testing.T) {
				cmd := exec.Command(testconnPath)
				cmd.Env = []string{"DEMO_TOKEN=" + stored}
				client := plugin.NewClient(&plugin.ClientConfig{
					HandshakeConfig:  wire.Handshake,
					VersionedPlugins: wire.VersionedPlugins(),
					Cmd:              cmd,
					AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
					SecureConfig:     &plugin.SecureConfig{Checksum: fileSum(t, testconnPath), Hash: sha256.New()},
					Logger:           hclog.NewNullLogger(),
				})
				defer client.Kill()
				rpc, err := client.Client()
				if err != nil {
					t.Fatal(err)
				}
				raw, err := rpc.Dispense(wire.PluginKey)
				if err != nil {
					t.Fatal(err)
				}
				var msgs []wire.Message
				err = raw.(wire.Connector).Run(context.Background(), runConfig(map[string]any{"mode": "env"}), func(m wire.Message) error {
					msgs = append(msgs, m)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				got := collectEnv(t, msgs)["DEMO_TOKEN"]
				if got.SHA256 == hexSum(stored) {
					t.Fatal("go-plugin's default env handling delivered the stored value; the regression test no longer reproduces the bug")
				}
				if got.SHA256 != hexSum(hostValue) {
					t.Errorf("child DEMO_TOKEN hash %s, want the host value's %s", got.SHA256, hexSum(hostValue))
				}
			})

			t.Run("launcher delivers the stored value", func(t *testing.T) {
				l, _ := testLauncher(t, Config{})
				env := BuildEnv(os.Environ(), EnvSpec{
					Allowlist: DefaultAllowlist, AuthRequired: []string{"DEMO_TOKEN"},
					Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": stored},
					ConnectionID: "conn-1", RunID: "run-1", Trigger: wire.TriggerScheduled,
				})
				spec := Spec{Name: "testconn", Path: testconnPath, SHA256: fileSum(t, testconnPath), Env: env, Secrets: []string{stored}}
				msgs, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "env"}))
				if err != nil {
					t.Fatal(err)
				}
				got := collectEnv(t, msgs)["DEMO_TOKEN"]
				if got.SHA256 != hexSum(stored) {
					t.Errorf("child DEMO_TOKEN hash %s, want the stored value's %s (host value's is %s)", got.SHA256, hexSum(stored), hexSum(hostValue))
				}
			})
		})
	}
}

// TestChildEnvironmentHoldsOnlyDesignSection3 plants secrets in the host
// environment and checks the child's whole environment: exactly the names
// BuildEnv produced plus go-plugin's handshake variables, with exactly the
// values BuildEnv produced, and none of the planted values anywhere.
func TestChildEnvironmentHoldsOnlyDesignSection3(t *testing.T) {
	planted := map[string]string{
		"AWS_SECRET_ACCESS_KEY":  "canary-aws-5e1d",
		"OTHER_CONNECTION_TOKEN": "canary-other-connection-77af",
		"CONNHOST_TOKEN":         "canary-operator-token-0c3e",
		"CONNHOST_KEK":           "canary-kek-91b2",
		"DEMO_TOKEN":             "canary-host-demo-token-4d4d",
	}
	for k, v := range planted {
		t.Setenv(k, v)
	}
	t.Setenv("API_BASE_URL", "https://api.example.test")
	t.Setenv("LANG", "C.UTF-8")
	const stored = "stored-demo-token-a8c4"
	env := BuildEnv(os.Environ(), EnvSpec{
		Allowlist: DefaultAllowlist, Passthrough: []string{"API_BASE_URL"}, AuthRequired: []string{"DEMO_TOKEN"},
		Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": stored},
		ConnectionID: "conn-1", RunID: "run-1", Trigger: wire.TriggerManual,
	})
	// go-plugin's own handshake variables, appended after ours.
	handshake := []string{wire.MagicCookieKey, "PLUGIN_MIN_PORT", "PLUGIN_MAX_PORT", "PLUGIN_PROTOCOL_VERSIONS", "PLUGIN_UNIX_SOCKET_DIR"}

	for name, tc := range map[string]struct {
		cfg   Config
		extra []string
	}{
		"with AutoMTLS":    {cfg: Config{}, extra: []string{"PLUGIN_CLIENT_CERT"}},
		"without AutoMTLS": {cfg: Config{DisableAutoMTLS: true}},
	} {
		t.Run(name, func(t *testing.T) {
			l, _ := testLauncher(t, tc.cfg)
			spec := Spec{Name: "testconn", Path: testconnPath, SHA256: fileSum(t, testconnPath), Env: env, Secrets: []string{stored}}
			msgs, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "env"}))
			if err != nil {
				t.Fatal(err)
			}
			got := collectEnv(t, msgs)
			var gotNames []string
			for n := range got {
				gotNames = append(gotNames, n)
			}
			wantNames := append(append(Names(env), handshake...), tc.extra...)
			sort.Strings(gotNames)
			sort.Strings(wantNames)
			if diff := cmp.Diff(wantNames, gotNames); diff != "" {
				t.Errorf("child env names (-want +got):\n%s", diff)
			}
			for _, kv := range env {
				n, v, _ := strings.Cut(kv, "=")
				if got[n].SHA256 != hexSum(v) {
					t.Errorf("child %s differs from the built value", n)
				}
			}
			for _, e := range got {
				for k, v := range planted {
					if e.SHA256 == hexSum(v) {
						t.Errorf("child variable %s holds the host's %s", e.Name, k)
					}
				}
			}
		})
	}
}

// TestLaunchFailuresAreTypedAndLeaveNoProcess covers every way a launch
// can go wrong: each yields its typed failure code, leaves nothing in the
// process table, and the launcher's next launch succeeds.
func TestLaunchFailuresAreTypedAndLeaveNoProcess(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "not-a-plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello from a shell script\nsleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	type tc struct {
		cfg       Config
		pre       string         // TESTCONN_PRE
		run       map[string]any // run config
		ctx       func() (context.Context, context.CancelFunc)
		timeout   time.Duration
		mutate    func(t *testing.T, s *Spec)
		code      failure.Code
		retryable bool
		msg       string // substring of the error
		spawned   int    // -1: may or may not have spawned
	}
	tests := map[string]tc{
		"connector crashes mid-run": {
			run: map[string]any{"mode": "crash"}, code: failure.ConnectorCrashed, retryable: true, msg: "exit status 2", spawned: 1,
		},
		"connector exits mid-run": {
			run: map[string]any{"mode": "exit"}, code: failure.ConnectorCrashed, retryable: true, msg: "exit status 7", spawned: 1,
		},
		"connector hangs past its deadline": {
			// Long enough for a loaded machine to start the child first.
			run: map[string]any{"mode": "hang"}, timeout: 5 * time.Second, code: failure.RunTimeout, retryable: true, spawned: 1,
		},
		"garbage on stdout before the handshake": {
			pre: "garbage", run: map[string]any{"mode": "records"}, code: failure.PluginHandshakeFailed,
			msg: "this is not a go-plugin handshake", spawned: 1,
		},
		"exits before the handshake": {
			pre: "exit", run: map[string]any{"mode": "records"}, code: failure.PluginHandshakeFailed, spawned: 1,
		},
		"hangs before the handshake": {
			cfg: Config{StartTimeout: time.Second}, pre: "hang", run: map[string]any{"mode": "records"},
			code: failure.PluginHandshakeFailed, retryable: true, spawned: 1,
		},
		"not a plugin": {
			run: map[string]any{"mode": "records"}, code: failure.PluginHandshakeFailed, msg: "hello from a shell script",
			mutate: func(t *testing.T, s *Spec) { s.Path, s.SHA256 = script, fileSum(t, script) },
		},
		"checksum mismatch at launch": {
			run: map[string]any{"mode": "records"}, code: failure.PluginChecksumMismatch, msg: "pinned",
			mutate: func(t *testing.T, s *Spec) { s.SHA256 = fileSum(t, script) },
		},
		"binary changed after cataloguing": {
			run: map[string]any{"mode": "records"}, code: failure.PluginChecksumMismatch, msg: "pinned",
			mutate: func(t *testing.T, s *Spec) {
				p := filepath.Join(t.TempDir(), "testconn")
				copyFile(t, testconnPath, p, 0o755)
				s.Path, s.SHA256 = p, fileSum(t, p)
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.Write([]byte("tampered"))
				f.Close()
			},
		},
		"binary removed after cataloguing": {
			run: map[string]any{"mode": "records"}, code: failure.PluginChecksumMismatch, msg: "cannot be verified",
			mutate: func(t *testing.T, s *Spec) { s.Path = filepath.Join(t.TempDir(), "gone") },
		},
		"connector rejects the credential": {
			run:  map[string]any{"mode": "fail", "code": "credential_rejected", "message": "401 from provider"},
			code: failure.CredentialRejected, msg: "401 from provider", spawned: 1,
		},
		"connector needs credentials": {
			run:  map[string]any{"mode": "fail", "code": "credentials_required", "message": "DEMO_TOKEN missing"},
			code: failure.CredentialsRequired, msg: "DEMO_TOKEN missing", spawned: 1,
		},
		"connector fails retryably": {
			run:  map[string]any{"mode": "fail", "code": "connector_failed", "message": "upstream 503", "retryable": true},
			code: failure.ConnectorFailed, retryable: true, msg: "upstream 503", spawned: 1,
		},
		"connector reports an unknown code": {
			run:  map[string]any{"mode": "fail", "code": "weird", "message": "odd"},
			code: failure.ConnectorFailed, msg: `unknown code "weird"`, spawned: 1,
		},
		"cancelled before the launch": {
			run: map[string]any{"mode": "records"}, code: failure.Cancelled, spawned: -1,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Short: it holds the plugin's Unix socket.
			runtime, err := os.MkdirTemp("", "lt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(runtime) })
			tc.cfg.TempDir = runtime
			l, logs := testLauncher(t, tc.cfg)
			spec, pidfile := testSpec(t)
			if tc.pre != "" {
				spec.Env = append(spec.Env, "TESTCONN_PRE="+tc.pre)
			}
			spec.Timeout = tc.timeout
			if tc.mutate != nil {
				tc.mutate(t, &spec)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()

			_, err = runCollect(ctx, l, spec, runConfig(tc.run))

			var fe *failure.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Run error %v (%T), want a *failure.Error", err, err)
			}
			if fe.Code != tc.code || fe.Retryable != tc.retryable {
				t.Errorf("Run error code %s retryable %v, want %s retryable %v (%v)", fe.Code, fe.Retryable, tc.code, tc.retryable, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Run error %q lacks %q", err, tc.msg)
			}
			pids := readPIDs(t, pidfile)
			if tc.spawned >= 0 && len(pids) != tc.spawned {
				t.Errorf("%d processes spawned, want %d", len(pids), tc.spawned)
			}
			assertNoSurvivors(t, pids)
			assertNoZombieChildren(t, pids)
			assertEmptyDir(t, runtime)

			// The host stays healthy: the same launcher launches again.
			next, nextPids := testSpec(t)
			msgs, err := runCollect(context.Background(), l, next, runConfig(map[string]any{"mode": "records", "n": 3}))
			if err != nil {
				t.Fatalf("next launch: %v\nlogs:\n%s", err, logs)
			}
			if n := countRecords(msgs); n != 3 {
				t.Errorf("next launch emitted %d records, want 3", n)
			}
			assertNoSurvivors(t, readPIDs(t, nextPids))
			assertEmptyDir(t, runtime)
		})
	}
}

func countRecords(msgs []wire.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Records)
	}
	return n
}

// TestCancelMidRunKillsProcessGroupIncludingGrandchild cancels a run while
// the plugin has a child of its own: both die, the cancel cause is kept,
// and the plugin ran in its own process group with /dev/null as stdin.
func TestCancelMidRunKillsProcessGroupIncludingGrandchild(t *testing.T) {
	t.Parallel()
	l, _ := testLauncher(t, Config{})
	spec, pidfile := testSpec(t)
	errShutdown := errors.New("host shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)

	var pids []pidEntry
	var stdin string
	err := l.Run(ctx, spec, runConfig(map[string]any{"mode": "grandchild"}), func(m wire.Message) error {
		pids = readPIDs(t, pidfile)
		if len(pids) > 0 {
			stdin, _ = os.Readlink("/proc/" + strconv.Itoa(pids[0].pid) + "/fd/0")
		}
		cancel(errShutdown)
		return nil
	})
	if !failure.Has(err, failure.Cancelled) {
		t.Fatalf("Run error %v, want code cancelled", err)
	}
	if !errors.Is(err, errShutdown) {
		t.Errorf("Run error %v does not carry the cancel cause", err)
	}
	if len(pids) != 2 {
		t.Fatalf("recorded %d pids, want the plugin and its grandchild", len(pids))
	}
	if pids[1].pgid != pids[0].pid {
		t.Errorf("grandchild in group %d, want the plugin's group %d", pids[1].pgid, pids[0].pid)
	}
	if stdin != "/dev/null" {
		t.Errorf("plugin stdin is %q, want /dev/null", stdin)
	}
	assertNoSurvivors(t, pids)
}

// TestHostCrashKillsPlugin SIGKILLs a host process in the middle of a run:
// the plugin dies with it (Pdeathsig) instead of outliving it.
func TestHostCrashKillsPlugin(t *testing.T) {
	t.Parallel()
	host, pidfile := startHelperHost(t)
	pids := readPIDs(t, pidfile)
	if len(pids) != 1 {
		t.Fatalf("recorded %d pids, want 1", len(pids))
	}
	if err := host.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	host.Wait()

	// The orphaned plugin is reaped by init, not by us: dead means gone or
	// a zombie.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, ok := readStat(pids[0].pid)
		if !ok || st.pgid != pids[0].pgid || st.state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(-pids[0].pgid, syscall.SIGKILL)
			t.Fatalf("plugin pid %d outlived its host (state %c)", st.pid, st.state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEmitErrorStopsTheRun checks that the host's own error from emit ends
// the run, comes back unchanged, and kills the child.
func TestEmitErrorStopsTheRun(t *testing.T) {
	t.Parallel()
	l, _ := testLauncher(t, Config{})
	spec, pidfile := testSpec(t)
	errStore := errors.New("store is full")
	calls := 0
	err := l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "records", "n": 1000}), func(wire.Message) error {
		calls++
		return errStore
	})
	if err != errStore {
		t.Errorf("Run error %v, want the emit error unchanged", err)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing, want 1", calls)
	}
	assertNoSurvivors(t, readPIDs(t, pidfile))
}

// TestSecretsNeverReachHostLogsOrErrors injects canary secrets into runs
// whose connector prints them every way it can — hclog JSON (message, key,
// value, logger name), log.Printf, raw stderr, the redirected os.Stdout and
// os.Stderr, a progress message, a failure message, a Check identity, and
// stdout and stderr before the handshake — and checks that no form of any
// canary reaches the host log or a returned error or value.
func TestSecretsNeverReachHostLogsOrErrors(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		"plain":      "canary-9f2e61d04b",
		"special":    `sp"ecial<&>canary-\x`,
		"multi-line": "-----BEGIN CANARY-----\nline-one-canary-3e\nline-two-canary-7a\n-----END CANARY-----",
	}
	for name, secret := range secrets {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			forms := append([]string{secret}, jsonForms(secret)...)
			for _, line := range strings.Split(secret, "\n") {
				forms = append(forms, line)
			}
			assertClean := func(t *testing.T, what, s string) {
				t.Helper()
				for _, f := range forms {
					if strings.Contains(s, f) {
						t.Errorf("%s holds the secret (form %q):\n%s", what, f, s)
					}
				}
			}
			withSecret := func(t *testing.T, env ...string) Spec {
				spec, _ := testSpec(t, append([]string{"CANARY=" + secret, "DEMO_TOKEN=" + secret, "TESTCONN_SECRET_ENV=CANARY"}, env...)...)
				spec.Secrets = []string{secret}
				return spec
			}

			t.Run("logged by the connector", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				msgs, err := runCollect(context.Background(), l, withSecret(t), runConfig(map[string]any{"mode": "log", "secret_env": "CANARY"}))
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				out := logs.String()
				assertClean(t, "host log", out)
				for _, want := range []string{
					"hclog message with [REDACTED]", "log.Printf [REDACTED]", "raw stderr [REDACTED]",
					"prefixed [REDACTED]", "long line xxx", truncatedMark, "named after the secret",
				} {
					if !strings.Contains(out, want) {
						t.Errorf("host log lacks %q; the line did not arrive:\n%s", want, out)
					}
				}
				var progress string
				for _, m := range msgs {
					if m.Kind == wire.KindProgress {
						progress = m.Progress.Message
					}
				}
				if progress != "progress [REDACTED]" {
					t.Errorf("progress message %q, want it redacted", progress)
				}
			})

			t.Run("printed before the handshake", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				_, err := runCollect(context.Background(), l, withSecret(t, "TESTCONN_PRE=secret"), runConfig(map[string]any{"mode": "records"}))
				if !failure.Has(err, failure.PluginHandshakeFailed) {
					t.Fatalf("Run error %v, want plugin_handshake_failed", err)
				}
				assertClean(t, "error", err.Error())
				if u := errors.Unwrap(err); u != nil {
					assertClean(t, "error cause", u.Error())
				}
				if !strings.Contains(err.Error(), "leaking before the handshake: [REDACTED]") {
					t.Errorf("error %q does not show the redacted line", err)
				}
				assertClean(t, "host log", logs.String())
			})

			t.Run("on stderr before serving", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				if _, err := runCollect(context.Background(), l, withSecret(t, "TESTCONN_PRE=stderr"), runConfig(map[string]any{"mode": "records", "n": 1})); err != nil {
					t.Fatal(err)
				}
				out := logs.String()
				assertClean(t, "host log", out)
				if !strings.Contains(out, "stderr before the handshake: [REDACTED]") {
					t.Errorf("host log lacks the redacted line:\n%s", out)
				}
			})

			t.Run("in a failure message", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				_, err := runCollect(context.Background(), l, withSecret(t), runConfig(map[string]any{"mode": "fail", "code": "credential_rejected", "message": "token " + secret + " refused"}))
				if !failure.Has(err, failure.CredentialRejected) {
					t.Fatalf("Run error %v, want credential_rejected", err)
				}
				assertClean(t, "error", err.Error())
				var wf *wire.Failure
				if !errors.As(err, &wf) {
					t.Fatalf("error %v does not carry the connector's failure", err)
				}
				assertClean(t, "connector failure", wf.Message)
				assertClean(t, "host log", logs.String())
			})

			t.Run("in a check identity", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				res, err := l.Check(context.Background(), withSecret(t), wire.CheckRequest{ConnectionID: "conn-1"})
				if err != nil {
					t.Fatal(err)
				}
				if !res.Valid || res.Identity != "token [REDACTED]" {
					t.Errorf("Check = %+v, want valid with a redacted identity", res)
				}
				assertClean(t, "host log", logs.String())
			})
		})
	}
}

// A connector that prints its secret encoded leaks nothing either: the
// encoded text (any 8 characters of it) reaches no log line, error,
// failure message, progress or interaction message.
func TestEncodedSecretsNeverReachHostLogsOrErrors(t *testing.T) {
	t.Parallel()
	const secret = "canary/9f2e+61d04b?"
	for _, how := range []string{"base64", "base64url", "base64-1", "base64-2", "hex", "HEX", "url"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			spec, _ := testSpec(t, "CANARY="+secret, "DEMO_TOKEN="+secret)
			spec.Secrets = []string{secret}
			// leakOf returns what the connector printed, which it also
			// sent as a record (records are data, not redacted).
			leakOf := func(t *testing.T, msgs []wire.Message) string {
				t.Helper()
				for _, m := range msgs {
					for _, rec := range m.Records {
						var v struct{ Leak string }
						if json.Unmarshal(rec.Data, &v) == nil && v.Leak != "" {
							return v.Leak
						}
					}
				}
				t.Fatal("the connector sent no leak record")
				return ""
			}
			assertClean := func(t *testing.T, leak, what, s string) {
				t.Helper()
				for i := 0; i+8 <= len(leak); i++ {
					if strings.Contains(s, leak[i:i+8]) {
						t.Errorf("%s holds %q of the encoded secret %q:\n%s", what, leak[i:i+8], leak, s)
						return
					}
				}
			}

			t.Run("logged", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				msgs, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "log", "secret_env": "CANARY", "encode": how}))
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				leak := leakOf(t, msgs)
				if strings.Contains(leak, secret) || len(leak) < 8 {
					t.Fatalf("leak %q is not an encoding", leak)
				}
				out := logs.String()
				assertClean(t, leak, "host log", out)
				if !strings.Contains(out, "hclog message with ") || !strings.Contains(out, "[REDACTED]") {
					t.Errorf("host log lacks the redacted line:\n%s", out)
				}
				var said []string
				for _, m := range msgs {
					switch m.Kind {
					case wire.KindProgress:
						said = append(said, m.Progress.Stream, m.Progress.Message)
					case wire.KindInteraction:
						said = append(said, m.Interaction.Kind)
						said = append(said, m.Interaction.Missing...)
					}
				}
				if len(said) != 4 {
					t.Fatalf("progress and interaction said %q, want 4 texts", said)
				}
				for _, text := range said {
					assertClean(t, leak, "progress or interaction", text)
				}
			})

			t.Run("in a failure message", func(t *testing.T) {
				l, logs := testLauncher(t, Config{})
				msgs, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{
					"mode": "fail", "code": "connector_failed", "message": "upstream said $SECRET", "secret_env": "CANARY", "encode": how}))
				if !failure.Has(err, failure.ConnectorFailed) {
					t.Fatalf("Run error %v, want connector_failed", err)
				}
				leak := leakOf(t, msgs)
				assertClean(t, leak, "error", err.Error())
				var wf *wire.Failure
				if !errors.As(err, &wf) {
					t.Fatalf("error %v does not carry the connector's failure", err)
				}
				assertClean(t, leak, "connector failure", wf.Message)
				if !strings.HasPrefix(wf.Message, "upstream said ") {
					t.Errorf("failure message %q lost the connector's words", wf.Message)
				}
				assertClean(t, leak, "host log", logs.String())
			})
		})
	}
}

// TestDescribeRunsWithAllowlistOnly describes the test plugin twice (a
// fresh hash per launch) with a host environment holding a secret.
func TestDescribeRunsWithAllowlistOnly(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pids")
	l, _ := testLauncher(t, Config{
		Allowlist: []string{"PATH", "TESTCONN_PIDFILE"},
		Environ: func() []string {
			return []string{"PATH=/usr/bin", "TESTCONN_PIDFILE=" + pidfile, "DEMO_TOKEN=host-secret"}
		},
	})
	want := manifest.Manifest{
		ConnectorKey: "testconn",
		Version:      "1.0.0",
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"DEMO_TOKEN"}},
		Streams:      []manifest.Stream{{Name: "env", KeyFields: []string{"name"}}, {Name: "events", KeyFields: []string{"id"}}},
	}
	for i := range 2 {
		got, err := l.Describe(context.Background(), pinned(t, testconnPath))
		if err != nil {
			t.Fatalf("Describe #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Describe #%d (-want +got):\n%s", i+1, diff)
		}
	}
	pids := readPIDs(t, pidfile)
	if len(pids) != 2 {
		t.Errorf("%d launches recorded, want 2 (the allowlisted TESTCONN_PIDFILE reached the child)", len(pids))
	}
	for _, p := range pids {
		assertNoSurvivors(t, []pidEntry{p})
	}
}

func TestCheckReportsInvalidCredential(t *testing.T) {
	t.Parallel()
	l, _ := testLauncher(t, Config{})
	spec, _ := testSpec(t, "DEMO_TOKEN=")
	res, err := l.Check(context.Background(), spec, wire.CheckRequest{ConnectionID: "conn-1"})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "DEMO_TOKEN is empty"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Check (-want +got):\n%s", diff)
	}
}

// TestObserveStartReportsEachSuccessfulStart: every child that completes
// the handshake — for Run, Check and Describe — is reported once, with its
// connector name; a start that fails is not.
func TestObserveStartReportsEachSuccessfulStart(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		starts []string
	)
	l, _ := testLauncher(t, Config{ObserveStart: func(connector string, d time.Duration) {
		if d <= 0 {
			t.Errorf("start of %s took %v", connector, d)
		}
		mu.Lock()
		starts = append(starts, connector)
		mu.Unlock()
	}})
	spec, _ := testSpec(t)
	ctx := context.Background()
	if err := l.Run(ctx, spec, runConfig(map[string]any{"mode": "records", "n": 3}), func(wire.Message) error { return nil }); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := l.Check(ctx, spec, wire.CheckRequest{ConnectionID: "conn-1"}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := l.Describe(ctx, pinned(t, spec.Path)); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	bad := spec
	bad.SHA256 = make([]byte, len(spec.SHA256)) // a checksum the binary does not have
	if err := l.Run(ctx, bad, runConfig(map[string]any{"mode": "records"}), func(wire.Message) error { return nil }); err == nil {
		t.Fatal("Run with a wrong checksum succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"testconn", "testconn", "testconn"}; !slices.Equal(starts, want) {
		t.Errorf("starts reported %q, want %q", starts, want)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		cfg     Config
		wantErr bool
	}{
		"zero value":             {cfg: Config{}},
		"negative start timeout": {cfg: Config{StartTimeout: -1}, wantErr: true},
		"negative kill timeout":  {cfg: Config{KillTimeout: -1}, wantErr: true},
		"negative call timeout":  {cfg: Config{CallTimeout: -1}, wantErr: true},
		"negative run timeout":   {cfg: Config{RunTimeout: -1}, wantErr: true},
		"bad allowlist name":     {cfg: Config{Allowlist: []string{"A=B"}}, wantErr: true},
		"relative temp dir":      {cfg: Config{TempDir: "tmp"}, wantErr: true},
		"absolute temp dir":      {cfg: Config{TempDir: "/tmp"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if _, nerr := New(tc.cfg); (nerr != nil) != tc.wantErr {
				t.Errorf("New() = %v, wantErr %v", nerr, tc.wantErr)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	sum := make([]byte, 32)
	tests := map[string]struct {
		spec    Spec
		wantErr bool
	}{
		"ok":                {spec: Spec{Path: "/p", SHA256: sum, Env: []string{"A=1", "B="}}},
		"no path":           {spec: Spec{SHA256: sum}, wantErr: true},
		"short checksum":    {spec: Spec{Path: "/p", SHA256: sum[:16]}, wantErr: true},
		"negative timeout":  {spec: Spec{Path: "/p", SHA256: sum, Timeout: -1}, wantErr: true},
		"malformed env":     {spec: Spec{Path: "/p", SHA256: sum, Env: []string{"secret-without-name"}}, wantErr: true},
		"env with no name":  {spec: Spec{Path: "/p", SHA256: sum, Env: []string{"=x"}}, wantErr: true},
		"env with NUL name": {spec: Spec{Path: "/p", SHA256: sum, Env: []string{"A\x00=x"}}, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.spec.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Errorf("error %v does not wrap ErrInvalidSpec", err)
				}
				if strings.Contains(err.Error(), "secret-without-name") {
					t.Errorf("error %q echoes an env entry", err)
				}
			}
		})
	}
}

// assertEmptyDir: a launch, however it ended, leaves nothing in the
// launcher's TempDir (its socket dir and binary copy are removed).
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left in the launcher's TempDir: %v", names)
	}
}
