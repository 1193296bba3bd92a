package keysets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxKeysetFileSize bounds what is read from a keyset file. A keyset of a
// thousand AES-256-GCM keys is well under 200 KiB of JSON.
const maxKeysetFileSize = 1 << 20

// insecureBits are the permission bits that must be clear on key files.
const insecureBits fs.FileMode = 0o077

// readSecureFile reads a key file after checking, on the opened descriptor
// (so the check and the read see the same file), that it is a regular file
// no one but its owner may access. what names the file in errors.
func readSecureFile(path, what string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keysets: %s file %s is not a regular file", what, path)
	}
	if fi.Mode().Perm()&insecureBits != 0 {
		return nil, &PermissionError{Path: path, Mode: fi.Mode().Perm(), File: what}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		clear(data)
		return nil, fmt.Errorf("keysets: %s file %s is larger than %d bytes", what, path, limit)
	}
	return data, nil
}

// writeFileAtomic replaces (or, with noClobber, creates) path with data:
// a 0600 temporary file in the same directory, fsync, then rename (or hard
// link when the target must not exist), then fsync of the directory so the
// new name survives a crash. Readers see the old file or the new one, never
// a torn write; the temporary file never outlives the call.
func writeFileAtomic(path string, data []byte, noClobber bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("keysets: create temporary file: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
		}
		// After a rename the temporary name is gone and this is a no-op;
		// after a link or any failure it removes the leftover.
		_ = os.Remove(tmpName)
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("keysets: chmod temporary file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("keysets: write temporary file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("keysets: sync temporary file: %w", err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return fmt.Errorf("keysets: close temporary file: %w", err)
	}

	if noClobber {
		// link(2) fails with EEXIST atomically, unlike a check then rename.
		if err := os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%w: %s", ErrExists, path)
			}
			// Filesystems without hard links: best effort check, then
			// rename (callers that need mutual exclusion hold the lock).
			if _, statErr := os.Lstat(path); statErr == nil {
				return fmt.Errorf("%w: %s", ErrExists, path)
			}
			if err := os.Rename(tmpName, path); err != nil {
				return fmt.Errorf("keysets: rename into place: %w", err)
			}
		}
	} else if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("keysets: rename into place: %w", err)
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so a rename or link in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("keysets: open directory for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("keysets: sync directory: %w", err)
	}
	return nil
}
