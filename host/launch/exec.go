package launch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// privateExec is a verified private copy of a plugin binary: the exact bytes
// whose SHA-256 matched the pinned checksum, in a place no one else can
// swap. Exec'ing it closes the window go-plugin's SecureConfig leaves
// between hashing a path and exec'ing that path.
type privateExec struct {
	path  string     // what to exec
	files []*os.File // ExtraFiles the child needs to resolve path
	close func()     // releases the copy; the running child keeps its image
}

// checksumError reports a binary whose bytes do not hash to the pinned sum.
type checksumError struct {
	path      string
	got, want []byte
}

func (e *checksumError) Error() string {
	return fmt.Sprintf("plugin binary %s has sha256 %s, pinned %s", e.path, hex.EncodeToString(e.got), hex.EncodeToString(e.want))
}

// copyHashed copies the file at src to dst and returns the SHA-256 of the
// bytes copied. A fresh hash per call: a reused hash.Hash keeps state, the
// go-plugin SecureConfig pitfall DESIGN section 12 describes.
func copyHashed(dst io.Writer, src string) ([]byte, error) {
	f, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// dirExec writes the verified copy into a fresh 0700 directory under
// tempDir. It is the portable fallback for systems without memfd.
func dirExec(src string, want []byte, name, tempDir string) (*privateExec, error) {
	dir, err := os.MkdirTemp(tempDir, "connhost-exec-")
	if err != nil {
		return nil, err
	}
	dst := filepath.Join(dir, safeFileName(name))
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o500)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	sum, err := copyHashed(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !bytes.Equal(sum, want) {
		err = &checksumError{path: src, got: sum, want: want}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &privateExec{path: dst, close: func() { os.RemoveAll(dir) }}, nil
}

// safeFileName turns a plugin name into one path element.
func safeFileName(name string) string {
	name = filepath.Base(name)
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r < 0x20 {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		return "plugin"
	}
	return name
}
