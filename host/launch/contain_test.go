package launch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connhost/connhost/host/contain"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/sdk/wire"
)

// containModes are the modes the containment tests run in. The cgroup mode
// needs a writable cgroup v2 hierarchy: CI runs as root and has one, so
// there its absence fails the test instead of skipping it.
func containModes(t *testing.T) map[string]bool {
	t.Helper()
	return map[string]bool{"cgroup": false, "proc": true}
}

func requireMode(t *testing.T, m *contain.Manager, want contain.Mode) {
	t.Helper()
	got, why := m.Mode()
	if got == want {
		return
	}
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		t.Fatalf("containment mode %s, want %s under CI: %s", got, want, why)
	}
	t.Skipf("containment mode %s unavailable here: %s", want, why)
}

// shortTempDir is a temp dir whose path leaves room for a Unix socket
// (t.TempDir's, named after the test, may not).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ch")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// assertAllDead checks the process table at once: every recorded process
// of the run — the plugin, its same-group grandchild and its setsid
// grandchild — is gone or a zombie.
func assertAllDead(t *testing.T, pids []pidEntry) {
	t.Helper()
	for _, e := range pids {
		if alive(e.pid) {
			st, _ := readStat(e.pid)
			t.Errorf("pid %d (group %d) outlived its run: state %c ppid %d", e.pid, e.pgid, st.state, st.ppid)
			_ = syscall.Kill(e.pid, syscall.SIGKILL)
		}
	}
}

// assertNoCgroupLeft checks that no launch cgroup is left, nor (unless
// records may stay, as after a boot sweep) its record.
func assertNoCgroupLeft(t *testing.T, runtimeDir string, recordsMayStay bool) {
	t.Helper()
	recs, _ := filepath.Glob(filepath.Join(runtimeDir, "*.cgroup"))
	for _, r := range recs {
		b, _ := os.ReadFile(r)
		if !recordsMayStay {
			t.Errorf("cgroup record %s left, naming %s", r, b)
		}
		if _, err := os.Stat(strings.TrimSpace(string(b))); err == nil {
			t.Errorf("cgroup %s left", b)
		}
	}
}

// A plugin's grandchildren — one in its process group, one that called
// setsid — die with the run however it ends: a normal end, a cancel, a
// timeout. Run returns only once they are dead.
func TestEscapedGrandchildrenDieWithTheirRun(t *testing.T) {
	t.Parallel()
	ends := map[string]struct {
		then    string
		cancel  bool
		timeout time.Duration
		code    failure.Code
	}{
		"normal end": {then: "exit"},
		"cancel":     {then: "wait", cancel: true, code: failure.Cancelled},
		"timeout":    {then: "wait", timeout: 2 * time.Second, code: failure.RunTimeout},
	}
	for modeName, noCgroup := range containModes(t) {
		for endName, end := range ends {
			t.Run(modeName+"/"+endName, func(t *testing.T) {
				t.Parallel()
				runtimeDir := shortTempDir(t)
				m, err := contain.New(contain.Config{RuntimeDir: runtimeDir, DisableCgroup: noCgroup})
				if err != nil {
					t.Fatal(err)
				}
				want := contain.ModeCgroup
				if noCgroup {
					want = contain.ModeProc
				}
				requireMode(t, m, want)
				l, logs := testLauncher(t, Config{TempDir: runtimeDir, Contain: m})
				defer func() {
					if t.Failed() {
						t.Log(logs.String())
					}
				}()
				spec, pidfile := testSpec(t)
				spec.Timeout = end.timeout
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var pids []pidEntry
				err = l.Run(ctx, spec, runConfig(map[string]any{"mode": "escape", "then": end.then}), func(wire.Message) error {
					pids = readPIDs(t, pidfile)
					for _, e := range pids {
						if !alive(e.pid) {
							t.Errorf("pid %d not alive while the run is", e.pid)
						}
					}
					if end.cancel {
						cancel()
					}
					return nil
				})
				switch {
				case end.code == "" && err != nil:
					t.Fatalf("Run = %v, want success", err)
				case end.code != "" && !failure.Has(err, end.code):
					t.Fatalf("Run = %v, want code %s", err, end.code)
				}
				if len(pids) != 3 {
					t.Fatalf("recorded %d pids, want the plugin and two grandchildren", len(pids))
				}
				if pids[1].pgid != pids[0].pid || pids[2].pgid == pids[0].pid {
					t.Fatalf("grandchildren in groups %d and %d, want %d and another", pids[1].pgid, pids[2].pgid, pids[0].pid)
				}
				assertAllDead(t, pids)
				assertNoCgroupLeft(t, runtimeDir, false)
			})
		}
	}
}

// TestHostCrashThenSweep SIGKILLs a host in the middle of a run whose
// plugin has escaped grandchildren: the plugin dies with the host
// (Pdeathsig), its grandchildren outlive it, and the sweep the next start
// runs over the runtime dir kills them.
func TestHostCrashThenSweep(t *testing.T) {
	t.Parallel()
	for modeName, noCgroup := range containModes(t) {
		t.Run(modeName, func(t *testing.T) {
			t.Parallel()
			runtimeDir := shortTempDir(t)
			if !noCgroup {
				m, err := contain.New(contain.Config{RuntimeDir: runtimeDir})
				if err != nil {
					t.Fatal(err)
				}
				requireMode(t, m, contain.ModeCgroup)
			}
			// Whatever happens below, nothing the helper started outlives
			// the test (runs before the runtime dir is removed).
			t.Cleanup(func() { _, _ = contain.Sweep(runtimeDir, nil) })
			env := []string{"HELPER_RUNTIME=" + runtimeDir, "HELPER_MODE=escape"}
			if noCgroup {
				env = append(env, "HELPER_NOCGROUP=1")
			}
			host, pidfile := startHelperHost(t, env...)
			pids := readPIDs(t, pidfile)
			if len(pids) != 3 {
				t.Fatalf("recorded %d pids, want 3", len(pids))
			}
			defer func() {
				for _, e := range pids {
					_ = syscall.Kill(e.pid, syscall.SIGKILL) // whatever the test left
				}
			}()
			if err := host.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = host.Wait()

			// The plugin dies with its host; its grandchildren do not,
			// until the next start sweeps the runtime dir.
			deadline := time.Now().Add(10 * time.Second)
			for alive(pids[0].pid) {
				if time.Now().After(deadline) {
					t.Fatalf("plugin pid %d outlived its host", pids[0].pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, e := range pids[1:] {
				if !alive(e.pid) {
					t.Fatalf("grandchild %d died with the host: the test proves nothing", e.pid)
				}
			}
			killed, err := contain.Sweep(runtimeDir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if killed < 2 {
				t.Errorf("Sweep killed %d processes, want the 2 grandchildren", killed)
			}
			deadline = time.Now().Add(5 * time.Second)
			for _, e := range pids[1:] {
				for alive(e.pid) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			assertAllDead(t, pids)
			assertNoCgroupLeft(t, runtimeDir, true)
		})
	}
}

// A Manager without a runtime dir is refused.
func TestContainNeedsARuntimeDir(t *testing.T) {
	if _, err := contain.New(contain.Config{}); !errors.Is(err, contain.ErrNoRuntimeDir) {
		t.Fatalf("New without a runtime dir = %v, want ErrNoRuntimeDir", err)
	}
}
