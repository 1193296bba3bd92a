package sdktest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// builds caches one build per package and working directory for the life
// of the test binary; compiling and linking a plugin takes seconds.
var builds sync.Map // key string -> *build

type build struct {
	once sync.Once
	bin  []byte
	err  error
}

// Build compiles a connector's main package (an import path, or a
// directory such as "." or "./cmd/myconn" relative to the test's package)
// and returns the path of the binary, in t.TempDir(). It builds once per
// package per test binary; later calls get a fresh copy of the same
// binary. When the test binary has the race detector on, so does the
// plugin (which also lets the build reuse the test's compiled packages).
func Build(t testing.TB, pkg string) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("sdktest: build %s: %v", pkg, err)
	}
	v, _ := builds.LoadOrStore(wd+"\x00"+pkg, &build{})
	b := v.(*build)
	b.once.Do(func() { b.bin, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatalf("sdktest: build %s: %v", pkg, b.err)
	}
	name := "connector"
	if base := filepath.Base(pkg); base != "." && base != "/" && base != "" {
		name = base
	}
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b.bin, 0o755); err != nil {
		t.Fatalf("sdktest: build %s: %v", pkg, err)
	}
	return path
}

// goBuild runs `go build` into a scratch directory and returns the binary.
func goBuild(pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "sdktest-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "connector")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	// -buildvcs=false: a test binary's build needs no VCS stamp, and
	// stamping fails in a checkout the test's user does not own.
	args := []string{"build", "-buildvcs=false", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, pkg)...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, output)
	}
	return os.ReadFile(out)
}

// RunPlugin runs the connector binary as a go-plugin subprocess, the way
// the host does, and returns what it sent. The child's environment is
// PATH, HOME and TMPDIR from the test process, the run metadata, and
// Options.Env, nothing else. The child is killed before RunPlugin returns.
func RunPlugin(t testing.TB, binary string, o Options) *Result {
	t.Helper()
	req, err := o.runRequest()
	if err != nil {
		t.Fatal(err)
	}
	conn, kill := dispense(t, binary, o)
	defer kill()
	ctx, cancel := o.context(t.Context())
	defer cancel()
	res := &Result{}
	res.Err = normalize(ctx, conn.Run(ctx, req, res.collect))
	return res
}

// CheckPlugin runs the connector binary's Check as a subprocess, like
// RunPlugin.
func CheckPlugin(t testing.TB, binary string, o Options) (wire.CheckResult, error) {
	t.Helper()
	req, err := o.checkRequest()
	if err != nil {
		t.Fatal(err)
	}
	conn, kill := dispense(t, binary, o)
	defer kill()
	ctx, cancel := o.context(t.Context())
	defer cancel()
	res, err := conn.Check(ctx, req)
	return res, normalize(ctx, err)
}

// Describe starts the connector binary and returns its manifest, as the
// host's catalog reads it. It does not validate the manifest.
func Describe(t testing.TB, binary string) manifest.Manifest {
	t.Helper()
	conn, kill := dispense(t, binary, Options{})
	defer kill()
	ctx, cancel := context.WithTimeout(t.Context(), DefaultTimeout)
	defer cancel()
	m, err := conn.Describe(ctx)
	if err != nil {
		t.Fatalf("sdktest: describe %s: %v", binary, err)
	}
	return m
}

// dispense starts binary and returns its connector and a func that kills
// it and waits for go-plugin's goroutines (so none logs after the test).
func dispense(t testing.TB, binary string, o Options) (wire.Connector, func()) {
	t.Helper()
	env := hostEnv()
	for k, v := range o.env() {
		env[k] = v
	}
	cmd := exec.Command(binary)
	cmd.Env = sortedEnv(env)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.VersionedPlugins(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SkipHostEnv:      true,
		AutoMTLS:         true,
		StartTimeout:     time.Minute,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "plugin",
			Output: logOutput(t, o),
			Level:  hclog.Info,
		}),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		t.Fatalf("sdktest: start %s: %v", binary, err)
	}
	raw, err := rpc.Dispense(wire.PluginKey)
	if err != nil {
		client.Kill()
		t.Fatalf("sdktest: dispense %s: %v", binary, err)
	}
	conn, ok := raw.(wire.Connector)
	if !ok {
		client.Kill()
		t.Fatalf("sdktest: %s served %T, not a wire.Connector", binary, raw)
	}
	return conn, client.Kill
}

func logOutput(t testing.TB, o Options) io.Writer {
	if o.LogOutput != nil {
		return o.LogOutput
	}
	return t.Output()
}
