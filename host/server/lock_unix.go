//go:build unix

package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive advisory lock on the data dir's
// LockFile for the life of the process and returns its release. A second
// `connhost serve` on the same data dir fails with ErrDataDirInUse
// instead of reclaiming the first one's leases as a crashed host's. The
// lock file stays in place: removing it would let a waiter lock an
// unlinked inode.
func lockDataDir(dataDir string) (func(), error) {
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
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
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
