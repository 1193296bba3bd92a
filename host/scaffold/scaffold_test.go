package scaffold_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/scaffold"
	"github.com/google/go-cmp/cmp"
)

// checkout is the root of this repository, two levels above the package.
var checkout = filepath.Join("..", "..")

func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := scaffold.FindSDK(".")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		o    scaffold.Options
		want error
	}{
		"key":              {scaffold.Options{Name: "tickets", Dir: "d"}, nil},
		"dash underscore":  {scaffold.Options{Name: "my-conn_2", Dir: "d"}, nil},
		"module":           {scaffold.Options{Name: "tickets", Dir: "d", Module: "example.org/team/tickets"}, nil},
		"empty":            {scaffold.Options{Name: "", Dir: "d"}, scaffold.ErrInvalidName},
		"one letter":       {scaffold.Options{Name: "t", Dir: "d"}, scaffold.ErrInvalidName},
		"upper case":       {scaffold.Options{Name: "Tickets", Dir: "d"}, scaffold.ErrInvalidName},
		"leading digit":    {scaffold.Options{Name: "1tickets", Dir: "d"}, scaffold.ErrInvalidName},
		"path":             {scaffold.Options{Name: "../tickets", Dir: "d"}, scaffold.ErrInvalidName},
		"url":              {scaffold.Options{Name: "https://x", Dir: "d"}, scaffold.ErrInvalidName},
		"space":            {scaffold.Options{Name: "my conn", Dir: "d"}, scaffold.ErrInvalidName},
		"too long":         {scaffold.Options{Name: "a" + strings.Repeat("b", 63), Dir: "d"}, scaffold.ErrInvalidName},
		"module space":     {scaffold.Options{Name: "tickets", Dir: "d", Module: "example.org/my tickets"}, scaffold.ErrInvalidModule},
		"module dotdot":    {scaffold.Options{Name: "tickets", Dir: "d", Module: "example.org/../x"}, scaffold.ErrInvalidModule},
		"module slash end": {scaffold.Options{Name: "tickets", Dir: "d", Module: "example.org/"}, scaffold.ErrInvalidModule},
		"module quote":     {scaffold.Options{Name: "tickets", Dir: "d", Module: `example.org/"x`}, scaffold.ErrInvalidModule},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := tc.o.Validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestWriteRefuses: a bad name, a non-empty directory, a file in the way
// and a directory that does not hold the SDK are refused typed, and
// nothing is written.
func TestWriteRefuses(t *testing.T) {
	t.Parallel()
	sdk := sdkDir(t)
	notEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(notEmpty, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "new")
	for name, tc := range map[string]struct {
		o    scaffold.Options
		want error
	}{
		"bad name":    {scaffold.Options{Name: "Bad Name", Dir: fresh, SDKDir: sdk}, scaffold.ErrInvalidName},
		"not empty":   {scaffold.Options{Name: "tickets", Dir: notEmpty, SDKDir: sdk}, scaffold.ErrDirNotEmpty},
		"file":        {scaffold.Options{Name: "tickets", Dir: file, SDKDir: sdk}, scaffold.ErrDirNotEmpty},
		"no sdk":      {scaffold.Options{Name: "tickets", Dir: fresh}, scaffold.ErrSDKNotFound},
		"not the sdk": {scaffold.Options{Name: "tickets", Dir: fresh, SDKDir: checkout}, scaffold.ErrSDKNotFound},
		"missing sdk": {scaffold.Options{Name: "tickets", Dir: fresh, SDKDir: t.TempDir()}, scaffold.ErrSDKNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			files, err := scaffold.Write(tc.o)
			if !errors.Is(err, tc.want) {
				t.Errorf("Write() = %v, want %v", err, tc.want)
			}
			if files != nil {
				t.Errorf("Write() wrote %v", files)
			}
		})
	}
	if entries, _ := os.ReadDir(notEmpty); len(entries) != 1 {
		t.Errorf("the non-empty dir now holds %d entries, want 1", len(entries))
	}
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Write created %s (%v)", fresh, err)
	}
}

func TestFindSDK(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(path, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sdkMod := "module github.com/connhost/connhost/sdk\n\ngo 1.26.8\n"
	hostMod := "module github.com/connhost/connhost\n\ngo 1.26.8\n"
	// A checkout, and a directory beside it.
	write(filepath.Join(root, "src", "connhost", "go.mod"), hostMod)
	write(filepath.Join(root, "src", "connhost", "sdk", "go.mod"), sdkMod)
	write(filepath.Join(root, "src", "connhost", "host", "cli", "x.go"), "package cli\n")
	write(filepath.Join(root, "src", "mine", "keep"), "")
	// A directory of its own named sdk that is another module.
	write(filepath.Join(root, "other", "sdk", "go.mod"), "module example.com/sdk\n")
	want := filepath.Join(root, "src", "connhost", "sdk")
	for name, tc := range map[string]struct {
		from string
		want string
	}{
		"in the checkout":     {filepath.Join(root, "src", "connhost", "host", "cli"), want},
		"the sdk itself":      {want, want},
		"beside the checkout": {filepath.Join(root, "src", "mine", "tickets"), want},
		"elsewhere":           {filepath.Join(root, "other"), ""},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := scaffold.FindSDK(tc.from)
			if tc.want == "" {
				if !errors.Is(err, scaffold.ErrSDKNotFound) {
					t.Errorf("FindSDK = %q, %v; want ErrSDKNotFound", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("FindSDK = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, want := scaffold.DefaultPluginDir(want), filepath.Join(root, "src", "connhost", "bin", "plugins"); got != want {
		t.Errorf("DefaultPluginDir(checkout sdk) = %q, want %q", got, want)
	}
	if got, want := scaffold.DefaultPluginDir(filepath.Join(root, "other", "sdk")), filepath.Join("bin", "plugins"); got != want {
		t.Errorf("DefaultPluginDir(no checkout) = %q, want %q", got, want)
	}
}

// goCmd runs the go command in dir alone, outside any workspace, as an
// author would in a module of their own.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// The modules a connector's graph must hold (the SDK and the plugin
// transport) and the host's modules it must not.
var (
	connectorNeeds = []string{
		"github.com/connhost/connhost/sdk",
		"github.com/hashicorp/go-plugin",
		"github.com/hashicorp/go-hclog",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
	}
	hostOnly = []string{
		"github.com/connhost/connhost ", // the host module itself
		"github.com/tink-crypto/",
		"modernc.org/",
		"github.com/go-co-op/gocron",
		"github.com/spf13/cobra",
		"github.com/prometheus/",
		"github.com/pressly/goose",
		"github.com/jackc/pgx",
		"github.com/hashicorp/vault",
		"github.com/santhosh-tekuri/jsonschema",
	}
)

// checkGraph checks `go list -m all` of the module in dir.
func checkGraph(t *testing.T, dir string) {
	t.Helper()
	mods := strings.Split(goCmd(t, dir, "list", "-m", "all"), "\n")
	for _, need := range connectorNeeds {
		if !slices.ContainsFunc(mods, func(m string) bool { return m == need || strings.HasPrefix(m, need+" ") }) {
			t.Errorf("%s: go list -m all lacks %s", dir, need)
		}
	}
	for _, m := range mods {
		for _, bad := range hostOnly {
			if strings.HasPrefix(m+" ", bad) {
				t.Errorf("%s: go list -m all holds the host's %s", dir, m)
			}
		}
	}
}

// TestFirstPartyConnectorsAreModulesOfTheirOwn: plugins/demo and
// plugins/github build against the SDK module alone, as an outside
// author's connector does: their module graphs hold the SDK, go-plugin,
// gRPC, protobuf and hclog, and none of the host's modules.
func TestFirstPartyConnectorsAreModulesOfTheirOwn(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"demo", "github"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			checkGraph(t, filepath.Join(checkout, "plugins", p))
		})
	}
	t.Run("sdk", func(t *testing.T) {
		t.Parallel()
		checkGraph(t, filepath.Join(checkout, "sdk"))
	})
}

// TestWrittenConnectorBuildsAndPasses writes a connector as `connhost
// connector init` does, in a directory outside the checkout, and uses it as
// its author would: go mod tidy, go vet, go test (whose acceptance test
// builds it and runs it as a plugin subprocess), go build and make build.
// Its module graph is the SDK's, without the host's modules.
func TestWrittenConnectorBuildsAndPasses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and runs its tests")
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "my-tickets")
	plugins := filepath.Join(t.TempDir(), "plugins")
	files, err := scaffold.Write(scaffold.Options{
		Name: "my-tickets", Dir: dir, Module: "example.org/my-tickets", SDKDir: sdkDir(t), PluginDir: plugins,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"go.mod", "main.go", "connector.go", "connector_test.go", "Makefile", "README.md", ".gitignore"}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	goCmd(t, dir, "mod", "tidy")
	goCmd(t, dir, "vet", "./...")
	out := goCmd(t, dir, "test", "-count=1", "-v", "./...")
	for _, pass := range []string{"--- PASS: TestRun", "--- PASS: TestAcceptance/Describe", "--- PASS: TestAcceptance/Check",
		"--- PASS: TestAcceptance/Run", "--- PASS: TestAcceptance/Resume", "--- PASS: TestAcceptance/CredentialsRequired"} {
		if !strings.Contains(out, pass) {
			t.Errorf("go test output lacks %q:\n%s", pass, out)
		}
	}
	goCmd(t, dir, "build", "-o", filepath.Join(t.TempDir(), "my-tickets"), ".")
	if fmtOut, err := exec.Command("gofmt", "-l", dir).CombinedOutput(); err != nil || len(fmtOut) > 0 {
		t.Errorf("gofmt -l: %v %s", err, fmtOut)
	}
	checkGraph(t, dir)

	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make: the Makefile is not tried")
	}
	cmd := exec.Command("make", "build")
	cmd.Dir = dir
	// Not the flags of a make this test may run under (make test).
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	cmd.Env = append(cmd.Env, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(plugins, "my-tickets")); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("make build did not write an executable %s/my-tickets: %v", plugins, err)
	}
}

// TestWrittenConnectorIsCoherent checks what an author reads and runs first:
// the default schedule applies (it auto-enrolls, so a connection created
// without --schedule runs hourly once its credential is set), and the
// README stores a placeholder the author must replace, not a shell
// variable the host's quickstart fills with the operator token.
func TestWrittenConnectorIsCoherent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "my-conn")
	if _, err := scaffold.Write(scaffold.Options{Name: "my-conn", Dir: dir, SDKDir: sdkDir(t)}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if src := read("connector.go"); !strings.Contains(src, `DefaultSchedule: manifest.Schedule{Spec: "@every 1h", AutoEnroll: true},`) {
		t.Errorf("connector.go's default schedule does not auto-enroll:\n%s", src)
	}
	readme := read("README.md")
	for _, want := range []string{
		`printf 'MY_CONN_TOKEN=%s\n' 'REPLACE-WITH-YOUR-API-TOKEN' | connhost credential set "$ID"`,
		"8 bytes or more", "not connhost's operator token", "connhost connector rescan",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q:\n%s", want, readme)
		}
	}
	for _, bad := range []string{`"$TOKEN"`, "restart"} {
		if strings.Contains(readme, bad) {
			t.Errorf("README.md still says %q:\n%s", bad, readme)
		}
	}
}
