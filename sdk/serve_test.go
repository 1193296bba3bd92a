package sdk_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/internal/testconn"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
)

// serveEnv makes the test binary, re-executed, serve a connector instead
// of running tests: the subprocess tests below exercise sdk.Serve itself.
const serveEnv = "SDK_TEST_SERVE"

func TestMain(m *testing.M) {
	switch os.Getenv(serveEnv) {
	case "":
		os.Exit(m.Run())
	case "probe":
		sdk.Serve(testconn.Probe{})
	case "url-key":
		m := testconn.Probe{}.Manifest()
		m.ConnectorKey = "https://example.com/probe"
		sdk.Serve(&fake{m: m})
	case "bad-schedule":
		m := testconn.Probe{}.Manifest()
		m.DefaultSchedule.Spec = "every five minutes"
		sdk.Serve(&fake{m: m})
	case "nil":
		sdk.Serve(nil)
	}
	os.Exit(0)
}

func TestServeRefusesAnInvalidManifest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role string
		want string
	}{
		{"url-key", `manifest is invalid: manifest: invalid connector_key: "https://example.com/probe" looks like a URL`},
		{"bad-schedule", `manifest is invalid: manifest: invalid default_schedule.spec: manifest: invalid schedule spec: "every five minutes": want five cron fields`},
		{"nil", "sdk.Serve: nil Connector"},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0])
			// With the handshake cookie go-plugin would serve: only the
			// manifest check stands in the way.
			cmd.Env = []string{serveEnv + "=" + tt.role, wire.MagicCookieKey + "=" + wire.MagicCookieValue}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output = %q, want it to contain %q", out, tt.want)
			}
		})
	}
}

// TestServeAsPlugin runs the test binary as a real plugin: Serve's log
// lines must reach the host's logger through go-plugin (so they go to the
// real stderr, not go-plugin's stdio pipe), with the secret redacted.
func TestServeAsPlugin(t *testing.T) {
	t.Parallel()
	logs := &sdktest.LogBuffer{}
	res := sdktest.RunPlugin(t, os.Args[0], sdktest.Options{
		Config: testconn.Config{Records: 3, Checkpoint: true, Log: "hello from the plugin"},
		Env: map[string]string{
			serveEnv:          "probe",
			testconn.TokenEnv: secret,
			testconn.UserEnv:  "ada",
		},
		LogOutput: logs,
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if diff := cmp.Diff([]string{`{"n":0}`, `{"n":1}`, `{"n":2}`}, dataOf(res.Records)); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]byte{[]byte(`{"n":3}`)}, res.Checkpoints); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	got := logs.String()
	for _, want := range []string{"hello from the plugin", "run_id=" + sdktest.DefaultRunID, "token=[REDACTED]"} {
		if !strings.Contains(got, want) {
			t.Errorf("host log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, secret) {
		t.Errorf("host log holds the secret:\n%s", got)
	}
}

func TestServeDescribe(t *testing.T) {
	t.Parallel()
	got := sdktest.Describe(t, serveBinary(t))
	if diff := cmp.Diff(testconn.Probe{}.Manifest(), got); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
	if err := got.Validate(manifest.CheckSchedule); err != nil {
		t.Error(err)
	}
}

// serveBinary returns a copy of the test binary that serves the probe
// whatever its environment, for helpers (Describe) that take no Env.
func serveBinary(t *testing.T) string {
	t.Helper()
	script := t.TempDir() + "/probe"
	body := "#!/bin/sh\n" + serveEnv + "=probe exec '" + os.Args[0] + "'\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

func dataOf(recs []wire.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, string(r.Data))
	}
	return out
}
