package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/connhost/connhost/host/contain"
	"github.com/connhost/connhost/host/internal/hosttest"
)

// Bounds of the waits. Generous: the machine is shared; none is a timing
// assertion, only a guard against a hang.
const (
	buildTimeout    = 5 * time.Minute
	readyTimeout    = 30 * time.Second
	stopTimeout     = 40 * time.Second
	commandTimeout  = 60 * time.Second
	scenarioTimeout = 30 * time.Second
	pollEvery       = 200 * time.Millisecond
)

// binaries are the built connhost and demo plugin.
type binaries struct {
	connhost  string
	pluginDir string
}

// build compiles the connhost binary and the demo plugin (named "demo" in
// a plugin dir of its own) with the go command that runs the test. plugins
// names more first-party connectors (directories of plugins/, e.g. "imap")
// to build into the same plugin dir: opt-in, so other tests' catalogs and
// builds stay as they are.
func build(t *testing.T, plugins ...string) binaries {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	b := binaries{connhost: filepath.Join(dir, "connhost"), pluginDir: filepath.Join(dir, "plugins")}
	if err := os.Mkdir(b.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	targets := []struct{ out, pkg string }{
		{b.connhost, "github.com/connhost/connhost/host/cmd/connhost"},
		{filepath.Join(b.pluginDir, "demo"), "github.com/connhost/connhost/plugins/demo"},
	}
	for _, p := range plugins {
		targets = append(targets, struct{ out, pkg string }{filepath.Join(b.pluginDir, p), "github.com/connhost/connhost/plugins/" + p})
	}
	for _, target := range targets {
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", target.out, target.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", target.pkg, err, out)
		}
	}
	return b
}

// serverProc is one `connhost serve` subprocess.
type serverProc struct {
	cmd    *exec.Cmd
	stdout hosttest.SyncBuffer
	stderr hosttest.SyncBuffer
	done   chan struct{}
	err    error // Wait's result, after done
	addr   string
}

var readyRE = regexp.MustCompile(`serving on (http://\S+)`)

// captured is one piece of text a scenario produced: a CLI output, a
// server log, an API response. The canary check reads them all.
type captured struct {
	what string
	text string
}

// harness runs the host and the CLI for one test.
type harness struct {
	t       *testing.T
	bin     binaries
	dataDir string
	kekFile string
	// marker is the TMPDIR of the server: the child environment allowlist
	// passes TMPDIR to every plugin, so a process whose environment holds
	// it belongs to this test (see leftovers).
	marker string

	mu      sync.Mutex
	outputs []captured
	srv     *serverProc
}

// newHarness builds the binaries (with the extra plugins, see build) and
// prepares a data dir; start runs the server.
func newHarness(t *testing.T, plugins ...string) *harness {
	t.Helper()
	root := t.TempDir()
	h := &harness{
		t:       t,
		bin:     build(t, plugins...),
		dataDir: filepath.Join(root, "var"),
		kekFile: filepath.Join(root, "secrets", "kek"),
		marker:  filepath.Join(root, "tmp"),
	}
	if err := os.MkdirAll(h.marker, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cleanup)
	return h
}

func (h *harness) record(what, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.outputs = append(h.outputs, captured{what, text})
}

// start runs `connhost serve` with the given extra environment (on top of
// PATH, HOME and the marker TMPDIR) and waits until it is ready.
func (h *harness) start(env ...string) {
	h.t.Helper()
	if h.srv != nil {
		h.t.Fatal("server already running")
	}
	s := &serverProc{done: make(chan struct{})}
	s.cmd = execServe(h.bin.connhost, h.dataDir, h.bin.pluginDir, h.kekFile)
	s.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.marker, "TMPDIR=" + h.marker}, env...)
	s.cmd.Stdout = &s.stdout
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		h.t.Fatalf("start server: %v", err)
	}
	h.srv = s
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	deadline := time.After(readyTimeout)
	for {
		if m := readyRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.addr = m[1]
			// The leftover check must see the server itself, or its
			// "nothing left" would prove nothing.
			if _, err := os.Stat("/proc/self/environ"); err == nil && len(leftovers(h.marker)) == 0 {
				h.t.Fatal("the leftover-process check does not see the running server")
			}
			return
		}
		select {
		case <-s.done:
			h.t.Fatalf("server exited before ready: %v\nstderr:\n%s", s.err, s.stderr.String())
		case <-deadline:
			h.t.Fatalf("server not ready after %v\nstderr:\n%s", readyTimeout, s.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// execServe is the serve command of the tests.
func execServe(bin, dataDir, pluginDir, kekFile string) *exec.Cmd {
	return exec.Command(bin, "serve",
		"--data-dir", dataDir,
		"--plugin-dir", pluginDir,
		"--listen", "127.0.0.1:0",
		"--kek-file", kekFile,
		"--log-level", "debug")
}

// stop sends SIGTERM and waits for a clean exit, then checks that no
// process of this test is left.
func (h *harness) stop() {
	h.t.Helper()
	s := h.srv
	if s == nil {
		return
	}
	h.srv = nil
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		h.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		h.t.Fatalf("server did not stop within %v of SIGTERM\nstderr:\n%s", stopTimeout, s.stderr.String())
	}
	h.record("server stdout", s.stdout.String())
	h.record("server log", s.stderr.String())
	if s.err != nil {
		h.t.Errorf("server exit after SIGTERM: %v (want status 0)\nlog tail:\n%s", s.err, tail(s.stderr.String(), 30))
	}
	h.waitNoLeftovers()
}

// cleanup kills a server a failed test left running (by its pid only),
// and reports leftover processes.
func (h *harness) cleanup() {
	if s := h.srv; s != nil {
		h.srv = nil
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if h.t.Failed() {
			h.t.Logf("server log tail:\n%s", tail(s.stderr.String(), 60))
		}
	}
	h.waitNoLeftovers()
	// A test that failed mid-run may have left a killed host's plugin
	// helpers and their cgroups: remove them, as the next start would.
	_, _ = contain.Sweep(filepath.Join(h.dataDir, "run"), nil)
}

// waitNoLeftovers fails the test if a process carrying the marker
// survives (plugins are killed with the host; give the kernel a moment to
// reap them).
func (h *harness) waitNoLeftovers() {
	h.t.Helper()
	var left []string
	for range 50 {
		left = leftovers(h.marker)
		if len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Errorf("processes left behind: %v", left)
}

// leftovers lists the processes whose environment holds TMPDIR=marker.
// Linux only (it reads /proc); elsewhere it finds nothing.
func leftovers(marker string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("TMPDIR=" + marker + "\x00")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append(env, 0), want) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if strings.Contains(string(stat), ") Z ") {
			continue // a zombie awaiting its reaper holds no resources
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

// result is one CLI invocation's outcome.
type result struct {
	stdout, stderr string
	code           int
}

// cli runs the connhost CLI binary against the running server, with the
// token read from the data dir, stdin as given.
func (h *harness) cli(stdin string, args ...string) result {
	h.t.Helper()
	if h.srv == nil {
		h.t.Fatal("cli: no server running")
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin.connhost, args...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + h.marker,
		"CONNHOST_ADDR=" + h.srv.addr,
		"CONNHOST_DATA_DIR=" + h.dataDir,
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		h.t.Fatalf("connhost %v: %v", args, err)
	}
	what := "connhost " + strings.Join(args, " ")
	h.record(what+" (stdout)", res.stdout)
	h.record(what+" (stderr)", res.stderr)
	return res
}

// ok runs the CLI and fails the test unless it exits 0.
func (h *harness) ok(stdin string, args ...string) string {
	h.t.Helper()
	res := h.cli(stdin, args...)
	if res.code != 0 {
		h.t.Fatalf("connhost %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// okJSON runs the CLI with -o json and decodes its stdout into v.
func (h *harness) okJSON(v any, args ...string) {
	h.t.Helper()
	out := h.ok("", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("connhost %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// eventually polls cond until it returns true or the scenario timeout
// passes; cond describes what it last saw.
func (h *harness) eventually(what string, cond func() (bool, string)) {
	h.t.Helper()
	deadline := time.Now().Add(scenarioTimeout)
	var last string
	for {
		var done bool
		done, last = cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not after %v; last seen: %s", what, scenarioTimeout, last)
		}
		time.Sleep(pollEvery)
	}
}

// dataDirFiles returns every regular file under the data dir.
func (h *harness) dataDirFiles() map[string][]byte {
	h.t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(h.dataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			// A SQLite temp file may vanish between listing and reading.
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		files[path] = b
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return files
}

func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
