//go:build unix

package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/connhost/connhost/host/cli"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
)

// TestKeysetInitResolvesKEKAsServe: with CONNHOST_KEK exported, keyset
// init uses it (as serve will), generates no KEK file and prints a serve
// line that needs no other flag; the variable and --kek-file together are
// refused, as serve refuses them. (Not parallel: it sets CONNHOST_KEK,
// which keysets reads from the process environment.)
func TestKeysetInitResolvesKEKAsServe(t *testing.T) {
	t.Setenv(server.DefaultKEKEnv, keysets.GenerateKEK())
	dir := filepath.Join(t.TempDir(), "var")
	res := runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var out struct {
		KEKSource    string `json:"kek_source"`
		KEKGenerated bool   `json:"kek_generated"`
		Serve        string `json:"serve"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	if out.KEKSource != "env "+server.DefaultKEKEnv || out.KEKGenerated || out.Serve != "connhost serve --data-dir "+dir {
		t.Errorf("init under an exported %s = %+v", server.DefaultKEKEnv, out)
	}
	if _, err := os.Stat(filepath.Join(dir, cli.DefaultKEKFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a KEK file was generated although the KEK variable is set")
	}
	if _, err := keysets.Load(context.Background(), keysets.Config{Path: filepath.Join(dir, server.KeysetFile),
		KEK: keysets.KEKFromEnv(server.DefaultKEKEnv)}); err != nil {
		t.Errorf("the keyset does not load under the variable: %v", err)
	}

	dir2 := filepath.Join(t.TempDir(), "var")
	kek := filepath.Join(t.TempDir(), "kek")
	res = runCLI(t, nil, options{rt: realKeysets}, "keyset", "init", "--data-dir", dir2, "--kek-file", kek)
	if res.code != cli.ExitUsage || !strings.Contains(res.stderr, "more than one KEK source is given (env CONNHOST_KEK, file "+kek+")") ||
		!strings.Contains(res.stderr, "unset it") {
		t.Errorf("variable and --kek-file: exit %d, stderr %q", res.code, res.stderr)
	}
	for _, p := range []string{kek, filepath.Join(dir2, server.KeysetFile)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused init left %s", p)
		}
	}
}

// TestKeysetEncryptWhileServing: encrypt on a data dir a host holds is
// refused with its own code, host_running.
func TestKeysetEncryptWhileServing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := server.InitKeyset(context.Background(), dir, keysets.Cleartext(), hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, server.LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	kek := filepath.Join(t.TempDir(), "kek")
	res := runCLI(t, nil, options{}, "keyset", "encrypt", "--data-dir", dir, "--kek-file", kek, "-o", "json")
	var out cli.JSONError
	_ = json.Unmarshal([]byte(res.stdout), &out)
	if res.code != cli.ExitError || out.Error.Code != cli.CodeHostRunning || !strings.Contains(out.Error.Message, "a host is serving "+dir) {
		t.Errorf("encrypt while serving: exit %d, stdout %s", res.code, res.stdout)
	}
	if _, err := os.Stat(kek); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused encrypt left a generated KEK file")
	}
}

// TestKeysetInitKEKRefusals: a KEK file that is not a KEK, or that group
// or others may read, is refused with its own code, and no keyset is made.
func TestKeysetInitKEKRefusals(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		content string
		mode    os.FileMode
		code    string
	}{
		"not a KEK":         {"not base64 of 32 bytes\n", 0o600, cli.CodeKEKUnusable},
		"readable by group": {keysets.GenerateKEK() + "\n", 0o640, cli.CodeInsecureFile},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "var")
			kek := filepath.Join(t.TempDir(), "kek")
			if err := os.WriteFile(kek, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(kek, tc.mode); err != nil {
				t.Fatal(err)
			}
			res := runCLI(t, nil, options{rt: realKeysets, env: map[string]string{server.DefaultKEKEnv: ""}},
				"keyset", "init", "--data-dir", dir, "--kek-file", kek)
			if res.code != cli.ExitError || !strings.HasPrefix(res.stderr, "error: "+tc.code+": ") || strings.Contains(res.stderr, "keysets:") {
				t.Errorf("exit %d, stderr %q, want code %s", res.code, res.stderr, tc.code)
			}
			if _, err := os.Stat(filepath.Join(dir, server.KeysetFile)); !errors.Is(err, os.ErrNotExist) {
				t.Error("a keyset was made under a refused KEK")
			}
		})
	}
}
