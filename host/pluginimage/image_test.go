package pluginimage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// plant writes content to an executable file in a temp dir.
func plant(t *testing.T, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// replace puts content at path through a rename: a new inode.
func replace(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

func TestPinSealsAReadOnlyMemfd(t *testing.T) {
	content := []byte("#!/bin/sh\nexit 0\n")
	path := plant(t, content)
	im, err := Pin(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if !im.InMemory() {
		t.Skip("no executable memfd on this kernel")
	}
	if !bytes.Equal(im.SHA256(), sum(content)) {
		t.Errorf("SHA256 = %x, want %x", im.SHA256(), sum(content))
	}
	fd := int(im.file.Fd())
	got, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got&seals != seals {
		t.Errorf("seals = %#x, want %#x set", got, seals)
	}
	// Even a writable descriptor of the memfd cannot change it.
	w, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteAt([]byte("x"), 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("write to the sealed memfd: %v, want EPERM", err)
	}
	if err := w.Truncate(1); err == nil {
		t.Error("shrinking the sealed memfd succeeded")
	}
	if _, err := w.WriteAt([]byte("x"), int64(len(content))); err == nil {
		t.Error("growing the sealed memfd succeeded")
	}
	// F_SEAL_SEAL forbids adding seals (or lifting any: there is no way).
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_FUTURE_WRITE); !errors.Is(err, unix.EPERM) {
		t.Errorf("F_ADD_SEALS after F_SEAL_SEAL: %v, want EPERM", err)
	}
	buf := make([]byte, len(content)+1)
	n, _ := im.file.ReadAt(buf, 0)
	if !bytes.Equal(buf[:n], content) {
		t.Errorf("memfd holds %q, want %q", buf[:n], content)
	}
}

// Each change to the file after Pin, and what Verify makes of it: the
// number of times it reads the file again and of changes reported. A
// second Verify of the same state reads and reports nothing more.
func TestVerifyAfterChanges(t *testing.T) {
	t.Parallel()
	orig := []byte("build one")
	other := []byte("build two")
	for name, tc := range map[string]struct {
		change   func(t *testing.T, path string)
		found    []byte // the sum a *ChangedError reports; nil: no error
		gone     bool   // a *ChangedError without a sum
		reads    int
		reported int
	}{
		"unchanged": {change: func(*testing.T, string) {}},
		"touched": {change: func(t *testing.T, path string) {
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(path, future, future); err != nil {
				t.Fatal(err)
			}
		}, reads: 1},
		"same bytes, new inode": {change: func(t *testing.T, path string) { replace(t, path, orig) }, reads: 1},
		"chmod": {change: func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, reads: 1},
		"other bytes, new inode": {change: func(t *testing.T, path string) { replace(t, path, other) },
			found: sum(other), reads: 1, reported: 1},
		"appended in place": {change: func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte("!"))
			f.Close()
		}, found: sum(append(append([]byte{}, orig...), '!')), reads: 1, reported: 1},
		"removed": {change: func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, gone: true, reported: 1},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := plant(t, orig)
			var reports atomic.Int32
			im, err := Pin(path, Options{OnChange: func(*ChangedError) { reports.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			tc.change(t, path)
			for i := range 2 {
				err := im.Verify()
				var ce *ChangedError
				switch {
				case tc.found == nil && !tc.gone:
					if err != nil {
						t.Fatalf("Verify %d = %v, want nil", i, err)
					}
				case !errors.As(err, &ce):
					t.Fatalf("Verify %d = %v, want a *ChangedError", i, err)
				case tc.gone && (ce.Found != nil || !errors.Is(err, fs.ErrNotExist)):
					t.Errorf("Verify %d = %+v, want the file gone", i, ce)
				case !tc.gone && !bytes.Equal(ce.Found, tc.found):
					t.Errorf("Verify %d found %x, want %x", i, ce.Found, tc.found)
				case !bytes.Equal(ce.Pinned, sum(orig)) || ce.Path != path:
					t.Errorf("Verify %d = %+v, want path %s pinned %x", i, ce, path, sum(orig))
				}
			}
			if im.reads != tc.reads || int(reports.Load()) != tc.reported {
				t.Errorf("read the file %d times, reported %d changes; want %d, %d", im.reads, reports.Load(), tc.reads, tc.reported)
			}
			// Whatever the file holds now, the image holds the pinned bytes.
			if l, err := im.Acquire(); err == nil {
				l.Release()
			}
			if !bytes.Equal(im.SHA256(), sum(orig)) {
				t.Errorf("image sum changed to %x", im.SHA256())
			}
		})
	}
}

// A change is reported once however many launches it refuses; the file put
// back launches again, and a new change is reported again.
func TestChangeReportedOncePerChange(t *testing.T) {
	t.Parallel()
	orig, other := []byte("v1"), []byte("v2")
	path := plant(t, orig)
	var reports []*ChangedError
	var mu sync.Mutex
	im, err := Pin(path, Options{OnChange: func(ce *ChangedError) {
		mu.Lock()
		reports = append(reports, ce)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	replace(t, path, other)
	var wg sync.WaitGroup
	var refused atomic.Int32
	for range 16 {
		wg.Go(func() {
			if l, err := im.Acquire(); err != nil {
				refused.Add(1)
			} else {
				l.Release()
			}
		})
	}
	wg.Wait()
	if refused.Load() != 16 || len(reports) != 1 {
		t.Fatalf("%d of 16 launches refused, %d reports; want 16, 1", refused.Load(), len(reports))
	}
	replace(t, path, orig)
	l, err := im.Acquire()
	if err != nil {
		t.Fatalf("Acquire with the pinned bytes back: %v", err)
	}
	l.Release()
	replace(t, path, other)
	if _, err := im.Acquire(); err == nil {
		t.Fatal("Acquire after the second change succeeded")
	}
	if len(reports) != 2 || !bytes.Equal(reports[1].Found, sum(other)) {
		t.Errorf("reports = %+v, want a second report of %x", reports, sum(other))
	}
}

func TestPinWant(t *testing.T) {
	path := plant(t, []byte("bytes"))
	before := openFDs(t)
	_, err := Pin(path, Options{Want: sum([]byte("other bytes"))})
	var ce *ChangedError
	if !errors.As(err, &ce) || !bytes.Equal(ce.Found, sum([]byte("bytes"))) || !strings.Contains(err.Error(), "pinned") {
		t.Fatalf("Pin with the wrong sum = %v, want a *ChangedError naming both sums", err)
	}
	if n := openFDs(t); n != before {
		t.Errorf("%d descriptors open after a refused Pin, want %d", n, before)
	}
	im, err := Pin(path, Options{Want: sum([]byte("bytes"))})
	if err != nil {
		t.Fatal(err)
	}
	im.Close()
	if _, err := Pin(filepath.Join(t.TempDir(), "missing"), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Pin of a missing file = %v, want ErrNotExist", err)
	}
}

// The copy lives while anyone holds it: Close with launches running
// leaves it open, the last Release frees it, and nothing is left open.
func TestLifetime(t *testing.T) {
	for _, forceDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memfd", true: "dir"}[forceDir], func(t *testing.T) {
			tmp := t.TempDir()
			path := plant(t, []byte("content"))
			before := openFDs(t)
			im, err := Pin(path, Options{TempDir: tmp, forceDir: forceDir})
			if err != nil {
				t.Fatal(err)
			}
			var leases []*Lease
			for range 3 {
				l, err := im.Acquire()
				if err != nil {
					t.Fatal(err)
				}
				leases = append(leases, l)
			}
			im.Close()
			im.Close()
			if _, err := os.Stat(leases[0].Path()); err != nil && forceDir {
				t.Fatalf("copy gone while leases hold it: %v", err)
			}
			for _, f := range leases[0].Files() {
				if _, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil {
					t.Fatalf("memfd closed while leases hold it: %v", err)
				}
			}
			for _, l := range leases {
				l.Release()
				l.Release()
			}
			if n := openFDs(t); n != before {
				t.Errorf("%d descriptors open after the last release, want %d", n, before)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("left in TempDir: %v", ents)
			}
			if _, err := im.Acquire(); !errors.Is(err, ErrClosed) {
				t.Errorf("Acquire after the last release = %v, want ErrClosed", err)
			}
		})
	}
}

// Both kinds of copy exec: a child runs the test binary itself, pinned,
// through the lease's path and files.
func TestLeaseExecs(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, forceDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memfd", true: "dir"}[forceDir], func(t *testing.T) {
			tmp := t.TempDir()
			im, err := Pin(self, Options{TempDir: tmp, forceDir: forceDir})
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if im.InMemory() == forceDir {
				t.Skipf("InMemory = %v", im.InMemory())
			}
			if forceDir {
				fi, err := os.Stat(im.exe)
				di, derr := os.Stat(im.dir)
				if err != nil || derr != nil || fi.Mode().Perm() != 0o500 || di.Mode().Perm() != 0o700 ||
					filepath.Dir(im.dir) != tmp {
					t.Fatalf("copy %s (%v, %v) in %s (%v, %v): want 0500 in a 0700 dir under %s", im.exe, fi, err, im.dir, di, derr, tmp)
				}
			}
			l, err := im.Acquire()
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			cmd := &exec.Cmd{Path: l.Path(), Args: []string{"pinned", "-test.run=^$"}, ExtraFiles: l.Files()}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("exec %s: %v\n%s", l.Path(), err, out)
			}
		})
	}
}
