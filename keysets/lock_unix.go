//go:build unix

package keysets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPollInterval is how often a blocked lock attempt retries; flock has
// no timeout, and polling lets ctx cancel the wait.
const lockPollInterval = 20 * time.Millisecond

// lockPath takes an exclusive advisory lock on path (created 0600 if
// missing) and returns its release. The lock file is left in place:
// removing it would let a waiter lock an unlinked inode.
func lockPath(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keysets: open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("keysets: lock %s: %w", path, err)
		}
		t := time.NewTimer(lockPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			_ = f.Close()
			return nil, fmt.Errorf("keysets: waiting for lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}
