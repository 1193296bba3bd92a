package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestConnectorInit: connector init writes a connector module, replacing
// the SDK with the checkout's sdk/ (found from the working directory), and
// refuses bad input with invalid_input and exit 2, writing nothing. That
// what it writes builds and passes its tests is host/scaffold's
// TestWrittenConnectorBuildsAndPasses.
func TestConnectorInit(t *testing.T) {
	t.Parallel()
	sdk, err := filepath.Abs(filepath.Join("..", "..", "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "tickets")
		res := runCLI(t, nil, options{}, "connector", "init", "tickets", "--dir", dir, "-o", "json")
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
			t.Fatalf("%v: %s", err, res.stdout)
		}
		want := map[string]any{
			"name": "tickets", "dir": dir, "module": "example.com/tickets", "sdk": sdk,
			"plugin_dir": filepath.Join(filepath.Dir(sdk), "bin", "plugins"),
			"files":      []any{"go.mod", "main.go", "connector.go", "connector_test.go", "Makefile", "README.md", ".gitignore"},
			"next":       []any{"cd " + dir, "go mod tidy", "go test ./...", "make build"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(mod), "replace github.com/connhost/connhost/sdk => "+sdk+"\n") {
			t.Errorf("go.mod does not replace the SDK with %s:\n%s", sdk, mod)
		}
	})
	t.Run("text", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), "conn")
		res := runCLI(t, nil, options{}, "connector", "init", "my-conn", "--dir", dir, "--module", "example.org/x/my-conn", "--sdk", sdk)
		if res.code != 0 {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		for _, s := range []string{"wrote connector my-conn in " + dir, "go mod tidy", "make build writes " + filepath.Join(filepath.Dir(sdk), "bin", "plugins", "my-conn") + "; then `connhost connector rescan` (or SIGHUP to the host) catalogues it."} {
			if !strings.Contains(res.stdout, s) {
				t.Errorf("output lacks %q:\n%s", s, res.stdout)
			}
		}
		mod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
		if !strings.HasPrefix(string(mod), "module example.org/x/my-conn\n") {
			t.Errorf("go.mod:\n%s", mod)
		}
		src, _ := os.ReadFile(filepath.Join(dir, "connector.go"))
		if !strings.Contains(string(src), `TokenEnv    = "MY_CONN_TOKEN"`) {
			t.Errorf("connector.go does not declare MY_CONN_TOKEN:\n%s", src)
		}
	})

	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the parallel subtests
		if entries, _ := os.ReadDir(notEmpty); len(entries) != 1 {
			t.Errorf("the non-empty dir holds %d entries, want 1", len(entries))
		}
	})
	for name, tc := range map[string]struct {
		args []string
		msg  string
	}{
		"bad name":         {[]string{"Tickets"}, `NAME (argument not shown) is not a connector key`},
		"name with a path": {[]string{"a/b"}, `NAME (argument not shown) is not a connector key`},
		"one letter":       {[]string{"t"}, `NAME "t" is not a connector key`},
		"bad module":       {[]string{"tickets", "--module", "x y"}, "invalid module path"},
		"not empty":        {[]string{"tickets", "--dir", notEmpty}, "target directory is not empty"},
		"not the sdk":      {[]string{"tickets", "--sdk", notEmpty}, "connhost SDK module not found"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"connector", "init"}, tc.args...)
			if !strings.Contains(strings.Join(tc.args, " "), "--dir") {
				args = append(args, "--dir", filepath.Join(t.TempDir(), "new"))
			}
			res := runCLI(t, nil, options{}, args...)
			if res.code != 2 || !strings.HasPrefix(res.stderr, "error: invalid_input: ") || !strings.Contains(res.stderr, tc.msg) {
				t.Errorf("exit %d, stderr %q; want 2, invalid_input: …%s", res.code, res.stderr, tc.msg)
			}
			if res.stdout != "" {
				t.Errorf("stdout %q", res.stdout)
			}
		})
	}
}
