package cli_test

import (
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/cli"
)

// The CLI talks to an https:// host whose certificate it trusts through
// --ca-file / CONNHOST_CA_FILE, and says what to do when it does not.
func TestHTTPSWithCAFile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(newFakeAPI(map[string][]reply{"GET /v1/connectors": {{body: list(connectorJSON)}}}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr := "http://" + strings.TrimPrefix(srv.URL, "https://")
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{name: "env CA file", env: map[string]string{cli.EnvAddr: srv.URL, cli.EnvCAFile: ca},
			args: []string{"connector", "list"}, stdout: "demo"},
		{name: "flag CA file", env: map[string]string{cli.EnvAddr: srv.URL},
			args: []string{"connector", "list", "--ca-file", ca}, stdout: "demo"},
		{name: "no CA file", env: map[string]string{cli.EnvAddr: srv.URL},
			args: []string{"connector", "list"}, code: 1,
			stderr: []string{"TLS certificate is not trusted", "--ca-file or CONNHOST_CA_FILE"}},
		{name: "CA file missing", env: map[string]string{cli.EnvAddr: srv.URL},
			args: []string{"connector", "list", "--ca-file", filepath.Join(dir, "nope.pem")}, code: 2,
			stderr: []string{"--ca-file", "nope.pem"}},
		{name: "CA file not PEM", env: map[string]string{cli.EnvAddr: srv.URL, cli.EnvCAFile: notPEM},
			args: []string{"connector", "list"}, code: 2, stderr: []string{"--ca-file", "holds no PEM certificate"}},
		{name: "http to an https host", env: map[string]string{cli.EnvAddr: httpAddr},
			args: []string{"connector", "list"}, code: 1, stderr: []string{"the host serves https", "use https://"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, nil, options{env: tc.env}, tc.args...)
			if res.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", res.code, tc.code, res.stderr)
			}
			if !strings.Contains(res.stdout, tc.stdout) {
				t.Errorf("stdout %q lacks %q", res.stdout, tc.stdout)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(res.stderr, s) {
					t.Errorf("stderr %q lacks %q", res.stderr, s)
				}
			}
		})
	}
}
