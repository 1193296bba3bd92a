package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// binaries are what the harness builds.
type binaries struct {
	connhost  string
	pluginDir string // holds demo, the only plugin the hosts see
	demo      string
	floor     string
	ref       string // the C SQLite reference; "" unless the ingest group runs
}

// BuildError is a binary that did not build.
type BuildError struct {
	What   string
	Err    error
	Output string
	Hint   string
}

func (e *BuildError) Error() string {
	s := fmt.Sprintf("building %s: %v", e.What, e.Err)
	if e.Output != "" {
		s += "\n" + strings.TrimSpace(e.Output)
	}
	if e.Hint != "" {
		s += "\n" + e.Hint
	}
	return s
}

func (e *BuildError) Unwrap() error { return e.Err }

// PGUnavailableError is a PostgreSQL server the ingest group cannot use.
type PGUnavailableError struct {
	URL string
	Err error
}

func (e *PGUnavailableError) Error() string {
	return fmt.Sprintf("PostgreSQL not reachable at %s: %v\n(set BENCH_PG to a server URL whose user may CREATE DATABASE, or leave ingest out: BENCH_GROUPS=launch,run,concurrent,readme)", redactURL(e.URL), e.Err)
}

func (e *PGUnavailableError) Unwrap() error { return e.Err }

// repoRoot finds the connhost checkout above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/connhost/connhost\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the connhost checkout (run make bench-compare at its root)")
		}
		dir = parent
	}
}

func build(ctx context.Context, root, bin string, s settings) (binaries, error) {
	b := binaries{
		connhost: filepath.Join(bin, "connhost"), pluginDir: filepath.Join(bin, "plugins"),
		floor: filepath.Join(bin, "floorplugin"),
	}
	b.demo = filepath.Join(b.pluginDir, "demo")
	if err := os.MkdirAll(b.pluginDir, 0o755); err != nil {
		return b, err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	t0 := time.Now()
	for _, t := range []struct{ out, pkg string }{
		{b.connhost, "./host/cmd/connhost"},
		{b.demo, "github.com/connhost/connhost/plugins/demo"},
		{b.floor, "./host/internal/benchcompare/cmd/floorplugin"},
	} {
		// As make build builds them: static, trimmed, stripped.
		cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags", "-s -w", "-o", t.out, t.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, &BuildError{What: t.pkg, Err: err, Output: string(out)}
		}
	}
	if s.has("ingest") {
		b.ref = filepath.Join(bin, "sqliteref")
		src := filepath.Join(root, "host", "internal", "benchcompare", "sqliteref", "ref.c")
		cmd := exec.CommandContext(ctx, s.cc, "-O2", "-o", b.ref, src, "-lsqlite3")
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, &BuildError{What: "the C SQLite reference (" + src + ")", Err: err, Output: string(out),
				Hint: "it needs a C compiler and the SQLite 3 headers and library: on Debian/Ubuntu `apt-get install gcc libsqlite3-dev`; or leave ingest out: BENCH_GROUPS=launch,run,concurrent,readme"}
		}
	}
	progress("built connhost, demo, floor plugin%s in %s", map[bool]string{true: ", C SQLite reference"}[b.ref != ""], time.Since(t0).Round(100*time.Millisecond))
	return b, nil
}

func pgPreflight(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return &PGUnavailableError{URL: url, Err: err}
	}
	defer c.Close(context.Background())
	if err := c.Ping(ctx); err != nil {
		return &PGUnavailableError{URL: url, Err: err}
	}
	return nil
}

// redactURL drops a password from a URL for messages.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	cred := u[scheme+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return u[:scheme+3] + user + ":xxx" + u[at:]
	}
	return u
}

func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func machine() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	m["loadavg_at_start"] = loadavg()
	return m
}

// loadavg is the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
