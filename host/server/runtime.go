package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
)

// RuntimeDirName is the host's runtime dir inside the data dir: each
// plugin launch's private socket directory (and, where memfd is missing,
// the verified copy of its binary) lives there, so what a crashed host
// leaves behind is in one place, swept at the next start.
const RuntimeDirName = "run"

// maxRuntimeDir bounds the runtime dir's path: go-plugin makes
// <dir>/plugin-dirNNNNNNNNNN/pluginNNNNNNNNNN, and a Unix socket's path
// holds at most 107 bytes.
const maxRuntimeDir = 107 - len("/plugin-dir0123456789/plugin0123456789")

// prepareRuntimeDir creates the runtime dir (0700) and empties it: the
// caller holds the data dir's lock, so whatever is there was left by an
// earlier process of this data dir that did not stop cleanly. It returns
// the path plugins reach it by: the dir itself, or — when that path is
// too long for a Unix socket — a short symbolic link to it in the
// system's temp dir, named after it (one per data dir, reused).
func prepareRuntimeDir(dataDir string, log hclog.Logger) (string, error) {
	dir := filepath.Join(dataDir, RuntimeDirName)
	entries, err := os.ReadDir(dir)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return "", fmt.Errorf("server: read runtime dir: %w", err)
	default:
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return "", fmt.Errorf("server: sweep runtime dir: %w", err)
			}
		}
		if len(entries) > 0 {
			log.Warn("swept what an earlier process left in the runtime dir (it did not stop cleanly)",
				"path", dir, "entries", len(entries))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("server: create runtime dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("server: runtime dir mode: %w", err)
	}
	if len(dir) <= maxRuntimeDir {
		return dir, nil
	}
	return shortLink(dir)
}

// shortLink makes (or reuses) os.TempDir()/connhost-run-<hash of dir>,
// a symbolic link to dir. The sockets stay in dir, which only this user
// can enter; a link someone else made there is refused.
func shortLink(dir string) (string, error) {
	sum := sha256.Sum256([]byte(dir))
	link := filepath.Join(os.TempDir(), "connhost-run-"+hex.EncodeToString(sum[:6]))
	if len(link) > maxRuntimeDir {
		return "", fmt.Errorf("%w: the runtime dir %s (%d bytes) and the temp dir are too long for a plugin's Unix socket path (107 bytes; at most %d for the dir): choose a shorter --data-dir or TMPDIR",
			ErrInvalidConfig, dir, len(dir), maxRuntimeDir)
	}
	if target, err := os.Readlink(link); err == nil && target == dir {
		return link, nil
	}
	if err := os.Remove(link); err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("server: the runtime dir's short link %s exists and cannot be replaced: %w", link, err)
	}
	if err := os.Symlink(dir, link); err != nil {
		return "", fmt.Errorf("server: link the runtime dir: %w", err)
	}
	return link, nil
}

// removeShortLink removes the short link made by shortLink, if it still
// points at dir (another data dir's host may have taken the name since).
func removeShortLink(link, dir string) {
	if target, err := os.Readlink(link); err == nil && target == dir {
		_ = os.Remove(link)
	}
}
