package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/cli"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
)

// realKeysets runs keyset init with the real server.InitKeyset and the
// process environment.
func realKeysets(rt *cli.Runtime) {
	rt.InitKeyset = server.InitKeyset
	rt.LookupEnv = os.LookupEnv
}

// TestKeysetInitGeneratesKEKFile: without a KEK source, init generates a
// 0600 KEK file in the data dir, creates an encrypted keyset under it,
// prints where both are, and never prints the KEK.
func TestKeysetInitGeneratesKEKFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var")
	res := runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	kekPath := filepath.Join(dir, cli.DefaultKEKFile)
	kek, err := os.ReadFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kekPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("KEK file mode %v", fi.Mode().Perm())
	}
	if strings.Contains(res.stdout+res.stderr, strings.TrimSpace(string(kek))) {
		t.Error("the KEK was printed without --print-kek")
	}
	for _, want := range []string{filepath.Join(dir, server.KeysetFile), "encrypted:", "yes", "--kek-file " + kekPath} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	if !strings.Contains(res.stderr, "warning: the KEK file is inside the data dir") {
		t.Errorf("no warning about the KEK's place:\n%s", res.stderr)
	}
	ks, err := keysets.Load(context.Background(), keysets.Config{Path: filepath.Join(dir, server.KeysetFile), KEK: keysets.KEKFromFile(kekPath)})
	if err != nil {
		t.Fatalf("the keyset does not load under the generated KEK: %v", err)
	}
	if !ks.Info().Encrypted {
		t.Error("keyset not encrypted")
	}

	again := runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir)
	if again.code != cli.ExitError || !strings.HasPrefix(again.stderr, "error: keyset_exists: a keyset already exists") {
		t.Errorf("second init: exit %d, stderr %q", again.code, again.stderr)
	}
}

// TestKeysetInitPrintKEK: --print-kek prints a generated KEK, once, and
// -o json reports the same.
func TestKeysetInitPrintKEK(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var")
	kekPath := filepath.Join(t.TempDir(), "secrets", "kek")
	res := runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir, "--kek-file", kekPath, "--print-kek", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var out struct {
		Keyset       string `json:"keyset"`
		KEKFile      string `json:"kek_file"`
		KEKGenerated bool   `json:"kek_generated"`
		KEK          string `json:"kek"`
		Info         struct {
			Encrypted bool   `json:"encrypted"`
			KEK       string `json:"kek"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	kek, _ := os.ReadFile(kekPath)
	if out.KEK == "" || out.KEK != strings.TrimSpace(string(kek)) || !out.KEKGenerated || out.KEKFile != kekPath {
		t.Errorf("output %+v does not report the generated KEK file", out)
	}
	if !out.Info.Encrypted || out.Info.KEK != keysets.KEKKindFile {
		t.Errorf("info %+v", out.Info)
	}
	if strings.Contains(res.stderr, "inside the data dir") {
		t.Error("warned about a KEK outside the data dir")
	}

	// An existing KEK file is used, and never printed.
	dir2 := filepath.Join(t.TempDir(), "var")
	res = runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir2, "--kek-file", kekPath, "--print-kek")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if strings.Contains(res.stdout, out.KEK) {
		t.Error("printed a KEK it did not generate")
	}
}

// TestKeysetInitEnv uses a KEK from the environment (not parallel: it sets
// a process variable, as keysets reads the real environment).
func TestKeysetInitEnv(t *testing.T) {
	const name = "CONNHOST_TEST_KEK_INIT"
	dir := filepath.Join(t.TempDir(), "var")
	t.Setenv(name, "")
	res := runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir, "--kek-env", name)
	if res.code != cli.ExitUsage || !strings.Contains(res.stderr, name+" is not set") {
		t.Fatalf("unset variable: exit %d, stderr %q", res.code, res.stderr)
	}
	res = runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir, "--kek-env", name, "--print-kek", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var out struct {
		KEK string `json:"kek"`
	}
	_ = json.Unmarshal([]byte(res.stdout), &out)
	if out.KEK == "" {
		t.Fatalf("no KEK printed: %s", res.stdout)
	}
	if !strings.Contains(res.stderr, "/proc/<pid>/environ") || !strings.Contains(res.stderr, "--kek-file") {
		t.Errorf("no advice against the env KEK: %q", res.stderr)
	}
	t.Setenv(name, out.KEK)
	if _, err := keysets.Load(context.Background(), keysets.Config{Path: filepath.Join(dir, server.KeysetFile), KEK: keysets.KEKFromEnv(name)}); err != nil {
		t.Errorf("keyset does not load under the printed KEK: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, cli.DefaultKEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a KEK file was written for an env KEK")
	}
}

// TestKeysetInitFailureRemovesGeneratedKEK and rejects two sources.
func TestKeysetInitFailure(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var")
	res := runCLI(t, nil, options{rt: func(rt *cli.Runtime) {
		rt.InitKeyset = func(context.Context, string, keysets.Source, hclog.Logger) (keysets.Info, error) {
			return keysets.Info{}, errors.New("disk full")
		}
	}}, "keyset", "init", "--data-dir", dir)
	if res.code != cli.ExitError || res.stderr != "error: local_failure: disk full\n" {
		t.Errorf("exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, cli.DefaultKEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("the generated KEK file was left behind")
	}
	res = runCLI(t, nil, options{}, "keyset", "init", "--kek-file", "a", "--kms-uri", "b://c")
	if res.code != cli.ExitUsage {
		t.Errorf("two sources: exit %d", res.code)
	}
}

// TestKeysetDisableEnable: disable and enable go to the host's key routes,
// print the key's new status, pass typed refusals through (exit 1), and
// refuse a KEY_ID that is not a key id before calling anything (exit 2).
func TestKeysetDisableEnable(t *testing.T) {
	t.Parallel()
	const changed = `{"key_id":7,"changed":true,"quarantined_credentials":1,"keyset":{"primary_key_id":9,"encrypted":true,"kek":"file",
		"keys":[{"id":7,"status":"DISABLED","type":"AES256_GCM","primary":false},{"id":9,"status":"ENABLED","type":"AES256_GCM","primary":true}]}}`
	routes := map[string][]reply{
		"POST /v1/keyset/keys/7/disable": {{body: changed}},
		"POST /v1/keyset/keys/8/disable": {{status: 409, body: `{"error":{"code":"key_in_use","message":"key 8 still seals 3 credential(s) (2 active, 1 revoked): run ` + "`connhost keyset rewrap`" + `, which moves them to the primary key, then disable it"}}`}},
		"POST /v1/keyset/keys/9/disable": {{status: 409, body: `{"error":{"code":"key_is_primary","message":"key 9 is the primary key"}}`}},
		"POST /v1/keyset/keys/7/enable":  {{body: strings.Replace(changed, `"DISABLED"`, `"ENABLED"`, 1)}},
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
		path   string
	}{
		{name: "disable", args: []string{"keyset", "disable", "7"}, path: "/v1/keyset/keys/7/disable",
			stdout: []string{"key id:", "7", "status:", "DISABLED", "changed:", "yes", "quarantined credentials under it:", "1"}},
		{name: "disable json", args: []string{"keyset", "disable", "7", "-o", "json"}, path: "/v1/keyset/keys/7/disable",
			stdout: []string{`"key_id": 7`, `"changed": true`, `"quarantined_credentials": 1`, `"primary_key_id": 9`}},
		{name: "enable", args: []string{"keyset", "enable", "7"}, path: "/v1/keyset/keys/7/enable",
			stdout: []string{"status:", "ENABLED"}},
		{name: "in use", args: []string{"keyset", "disable", "8"}, code: cli.ExitError, path: "/v1/keyset/keys/8/disable",
			stderr: "error: key_in_use: key 8 still seals 3 credential(s) (2 active, 1 revoked)"},
		{name: "primary", args: []string{"keyset", "disable", "9"}, code: cli.ExitError, path: "/v1/keyset/keys/9/disable",
			stderr: "error: key_is_primary: key 9 is the primary key"},
		{name: "not a key id", args: []string{"keyset", "disable", "old"}, code: cli.ExitUsage,
			stderr: `error: usage: KEY_ID must be a key id`},
		{name: "too large", args: []string{"keyset", "enable", "4294967296"}, code: cli.ExitUsage,
			stderr: `error: usage: KEY_ID must be a key id`},
		{name: "no id", args: []string{"keyset", "disable"}, code: cli.ExitUsage,
			stderr: `error: usage: connhost keyset disable takes 1 argument(s): KEY_ID (got 0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(routes)
			res := runCLI(t, api, options{}, tt.args...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", res.code, tt.code, res.stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
				}
			}
			if !strings.HasPrefix(res.stderr, tt.stderr) {
				t.Errorf("stderr %q, want prefix %q", res.stderr, tt.stderr)
			}
			calls := api.Calls()
			switch {
			case tt.path == "" && len(calls) != 0:
				t.Errorf("called the API: %+v", calls)
			case tt.path != "" && (len(calls) != 1 || calls[0].Method != "POST" || calls[0].Path != tt.path):
				t.Errorf("calls %+v, want POST %s", calls, tt.path)
			}
		})
	}
}

// TestKeysetEncrypt: encrypt refuses without a KEK (kek_required), turns
// the dev keyset into one under a generated 0600 KEK file, says how to
// serve it, never prints the KEK, and refuses a second time
// (keyset_encrypted).
func TestKeysetEncrypt(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "var")
	ctx := context.Background()
	if _, err := server.InitKeyset(ctx, dir, keysets.Cleartext(), hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	kekPath := filepath.Join(t.TempDir(), "secrets", "kek")

	res := runCLI(t, nil, options{}, "keyset", "encrypt", "--data-dir", dir)
	if res.code != cli.ExitError || !strings.HasPrefix(res.stderr, "error: kek_required: no KEK given: pass --kek-file FILE") {
		t.Errorf("no KEK: exit %d, stderr %q", res.code, res.stderr)
	}
	res = runCLI(t, nil, options{env: map[string]string{"CONNHOST_KEK": "x"}}, "keyset", "encrypt", "--data-dir", dir, "--kek-file", kekPath)
	if res.code != cli.ExitUsage || !strings.Contains(res.stderr, "more than one KEK source") {
		t.Errorf("two KEKs: exit %d, stderr %q", res.code, res.stderr)
	}
	res = runCLI(t, nil, options{}, "keyset", "encrypt", "--data-dir", filepath.Join(t.TempDir(), "none"), "--kek-file", kekPath)
	if res.code != cli.ExitError || !strings.HasPrefix(res.stderr, "error: keyset_not_found: no keyset at") {
		t.Errorf("no keyset: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(kekPath); !errors.Is(err, os.ErrNotExist) {
		t.Error("a KEK file was generated for a data dir without a keyset")
	}

	res = runCLI(t, nil, options{}, "keyset", "encrypt", "--data-dir", dir, "--kek-file", kekPath, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var out struct {
		Keyset       string `json:"keyset"`
		KEKFile      string `json:"kek_file"`
		KEKGenerated bool   `json:"kek_generated"`
		Serve        string `json:"serve"`
		Info         struct {
			Encrypted bool   `json:"encrypted"`
			KEK       string `json:"kek"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if !out.Info.Encrypted || out.Info.KEK != keysets.KEKKindFile || !out.KEKGenerated || out.KEKFile != kekPath ||
		out.Serve != "connhost serve --data-dir "+dir+" --kek-file "+kekPath {
		t.Errorf("output %+v", out)
	}
	kek, err := os.ReadFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(kekPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("KEK file mode %v", fi.Mode().Perm())
	}
	if strings.Contains(res.stdout+res.stderr, strings.TrimSpace(string(kek))) {
		t.Error("the KEK was printed")
	}
	if _, err := keysets.Load(ctx, keysets.Config{Path: filepath.Join(dir, server.KeysetFile), KEK: keysets.KEKFromFile(kekPath)}); err != nil {
		t.Errorf("the keyset does not load under the KEK: %v", err)
	}

	res = runCLI(t, nil, options{}, "keyset", "encrypt", "--data-dir", dir, "--kek-file", kekPath)
	if res.code != cli.ExitError || !strings.HasPrefix(res.stderr, "error: keyset_encrypted: the keyset "+filepath.Join(dir, server.KeysetFile)+" is encrypted already") {
		t.Errorf("second encrypt: exit %d, stderr %q", res.code, res.stderr)
	}
}
