package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// The runtime dir is 0700, emptied at start (an earlier process's
// plugin socket dirs and binary copies), and reached through a short
// link when its own path cannot hold a Unix socket.
func TestPrepareRuntimeDir(t *testing.T) {
	t.Parallel()
	short, err := os.MkdirTemp("", "rt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(short) })
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 80))
	tests := map[string]struct {
		dataDir  string
		wantLink bool
	}{
		"short data dir": {dataDir: short},
		"long data dir":  {dataDir: long, wantLink: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(tc.dataDir, RuntimeDirName)
			// What a killed host left: a socket dir and a binary copy.
			for _, p := range []string{"plugin-dir123/plugin456", "connhost-exec-7/demo"} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 { // and a second start reuses what the first made
				got, err := prepareRuntimeDir(tc.dataDir, hclog.NewNullLogger())
				if err != nil {
					t.Fatal(err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("%d entries left in the runtime dir", len(ents))
				}
				if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
					t.Fatalf("runtime dir %v, %v", fi, err)
				}
				if len(got) > maxRuntimeDir {
					t.Fatalf("the path plugins get is %d bytes: %s", len(got), got)
				}
				if resolved, err := filepath.EvalSymlinks(got); err != nil || resolved != dir {
					t.Fatalf("%s resolves to %s (%v), want %s", got, resolved, err, dir)
				}
				if isLink := got != dir; isLink != tc.wantLink {
					t.Fatalf("path %s: link %v, want %v", got, isLink, tc.wantLink)
				}
				if tc.wantLink {
					t.Cleanup(func() { _ = os.Remove(got) })
				}
			}
		})
	}
}

// The short link goes at shutdown, unless another data dir's host has
// taken the name since (then it points elsewhere and stays).
func TestRemoveShortLink(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	ours, theirs := filepath.Join(tmp, "ours"), filepath.Join(tmp, "theirs")
	tests := map[string]struct {
		target   string
		wantGone bool
	}{
		"ours":         {target: ours, wantGone: true},
		"taken since":  {target: theirs},
		"already gone": {wantGone: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			link := filepath.Join(tmp, strings.ReplaceAll(name, " ", "-"))
			if tc.target != "" {
				if err := os.Symlink(tc.target, link); err != nil {
					t.Fatal(err)
				}
			}
			removeShortLink(link, ours)
			_, err := os.Lstat(link)
			if gone := os.IsNotExist(err); gone != tc.wantGone {
				t.Errorf("link gone: %v, want %v", gone, tc.wantGone)
			}
		})
	}
}
