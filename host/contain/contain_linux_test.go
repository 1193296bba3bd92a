package contain

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const helperEnv = "CONTAIN_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(adoptHelper(mode == "proc"))
	}
	os.Exit(m.Run())
}

// adoptHelper is a host: a subreaper that starts a shell which leaves a
// setsid sleep behind and exits. It reports whether it adopted the sleep,
// then closes the scope and reports whether the sleep is dead and reaped
// (gone from the process table, not a zombie of the host).
func adoptHelper(noCgroup bool) int {
	dir, err := os.MkdirTemp("", "contain")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(dir)
	m, err := New(Config{RuntimeDir: dir, Subreaper: true, DisableCgroup: noCgroup})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer m.Close()
	mode, _ := m.Mode()
	fmt.Println("mode", mode)
	s, err := m.Begin(dir, "")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	cmd := exec.Command("/bin/sh", "-c", "setsid /bin/sleep 300 </dev/null >/dev/null 2>&1 & echo $!")
	cmd.Dir = dir
	out, _ := cmd.StdoutPipe()
	if err := s.Start(cmd); err != nil {
		fmt.Println(err)
		return 1
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	_ = cmd.Wait() // the shell exits; the sleep is orphaned
	s.Exited()
	adopted := false
	for range 500 {
		if p, ok := readProc(pid); ok && p.ppid == os.Getpid() {
			adopted = true
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	fmt.Println("adopted", adopted)
	if err := s.Close(); err != nil {
		fmt.Println(err)
		return 1
	}
	_, ok := readProc(pid)
	fmt.Println("gone", !ok)
	return 0
}

// With Subreaper, a process a plugin left behind is adopted by the host,
// and Close kills and reaps it: no zombie is left.
func TestSubreaperAdoptsAndReaps(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"cgroup", "proc"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			got := string(out)
			if !strings.Contains(got, "mode "+mode) {
				if mode == "cgroup" && !(os.Getenv("CI") == "true" && os.Geteuid() == 0) {
					t.Skipf("no cgroup mode here: %s", got)
				}
				t.Fatalf("helper ran in another mode:\n%s", got)
			}
			for _, want := range []string{"adopted true", "gone true"} {
				if !strings.Contains(got, want) {
					t.Errorf("helper output lacks %q:\n%s", want, got)
				}
			}
		})
	}
}

func TestUnescapeMount(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/sys/fs/cgroup":          "/sys/fs/cgroup",
		`/mnt/with\040space`:      "/mnt/with space",
		`/a\134b`:                 `/a\b`,
		`/trailing\04`:            `/trailing\04`,
		`/not\999octal`:           `/not\999octal`,
		`/sys/fs/cgroup/unified/`: "/sys/fs/cgroup/unified/",
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

// A record that does not name a connhost cgroup is refused, never acted
// on: the sweep must not kill a cgroup it did not make.
func TestSweepRefusesForeignRecords(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	for name, path := range map[string]string{
		"relative":       "connhost-abc",
		"not connhost's": "/sys/fs/cgroup/unified/system.slice",
		"not a cgroup":   filepath.Join(outside, "connhost-abc"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "not a cgroup" {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x"+recordSuffix), []byte(path+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			n, err := Sweep(dir, nil)
			if err == nil || n != 0 {
				t.Fatalf("Sweep = %d, %v; want a refusal", n, err)
			}
			if name == "not a cgroup" {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("the sweep removed %s: %v", path, err)
				}
			}
		})
	}
}

// A record of a cgroup that no longer exists (the host died between the
// record and the mkdir, or after the rmdir) is skipped, and left in place.
func TestSweepSkipsRecordOfAGoneCgroup(t *testing.T) {
	t.Parallel()
	mount, _, err := cgroup2Mount()
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	rec := filepath.Join(dir, "x"+recordSuffix)
	if err := os.WriteFile(rec, []byte(filepath.Join(mount, cgroupPrefix+"gone-0000")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := Sweep(dir, nil); err != nil || n != 0 {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if _, err := os.Stat(rec); err != nil {
		t.Errorf("Sweep removed the record (the runtime dir's sweep does): %v", err)
	}
}
