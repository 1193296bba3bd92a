//go:build unix

package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// dirLock is a held lock on a data dir's LockFile.
type dirLock struct {
	f       *os.File
	path    string
	created bool // this process created the lock file
}

// lockDataDir takes an exclusive advisory lock on the data dir's
// LockFile for the life of the process. A second `connhost serve` on the
// same data dir fails with ErrDataDirInUse instead of reclaiming the first
// one's leases as a crashed host's. A start that is refused removes the
// lock file it created (dropCreated), so a refusal leaves the data dir as
// it found it; a lock taken on a file that was removed meanwhile is
// therefore not trusted: the file the path names must be the one locked,
// else the lock is taken again on the new one.
func lockDataDir(dataDir string) (*dirLock, error) {
	path := filepath.Join(dataDir, LockFile)
	for {
		created := true
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			created = false
			f, err = os.OpenFile(path, os.O_RDWR, 0o600)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed between the two opens
			}
		}
		if err != nil {
			return nil, fmt.Errorf("server: open lock file: %w", err)
		}
		for {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		switch {
		case errors.Is(err, syscall.EWOULDBLOCK):
			_ = f.Close()
			return nil, fmt.Errorf("%w: %s", ErrDataDirInUse, dataDir)
		case err != nil:
			_ = f.Close()
			return nil, fmt.Errorf("server: lock %s: %w", path, err)
		}
		held, ferr := f.Stat()
		named, perr := os.Stat(path)
		if ferr == nil && perr == nil && os.SameFile(held, named) {
			return &dirLock{f: f, path: path, created: created}, nil
		}
		// A refused start removed the file after this process opened it.
		_ = f.Close()
	}
}

// release unlocks. The lock file stays in place.
func (l *dirLock) release() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}

// dropCreated removes the lock file, still locked, when this process
// created it: a refused start leaves no file behind. Call release after.
func (l *dirLock) dropCreated() {
	if l.created {
		_ = os.Remove(l.path)
	}
}
