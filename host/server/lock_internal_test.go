//go:build unix

package server

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A lock file a refused start created is removed while still locked, and
// the next start locks a new file at the path; one that was there stays.
func TestLockDataDirDropsOnlyWhatItCreated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, LockFile)
	l1, err := lockDataDir(dir)
	if err != nil || !l1.created {
		t.Fatalf("first lock: %v, created %v", err, l1 != nil && l1.created)
	}
	if _, err := lockDataDir(dir); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("second lock while held = %v, want ErrDataDirInUse", err)
	}
	l1.dropCreated()
	l1.release()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the created lock file stayed: %v", err)
	}
	l2, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	l2.release()
	l3, err := lockDataDir(dir)
	if err != nil || l3.created {
		t.Fatalf("lock of an existing file: %v, created %v", err, l3 != nil && l3.created)
	}
	l3.dropCreated()
	l3.release()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a lock file this process did not create was removed: %v", err)
	}
}
