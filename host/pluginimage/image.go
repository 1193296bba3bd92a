// Package pluginimage pins plugin binaries: Pin reads a file once, hashing
// it with a fresh SHA-256 while copying it into a private, immutable copy
// (an Image), and every launch of that plugin execs the copy. The bytes
// that run are exactly the bytes that were hashed, and no launch copies or
// hashes the binary again.
//
// On Linux the copy is a memfd created with MFD_ALLOW_SEALING, sealed with
// F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW and F_SEAL_WRITE, and reopened
// read-only through /proc/self/fd: no one, the host included, can change
// it, it lives in memory, and it needs no clean-up if the host dies. A
// child execs it as /proc/self/fd/3 (the image is its first ExtraFiles
// entry), which also works for #! scripts. Where executable memfds are
// unavailable (other systems, kernels or policies that forbid them, no
// /proc), the copy is a 0500 file in a fresh 0700 directory under
// Options.TempDir, removed with the image.
//
// An Image records the identity of the file it was pinned from (device,
// inode, size, modification and change times). Acquire, called once per
// launch, compares the file's identity now with it — one stat — and only
// when it differs reads the file again: the same bytes (a touch, a copy of
// the same build) update the recorded identity and the launch goes on;
// other bytes, or a file gone or unreadable, refuse the launch with a
// *ChangedError and are reported once per change to Options.OnChange. The
// identity check only decides whether to report a change: whatever the
// file holds, a launch runs the pinned bytes or nothing.
//
// An Image is reference counted. Pin returns it holding its owner's
// reference, which Close drops (the catalog closes an image when a rescan
// replaces its entry); each launch holds a Lease from Acquire until the
// child is gone. The copy is freed when the last reference goes, never
// while a launch may still be passing it to a child.
package pluginimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrClosed is returned by Acquire once the image has been freed: its
// owner closed it and no launch holds it any more.
var ErrClosed = errors.New("pluginimage: image closed")

// Options configures Pin. The zero value is usable.
type Options struct {
	// Name labels the copy (the memfd's name, the fallback file's name).
	// Default: the base name of the path.
	Name string
	// TempDir holds the fallback copy where memfd is unavailable. Default
	// os.TempDir().
	TempDir string
	// Want, when set, is the SHA-256 the file must have: Pin returns a
	// *ChangedError, and keeps no copy, when it hashes to anything else.
	Want []byte
	// OnChange, when set, is told of each change of the file that Acquire
	// or Verify finds, once per change (not once per refused launch). It
	// is called on the launching goroutine with no lock held and should
	// return quickly.
	OnChange func(*ChangedError)

	// forceDir makes Pin use the directory copy even where memfd works,
	// for the tests of the fallback.
	forceDir bool
}

// ChangedError reports a pinned binary whose file no longer holds the
// pinned bytes: it hashes to another sum (Found), or it is gone or
// unreadable (Err).
type ChangedError struct {
	// Path is the file.
	Path string
	// Pinned is the SHA-256 pinned for it; Found is the SHA-256 of its
	// bytes now, nil when they could not be read.
	Pinned, Found []byte
	// Err is why the file could not be read, nil when Found is set.
	Err error
}

func (e *ChangedError) Error() string {
	if e.Found == nil {
		return fmt.Sprintf("plugin binary %s cannot be verified against pinned sha256 %s: %v",
			e.Path, hex.EncodeToString(e.Pinned), e.Err)
	}
	return fmt.Sprintf("plugin binary %s has sha256 %s, pinned %s",
		e.Path, hex.EncodeToString(e.Found), hex.EncodeToString(e.Pinned))
}

// Unwrap returns Err.
func (e *ChangedError) Unwrap() error { return e.Err }

// Image is a pinned plugin binary. It is safe for concurrent use.
type Image struct {
	src      string
	name     string
	sum      []byte
	exe      string   // what a child execs
	file     *os.File // the read-only memfd, the child's ExtraFiles[0]; nil for a directory copy
	dir      string   // the fallback copy's directory; "" for a memfd
	onChange func(*ChangedError)

	mu    sync.Mutex
	refs  int      // the owner's (until Close) plus one per Lease
	owned bool     // Close has not run
	id    identity // the source's identity when last found to hold sum

	// vmu serialises re-reading the source, so concurrent launches that
	// find the same change read and report it once.
	vmu   sync.Mutex
	last  *seenChange // the change last reported; guarded by vmu
	reads int         // times the source was read again; guarded by vmu
}

// seenChange is a change already reported: the source's state when it was
// found, and the error every launch gets while that state lasts.
type seenChange struct {
	id     identity
	statOK bool
	err    *ChangedError
}

// Pin reads the file at path once, hashing it while copying it into a new
// Image. The file's identity is taken from the open file before it is
// read, so a change during the read is seen by the next Acquire. Errors
// opening or reading path are returned as they are (*fs.PathError).
func Pin(path string, opts Options) (*Image, error) {
	name := opts.Name
	if name == "" {
		name = filepath.Base(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	id, err := fileIdentity(f)
	if err != nil {
		return nil, err
	}
	im := &Image{src: path, name: safeFileName(name), id: id, refs: 1, owned: true, onChange: opts.OnChange}
	err = errNoMemfd
	if !opts.forceDir {
		err = im.copyToMemfd(f)
	}
	if errors.Is(err, errNoMemfd) {
		if _, err = f.Seek(0, io.SeekStart); err == nil {
			err = im.copyToDir(f, opts.TempDir)
		}
	}
	if err != nil {
		return nil, err
	}
	if opts.Want != nil && !bytes.Equal(im.sum, opts.Want) {
		im.free()
		return nil, &ChangedError{Path: path, Pinned: bytes.Clone(opts.Want), Found: im.sum}
	}
	return im, nil
}

// Path returns the file the image was pinned from.
func (im *Image) Path() string { return im.src }

// SHA256 returns the pinned checksum.
func (im *Image) SHA256() []byte { return bytes.Clone(im.sum) }

// InMemory reports whether the copy is a sealed memfd (false: a file in a
// private directory).
func (im *Image) InMemory() bool { return im.file != nil }

// Acquire checks that the source file still holds the pinned bytes (see
// the package doc) and returns a Lease on the image for one launch. It
// returns ErrClosed once the image is freed, and a *ChangedError when the
// file changed.
func (im *Image) Acquire() (*Lease, error) {
	im.mu.Lock()
	if im.refs == 0 {
		im.mu.Unlock()
		return nil, ErrClosed
	}
	im.refs++
	im.mu.Unlock()
	l := &Lease{im: im}
	if err := im.Verify(); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Verify reports whether the source file still holds the pinned bytes: nil,
// or a *ChangedError. It stats the file and reads it again only when its
// identity changed since it was last found to hold them.
func (im *Image) Verify() error {
	id, err := statIdentity(im.src)
	if err == nil && id == im.identity() {
		return nil
	}
	ce, report := im.recheck()
	if report && im.onChange != nil {
		im.onChange(ce)
	}
	if ce != nil {
		return ce
	}
	return nil
}

func (im *Image) identity() identity {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.id
}

// recheck is Verify's slow path: it re-reads the source unless the state
// found is the change last reported. report says ce is a new change.
func (im *Image) recheck() (ce *ChangedError, report bool) {
	im.vmu.Lock()
	defer im.vmu.Unlock()
	id, serr := statIdentity(im.src)
	if serr == nil && id == im.identity() {
		return nil, false // another launch re-read it meanwhile
	}
	if l := im.last; l != nil && l.id == id && l.statOK == (serr == nil) {
		return l.err, false
	}
	ce = &ChangedError{Path: im.src, Pinned: im.sum}
	if serr != nil {
		ce.Err = serr
	} else {
		im.reads++
		sum, fid, err := hashFile(im.src)
		switch {
		case err != nil:
			ce.Err = err
		case bytes.Equal(sum, im.sum):
			// Same bytes (a touch, the same build copied over): what
			// was read is what is pinned; remember where it was read.
			im.mu.Lock()
			im.id = fid
			im.mu.Unlock()
			im.last = nil
			return nil, false
		default:
			ce.Found = sum
		}
	}
	im.last = &seenChange{id: id, statOK: serr == nil, err: ce}
	return ce, true
}

// Close drops the owner's reference: the copy is freed once no Lease
// holds it. Calls after the first do nothing.
func (im *Image) Close() {
	im.mu.Lock()
	if !im.owned {
		im.mu.Unlock()
		return
	}
	im.owned = false
	im.mu.Unlock()
	im.release()
}

func (im *Image) release() {
	im.mu.Lock()
	im.refs--
	last := im.refs == 0
	im.mu.Unlock()
	if last {
		im.free()
	}
}

func (im *Image) free() {
	if im.file != nil {
		_ = im.file.Close()
	}
	if im.dir != "" {
		_ = os.RemoveAll(im.dir)
	}
}

// Lease is one launch's reference to an Image.
type Lease struct {
	im   *Image
	once sync.Once
}

// Path is what the child execs. For a memfd it is /proc/self/fd/3, valid
// in a child given Files as its first extra files (exec.Cmd.ExtraFiles).
func (l *Lease) Path() string { return l.im.exe }

// Files are the files the child must inherit, first among its extra files,
// for Path to name the image; nil for a directory copy. They stay open
// until the lease and the image's other references are released.
func (l *Lease) Files() []*os.File {
	if l.im.file == nil {
		return nil
	}
	return []*os.File{l.im.file}
}

// Release returns the lease; call it once the child is started (or will
// never be). Calls after the first do nothing.
func (l *Lease) Release() { l.once.Do(l.im.release) }

// copyToDir writes the copy as a 0500 file in a fresh 0700 directory
// under tempDir.
func (im *Image) copyToDir(src io.Reader, tempDir string) error {
	dir, err := os.MkdirTemp(tempDir, "connhost-exec-")
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, im.name)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o500)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	sum, err := copyHashed(f, src)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	im.sum, im.exe, im.dir = sum, dst, dir
	return nil
}

// copyHashed copies src to dst and returns the SHA-256 of the bytes
// copied. A fresh hash per call: a reused hash.Hash keeps state, the
// go-plugin SecureConfig pitfall DESIGN section 12 describes.
func copyHashed(dst io.Writer, src io.Reader) ([]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(dst, h), src); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// hashFile hashes the file at path, returning the identity of the file
// it opened, taken before reading.
func hashFile(path string) ([]byte, identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, identity{}, err
	}
	defer f.Close()
	id, err := fileIdentity(f)
	if err != nil {
		return nil, identity{}, err
	}
	sum, err := copyHashed(io.Discard, f)
	return sum, id, err
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
