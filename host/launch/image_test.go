package launch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/sdk/wire"
)

// A launch of a pinned image checks the file it was pinned from: the same
// bytes launch (whatever else changed), other bytes or no file are
// refused with plugin_checksum_mismatch before any child starts.
func TestLaunchPinnedImage(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		change func(t *testing.T, path string)
		code   failure.Code // "": the run succeeds
		msg    string
	}{
		"unchanged": {change: func(*testing.T, string) {}},
		"touched": {change: func(t *testing.T, path string) {
			future := time.Now().Add(time.Minute)
			if err := os.Chtimes(path, future, future); err != nil {
				t.Fatal(err)
			}
		}},
		"same build copied over it": {change: func(t *testing.T, path string) {
			copyFile(t, testconnPath, path+".new", 0o755)
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}},
		"another build renamed over it": {change: func(t *testing.T, path string) {
			copyFile(t, testconnPath, path+".new", 0o755)
			appendTo(t, path+".new", "another build")
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}, code: failure.PluginChecksumMismatch, msg: "pinned"},
		"changed in place": {change: func(t *testing.T, path string) { appendTo(t, path, "tampered") },
			code: failure.PluginChecksumMismatch, msg: "pinned"},
		"removed": {change: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, code: failure.PluginChecksumMismatch, msg: "cannot be verified"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, _ := testLauncher(t, Config{})
			spec, pidfile := testSpec(t)
			spec.Path = filepath.Join(t.TempDir(), "testconn")
			copyFile(t, testconnPath, spec.Path, 0o755)
			spec.Image = pinned(t, spec.Path)
			tc.change(t, spec.Path)
			n := 0
			err := l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "records", "n": 2}), func(m wire.Message) error {
				n += len(m.Records)
				return nil
			})
			if tc.code == "" {
				if err != nil || n != 2 {
					t.Fatalf("Run = %v with %d records, want 2 records", err, n)
				}
				return
			}
			var fe *failure.Error
			if !errors.As(err, &fe) || fe.Code != tc.code || !strings.Contains(fe.Message, tc.msg) || !strings.Contains(fe.Message, spec.Path) {
				t.Fatalf("Run = %v, want %s naming %s and %q", err, tc.code, spec.Path, tc.msg)
			}
			if pids := readPIDs(t, pidfile); len(pids) != 0 {
				t.Errorf("a refused launch started %d children", len(pids))
			}
		})
	}
}

// Concurrent launches of one pinned image run that image itself — every
// child's executable is the host's one sealed memfd, no copy — and the
// memfd stays open while they run though its owner closed it (as a rescan
// does), and is closed when the last one ends. A launch of the closed
// image verifies a copy of its own and leaves nothing open either.
func TestConcurrentLaunchesShareOneImage(t *testing.T) {
	// Not parallel: it counts this process's descriptors.
	const name, launches = "testconn-shared", 3
	l, _ := testLauncher(t, Config{})
	spec, pidfile := testSpec(t)
	spec.Path = filepath.Join(t.TempDir(), name)
	copyFile(t, testconnPath, spec.Path, 0o755)
	im := pinned(t, spec.Path)
	spec.Image = im
	fds := imageFDs(t, name)
	if len(fds) != 1 {
		t.Skipf("%d memfds named %s after Pin (no executable memfd?)", len(fds), name)
	}
	image, err := os.Stat(fds[0])
	if err != nil {
		t.Fatal(err)
	}

	running := make(chan struct{}, launches)
	stop := make(chan struct{})
	errStop := errors.New("stop")
	var wg sync.WaitGroup
	for range launches {
		wg.Go(func() {
			err := l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "hang"}), func(wire.Message) error {
				running <- struct{}{}
				<-stop
				return errStop
			})
			if !errors.Is(err, errStop) {
				t.Errorf("Run = %v, want the emit error", err)
			}
		})
	}
	for range launches {
		<-running
	}
	pids := readPIDs(t, pidfile)
	if len(pids) != launches {
		t.Fatalf("%d children, want %d", len(pids), launches)
	}
	for _, p := range pids {
		exe := "/proc/" + strconv.Itoa(p.pid) + "/exe"
		fi, err := os.Stat(exe)
		link, _ := os.Readlink(exe)
		if err != nil || !os.SameFile(fi, image) || !strings.Contains(link, "memfd:connhost:"+name) {
			t.Errorf("child %d execs %q (%v), not the pinned memfd", p.pid, link, err)
		}
	}
	im.Close() // the catalog replaced the entry
	if n := len(imageFDs(t, name)); n != 1 {
		t.Errorf("%d memfds open while launches hold the image, want 1", n)
	}
	close(stop)
	wg.Wait()
	if fds := imageFDs(t, name); len(fds) != 0 {
		t.Errorf("memfds left open after the last launch: %v", fds)
	}

	// An entry handed out before the rescan still launches, verified.
	if err := l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "records", "n": 1}), func(wire.Message) error { return nil }); err != nil {
		t.Fatalf("Run of a closed image: %v", err)
	}
	if fds := imageFDs(t, name); len(fds) != 0 {
		t.Errorf("memfds left open after a launch of a closed image: %v", fds)
	}
	appendTo(t, spec.Path, "tampered")
	if err := l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "records", "n": 1}), func(wire.Message) error { return nil }); !failure.Has(err, failure.PluginChecksumMismatch) {
		t.Fatalf("Run of a closed image of a changed file = %v, want plugin_checksum_mismatch", err)
	}
}

func TestSpecImageMustMatch(t *testing.T) {
	t.Parallel()
	spec, _ := testSpec(t)
	spec.Image = pinned(t, testconnPath)
	if err := spec.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	spec.SHA256 = make([]byte, 32)
	if err := spec.Validate(); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("Validate with another sum = %v, want ErrInvalidSpec", err)
	}
}

// imageFDs returns this process's descriptors of memfds named after name.
func imageFDs(t *testing.T, name string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var out []string
	for _, e := range ents {
		p := "/proc/self/fd/" + e.Name()
		if link, err := os.Readlink(p); err == nil && strings.HasPrefix(link, "/memfd:connhost:"+name+" ") {
			out = append(out, p)
		}
	}
	return out
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
