package launch

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/contain"
	"github.com/connhost/connhost/host/internal/syncbuf"
	"github.com/connhost/connhost/host/pluginimage"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// testconnPath is the test plugin, built once per test binary in binDir.
var testconnPath, binDir string

// hostHelperEnv makes the test binary act as a host that launches a
// plugin and hangs, for TestHostCrashKillsPlugin to SIGKILL.
const hostHelperEnv = "LAUNCH_TEST_HOST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(hostHelperEnv) != "" {
		os.Exit(hostHelper())
	}
	os.Exit(runTests(m))
}

// hostHelper runs testconn in "hang" mode (or HELPER_MODE, with "then":
// "wait"), prints "ready" at its first record, and waits to be killed.
// With HELPER_RUNTIME it contains the launch as connhost serve does: a
// subreaper, the runtime dir, a cgroup unless HELPER_NOCGROUP is set.
func hostHelper() int {
	cfg := Config{}
	if dir := os.Getenv("HELPER_RUNTIME"); dir != "" {
		m, err := contain.New(contain.Config{RuntimeDir: dir, Subreaper: true, DisableCgroup: os.Getenv("HELPER_NOCGROUP") != ""})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cfg.TempDir, cfg.Contain = dir, m
	}
	mode := os.Getenv("HELPER_MODE")
	if mode == "" {
		mode = "hang"
	}
	l, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	path := os.Getenv("HELPER_PLUGIN")
	sum, err := hex.DecodeString(os.Getenv("HELPER_PLUGIN_SHA256"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	spec := Spec{Name: "testconn", Path: path, SHA256: sum, Env: []string{"TESTCONN_PIDFILE=" + os.Getenv("HELPER_PIDFILE")}}
	err = l.Run(context.Background(), spec, runConfig(map[string]any{"mode": mode, "then": "wait"}), func(wire.Message) error {
		fmt.Println("ready")
		return nil
	})
	fmt.Fprintln(os.Stderr, "run ended:", err)
	return 1
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "launch-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	testconnPath = filepath.Join(dir, "testconn")
	// Built without -race: the plugin is a fixture, not the code under test.
	cmd := exec.Command("go", "build", "-o", testconnPath, "./testdata/plugins/testconn")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building test plugin: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = syncbuf.Buffer

// testLauncher returns a launcher logging at trace level into the returned
// buffer.
func testLauncher(t *testing.T, cfg Config) (*Launcher, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "host", Output: logs, Level: hclog.Trace})
	}
	if cfg.KillTimeout == 0 {
		cfg.KillTimeout = 3 * time.Second
	}
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l, logs
}

func fileSum(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// pinned pins the binary at path for the test's duration.
func pinned(t testing.TB, path string) *pluginimage.Image {
	t.Helper()
	im, err := pluginimage.Pin(path, pluginimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(im.Close)
	return im
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// testSpec is a spec for the test plugin with env and a pid file.
func testSpec(t *testing.T, env ...string) (Spec, string) {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "pids")
	return Spec{
		Name:   "testconn",
		Path:   testconnPath,
		SHA256: fileSum(t, testconnPath),
		Env:    append([]string{"TESTCONN_PIDFILE=" + pidfile}, env...),
	}, pidfile
}

func runConfig(v map[string]any) wire.RunRequest {
	b, _ := json.Marshal(v)
	return wire.RunRequest{RunID: "run-1", ConnectionID: "conn-1", Trigger: wire.TriggerManual, Config: b}
}

// envRecord is what testconn's "env" mode emits per variable.
type envRecord struct {
	Name    string `json:"name"`
	SHA256  string `json:"sha256"`
	Present bool   `json:"present"`
}

// collectEnv decodes the "env" stream of a run.
func collectEnv(t *testing.T, msgs []wire.Message) map[string]envRecord {
	t.Helper()
	out := map[string]envRecord{}
	for _, m := range msgs {
		for _, r := range m.Records {
			if r.Stream != "env" {
				continue
			}
			var e envRecord
			if err := json.Unmarshal(r.Data, &e); err != nil {
				t.Fatalf("bad env record %s: %v", r.Data, err)
			}
			out[e.Name] = e
		}
	}
	return out
}

// runCollect runs and returns every message.
func runCollect(ctx context.Context, l *Launcher, spec Spec, req wire.RunRequest) ([]wire.Message, error) {
	var msgs []wire.Message
	err := l.Run(ctx, spec, req, func(m wire.Message) error {
		msgs = append(msgs, m)
		return nil
	})
	return msgs, err
}

// procStat is the part of /proc/<pid>/stat the tests need.
type procStat struct {
	pid, ppid, pgid int
	state           byte
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgid, _ := strconv.Atoi(f[2])
	return procStat{pid: pid, ppid: ppid, pgid: pgid, state: f[0][0]}, true
}

// groupMembers returns the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.pgid == pgid && st.state != 'Z' {
			out = append(out, st)
		}
	}
	return out
}

// pidEntry is one line of testconn's pid file.
type pidEntry struct{ pid, pgid int }

func readPIDs(t *testing.T, path string) []pidEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []pidEntry
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e pidEntry
		if _, err := fmt.Sscanf(line, "%d %d", &e.pid, &e.pgid); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// assertNoSurvivors checks the process table for every process the test
// plugin recorded: the plugin itself must be gone and reaped (no zombie
// child of the host), and nothing of its process group may be alive.
// The plugin is reaped before Run returns, so it is checked at once;
// grandchildren die from a SIGKILL the kernel delivers asynchronously, so
// their group is polled until it empties.
func assertNoSurvivors(t *testing.T, entries []pidEntry) {
	t.Helper()
	if len(entries) == 0 {
		return
	}
	leader := entries[0]
	if leader.pgid != leader.pid {
		t.Errorf("plugin pid %d runs in process group %d, want its own group", leader.pid, leader.pgid)
	}
	if st, ok := readStat(leader.pid); ok && st.pgid == leader.pgid {
		t.Errorf("plugin pid %d still in the process table (state %c, ppid %d)", leader.pid, st.state, st.ppid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		members := groupMembers(leader.pgid)
		if len(members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("process group %d still has live members: %+v", leader.pgid, members)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, e := range entries[1:] {
		if st, ok := readStat(e.pid); ok && st.pgid == e.pgid && st.state != 'Z' {
			t.Errorf("grandchild pid %d still alive (state %c)", e.pid, st.state)
		}
		if st, ok := readStat(e.pid); ok && st.state == 'Z' && st.ppid == os.Getpid() {
			t.Errorf("grandchild pid %d is a zombie of the host", e.pid)
		}
	}
}

// assertNoZombieChildren checks that the test process has no zombie
// children among the given pids.
func assertNoZombieChildren(t *testing.T, entries []pidEntry) {
	t.Helper()
	for _, e := range entries {
		if st, ok := readStat(e.pid); ok && st.state == 'Z' && st.ppid == os.Getpid() {
			t.Errorf("pid %d is a zombie child of the host", e.pid)
		}
	}
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// startHelperHost starts the test binary as a host (see hostHelper) with
// the extra environment env, and waits until its plugin has sent its first
// record. It returns the host and the plugin's pid file.
func startHelperHost(t *testing.T, env ...string) (*exec.Cmd, string) {
	t.Helper()
	pidfile := filepath.Join(t.TempDir(), "pids")
	host := exec.Command(os.Args[0], "-test.run=^$")
	host.Env = append(os.Environ(),
		hostHelperEnv+"=1",
		"HELPER_PLUGIN="+testconnPath,
		"HELPER_PLUGIN_SHA256="+hex.EncodeToString(fileSum(t, testconnPath)),
		"HELPER_PIDFILE="+pidfile,
	)
	host.Env = append(host.Env, env...)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		_ = host.Process.Kill()
		_ = host.Wait()
		t.Fatalf("helper host said %q, %v", line, err)
	}
	return host, pidfile
}
