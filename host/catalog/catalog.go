// Package catalog is the host's list of connector plugins: which binary
// serves which connector key, the manifest it declared, and the SHA-256 the
// host pinned for it.
//
// Scan reads a plugin directory at boot and at each rescan. Every regular
// executable file in it (symlinks followed; hidden files, directories and
// files without an execute bit skipped) is pinned: read once into a
// pluginimage.Image, a sealed in-memory copy hashed as it is copied. The
// image is started once through the Describer (the launcher, which runs it
// with the allowlisted environment only), and its manifest validated with
// manifest.Validate. A file that is not a plugin, a manifest that breaks a
// rule, and a connector key declared by more than one file are each
// reported as a *ScanError naming the file and the manifest field; the
// rest of the directory still loads. A duplicated key loads from none of
// its files: picking one by file name would silently run a binary the
// operator may not have meant.
//
// The catalog pins what it saw. Each Entry carries its Image, and every
// launch of the entry execs that image: the bytes that run are the bytes
// that were hashed. A launch stats the file and reads it again only when
// the stat shows it changed; a touched file holding the same bytes still
// launches. A file changed on disk after the scan (other bytes, gone,
// unreadable) refuses the launch with plugin_checksum_mismatch; the change
// is logged and given to Options.OnChange once, and the next rescan pins
// the new file. An image holds its binary in memory for as long as its
// entry is catalogued (or a launch uses it): Replace closes the images of
// the entries it replaces, and a launch holding one keeps it until its
// child is gone. Entry.Verify checks a binary the same way on demand, and
// Catalog.Diff compares a scan with the registrations of a previous boot
// so the host can audit re-registrations. The catalog does not store
// anything itself.
package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connhost/connhost/host/configschema"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/pluginimage"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/hashicorp/go-hclog"
)

var (
	// ErrDuplicateKey is wrapped by the ScanError of every file whose
	// connector key another file of the directory also declares.
	ErrDuplicateKey = errors.New("catalog: duplicate connector key")
	// ErrInvalidOptions is wrapped by Options.Validate errors.
	ErrInvalidOptions = errors.New("catalog: invalid options")
)

// Describer starts a pinned plugin binary and returns the manifest it
// declares. *launch.Launcher satisfies it.
type Describer interface {
	Describe(ctx context.Context, im *pluginimage.Image) (manifest.Manifest, error)
}

// DefaultParallelism is how many binaries Scan describes at once.
const DefaultParallelism = 8

// DefaultDescribeTimeout bounds each binary's Describe (start, handshake
// and the call): a plugin that hangs is rejected at this deadline instead
// of holding the host's start back.
const DefaultDescribeTimeout = 10 * time.Second

// Options configures Scan. The zero value is usable.
type Options struct {
	// CheckSchedule validates default schedule specs; nil skips the
	// grammar check (manifest.Validate's other rules still apply).
	CheckSchedule manifest.ScheduleChecker
	// Logger receives one line per rejected file and a summary. Default:
	// discard.
	Logger hclog.Logger
	// Now stamps Entry.ScannedAt. Default time.Now.
	Now func() time.Time
	// Parallelism bounds concurrent Describe calls. Default
	// DefaultParallelism.
	Parallelism int
	// DescribeTimeout bounds each binary's Describe. Default
	// DefaultDescribeTimeout.
	DescribeTimeout time.Duration
	// ImageDir holds the pinned copies of the binaries where the system
	// has no executable memfd (see pluginimage). Default os.TempDir().
	ImageDir string
	// OnChange, when set, is told once per change of a catalogued binary
	// on disk that a launch (or Entry.Verify) found; the change is logged
	// too. It is called on the launching goroutine and should return
	// quickly.
	OnChange func(key string, change *pluginimage.ChangedError)
}

// Validate reports a field that cannot work.
func (o Options) Validate() error {
	if o.Parallelism < 0 {
		return fmt.Errorf("%w: Parallelism is negative", ErrInvalidOptions)
	}
	if o.DescribeTimeout < 0 {
		return fmt.Errorf("%w: DescribeTimeout is negative", ErrInvalidOptions)
	}
	if o.ImageDir != "" && !filepath.IsAbs(o.ImageDir) {
		return fmt.Errorf("%w: ImageDir %q is not absolute", ErrInvalidOptions, o.ImageDir)
	}
	return nil
}

// Entry is one catalogued connector.
type Entry struct {
	// Key is the manifest's connector key.
	Key string
	// Manifest is the validated manifest the binary declared.
	Manifest manifest.Manifest
	// Path is the binary, as found in the plugin directory.
	Path string
	// SHA256 is the checksum pinned at scan time.
	SHA256 []byte
	// Image is the binary pinned at SHA256, the copy every launch execs
	// (nil for an entry not made by Scan). Entries share it.
	Image *pluginimage.Image
	// ScannedAt is when the binary was described.
	ScannedAt time.Time
	// Config is the manifest's config schema, compiled (nil: none, every
	// config accepted).
	Config *configschema.Schema
}

// Checksum returns SHA256 in hex.
func (e Entry) Checksum() string { return hex.EncodeToString(e.SHA256) }

// Verify returns a plugin_checksum_mismatch *failure.Error if the binary
// changed (or vanished) since it was catalogued. With an Image it checks
// as a launch does (a stat; a re-hash only if the file's identity
// changed); without one it re-hashes the file.
func (e Entry) Verify() error {
	if e.Image != nil {
		if err := e.Image.Verify(); err != nil {
			return &failure.Error{
				Code:    failure.PluginChecksumMismatch,
				Message: fmt.Sprintf("connector %s: %v", e.Key, err),
				Err:     err,
			}
		}
		return nil
	}
	sum, err := hashFile(e.Path)
	if err != nil {
		return &failure.Error{
			Code:    failure.PluginChecksumMismatch,
			Message: fmt.Sprintf("plugin %s for connector %s cannot be verified: %v", e.Path, e.Key, err),
			Err:     err,
		}
	}
	if !bytes.Equal(sum, e.SHA256) {
		return failure.New(failure.PluginChecksumMismatch,
			"plugin %s for connector %s changed since it was catalogued: sha256 %s, pinned %s",
			e.Path, e.Key, hex.EncodeToString(sum), e.Checksum())
	}
	return nil
}

// clone returns a deep copy, so callers cannot change the catalog. The
// Image is shared: it is immutable.
func (e Entry) clone() Entry {
	e.SHA256 = slices.Clone(e.SHA256)
	m := &e.Manifest
	m.Auth.Required = slices.Clone(m.Auth.Required)
	m.EnvPassthrough = slices.Clone(m.EnvPassthrough)
	m.Streams = slices.Clone(m.Streams)
	for i := range m.Streams {
		m.Streams[i].KeyFields = slices.Clone(m.Streams[i].KeyFields)
	}
	return e
}

// ScanError reports a file of the plugin directory that was not catalogued.
type ScanError struct {
	// File is the path of the rejected file.
	File string
	// Field is the manifest field at fault ("connector_key",
	// "capabilities.auth.kind", …), or "" when the binary could not be
	// described at all.
	Field string
	// Err is the cause: a *manifest.FieldError, an error wrapping
	// ErrDuplicateKey, the Describer's error (for the launcher a
	// *failure.Error such as plugin_handshake_failed), or an I/O error.
	Err error
}

func (e *ScanError) Error() string {
	return fmt.Sprintf("catalog: plugin %s: %v", e.File, e.Err)
}

// Unwrap returns the cause.
func (e *ScanError) Unwrap() error { return e.Err }

// Rejection is a file of the plugin directory that was not catalogued,
// as an operator lists it.
type Rejection struct {
	// File is the rejected file's path.
	File string
	// Field is the manifest field at fault, or "" when the binary could
	// not be described at all (or the cause is not one field).
	Field string
	// Reason is the cause's message.
	Reason string
	// Code is the failure code of the cause when it has one (a launch
	// failure such as plugin_handshake_failed), else "".
	Code failure.Code
}

// Catalog is the result of a scan. It is safe for concurrent use. Its
// content changes only through Replace (a rescan), as a whole: an Entry
// once returned never changes, so a run keeps the binary it was given.
type Catalog struct {
	cur atomic.Pointer[state]
}

// state is one scan's content; immutable.
type state struct {
	dir      string
	entries  map[string]Entry
	keys     []string // sorted
	skipped  []string
	rejected []Rejection
}

func (c *Catalog) st() *state {
	if s := c.cur.Load(); s != nil {
		return s
	}
	return &state{entries: map[string]Entry{}}
}

// Replace makes c hold next's content at once (a rescan of the plugin
// directory) and closes the images of the entries it replaced (those next
// does not hold). Entries handed out before keep what they held: a launch
// already holding an image keeps it until its child is gone, and one
// started from an older entry verifies a copy of its own.
func (c *Catalog) Replace(next *Catalog) {
	ns := next.st()
	if old := c.cur.Swap(ns); old != nil && old != ns {
		old.closeImages(ns)
	}
}

// Close closes the images of c's entries; c must not be used afterwards.
func (c *Catalog) Close() {
	if s := c.cur.Swap(nil); s != nil {
		s.closeImages(nil)
	}
}

// closeImages closes the images of s's entries that keep does not hold.
func (s *state) closeImages(keep *state) {
	for key, e := range s.entries {
		if e.Image == nil {
			continue
		}
		if keep != nil && keep.entries[key].Image == e.Image {
			continue
		}
		e.Image.Close()
	}
}

// Scan catalogues the plugins in dir. It returns a catalog of every plugin
// that loaded and one error per file that did not (a *ScanError), or a
// single error when dir cannot be read; the catalog is never nil.
func Scan(ctx context.Context, dir string, d Describer, opts Options) (*Catalog, []error) {
	cat := &Catalog{}
	c := &state{dir: dir, entries: map[string]Entry{}}
	cat.cur.Store(c)
	if err := opts.Validate(); err != nil {
		return cat, []error{err}
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	par := opts.Parallelism
	if par == 0 {
		par = DefaultParallelism
	}
	timeout := opts.DescribeTimeout
	if timeout == 0 {
		timeout = DefaultDescribeTimeout
	}

	ents, err := os.ReadDir(dir)
	if err != nil {
		err = fmt.Errorf("catalog: reading plugin directory: %w", err)
		log.Error("plugin directory unreadable", "dir", dir, "error", err)
		return cat, []error{err}
	}
	var files []string
	for _, de := range ents {
		path := filepath.Join(dir, de.Name())
		if reason := skipReason(de.Name(), path); reason != "" {
			log.Debug("not a plugin candidate", "file", path, "reason", reason)
			c.skipped = append(c.skipped, path)
			continue
		}
		files = append(files, path)
	}

	type result struct {
		entry Entry
		err   error
	}
	results := make([]result, len(files))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, path := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			e, err := describe(dctx, path, d, opts, log)
			if err != nil && dctx.Err() != nil && ctx.Err() == nil {
				err = &ScanError{File: path, Err: &failure.Error{Code: failure.PluginDescribeTimeout, Err: err,
					Message: fmt.Sprintf("plugin did not answer Describe within %s (the scan's deadline per plugin)", timeout)}}
			}
			e.ScannedAt = now()
			results[i] = result{e, err}
		}()
	}
	wg.Wait()

	var errs []error
	byKey := map[string][]int{}
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		byKey[r.entry.Key] = append(byKey[r.entry.Key], i)
	}
	for key, idx := range byKey {
		if len(idx) == 1 {
			e := results[idx[0]].entry
			c.entries[key] = e
			continue
		}
		for _, i := range idx {
			results[i].entry.Image.Close()
			var others []string
			for _, j := range idx {
				if j != i {
					others = append(others, files[j])
				}
			}
			errs = append(errs, &ScanError{
				File:  files[i],
				Field: "connector_key",
				Err:   fmt.Errorf("%w %q, also declared by %s", ErrDuplicateKey, key, strings.Join(others, ", ")),
			})
		}
	}
	for key := range c.entries {
		c.keys = append(c.keys, key)
	}
	sort.Strings(c.keys)
	sort.SliceStable(errs, func(i, j int) bool { return scanFile(errs[i]) < scanFile(errs[j]) })

	for _, err := range errs {
		var se *ScanError
		if errors.As(err, &se) {
			r := Rejection{File: se.File, Field: se.Field, Reason: se.Err.Error()}
			var fe *failure.Error
			if errors.As(se.Err, &fe) {
				// The code is its own field: the reason is the message.
				r.Code = fe.Code
				if fe.Message != "" {
					r.Reason = fe.Message
				}
			}
			// The file, not a connector: it may be none. Field and
			// code only when there is one.
			args := []any{"file", r.File}
			if r.Field != "" {
				args = append(args, "field", r.Field)
			}
			if r.Code != "" {
				args = append(args, "code", string(r.Code))
			}
			log.Error("plugin not catalogued", append(args, "reason", r.Reason)...)
			c.rejected = append(c.rejected, r)
		}
	}
	log.Info("plugin directory scanned", "dir", dir, "catalogued", len(c.keys), "rejected", len(errs), "skipped", len(c.skipped))
	return cat, errs
}

func scanFile(err error) string {
	var se *ScanError
	if errors.As(err, &se) {
		return se.File
	}
	return ""
}

// skipReason says why a directory entry is not a plugin candidate, or "".
func skipReason(name, path string) string {
	if strings.HasPrefix(name, ".") {
		return "hidden"
	}
	fi, err := os.Stat(path) // follows symlinks: a linked plugin is a plugin
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case !fi.Mode().IsRegular():
		return "not a regular file"
	case fi.Mode().Perm()&0o111 == 0:
		return "not executable"
	}
	return ""
}

// describe pins, describes and validates one binary. The entry it
// returns holds the image; on error the image is closed.
func describe(ctx context.Context, path string, d Describer, opts Options, log hclog.Logger) (_ Entry, err error) {
	var key atomic.Pointer[string] // set once the binary is a connector
	im, err := pluginimage.Pin(path, pluginimage.Options{TempDir: opts.ImageDir, OnChange: func(ce *pluginimage.ChangedError) {
		k := key.Load()
		if k == nil {
			return // found while describing: the scan rejects the file
		}
		args := []any{"connector", *k, "path", ce.Path, "pinned_sha256", hex.EncodeToString(ce.Pinned)}
		if ce.Found != nil {
			args = append(args, "found_sha256", hex.EncodeToString(ce.Found))
		} else {
			args = append(args, "error", ce.Err)
		}
		log.Error("plugin binary changed on disk since it was catalogued; its launches are refused until a rescan", args...)
		if opts.OnChange != nil {
			opts.OnChange(*k, ce)
		}
	}})
	if err != nil {
		return Entry{}, &ScanError{File: path, Err: err}
	}
	defer func() {
		if err != nil {
			im.Close()
		}
	}()
	m, err := d.Describe(ctx, im)
	if err != nil {
		return Entry{}, &ScanError{File: path, Err: err}
	}
	check := opts.CheckSchedule
	if err := m.Validate(check); err != nil {
		se := &ScanError{File: path, Err: err}
		var fe *manifest.FieldError
		if errors.As(err, &fe) {
			se.Field = fe.Field
		}
		return Entry{}, se
	}
	schema, err := configschema.Compile(m.ConfigSchema)
	if err != nil {
		return Entry{}, &ScanError{File: path, Field: "config_schema", Err: err}
	}
	k := m.ConnectorKey
	key.Store(&k)
	return Entry{Key: m.ConnectorKey, Manifest: m, Path: path, SHA256: im.SHA256(), Image: im, Config: schema}, nil
}

func hashFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// Dir returns the scanned directory.
func (c *Catalog) Dir() string { return c.st().dir }

// Get returns the entry for a connector key.
func (c *Catalog) Get(key string) (Entry, bool) {
	e, ok := c.st().entries[key]
	if !ok {
		return Entry{}, false
	}
	return e.clone(), true
}

// List returns every entry, sorted by key.
func (c *Catalog) List() []Entry {
	s := c.st()
	out := make([]Entry, len(s.keys))
	for i, k := range s.keys {
		out[i] = s.entries[k].clone()
	}
	return out
}

// Len returns the number of catalogued connectors.
func (c *Catalog) Len() int { return len(c.st().keys) }

// Skipped returns the directory entries that were not plugin candidates
// (hidden, not regular, not executable), sorted.
func (c *Catalog) Skipped() []string { return slices.Clone(c.st().skipped) }

// Rejected returns the files the scan did not catalogue, sorted by file,
// each with the manifest field at fault and the reason.
func (c *Catalog) Rejected() []Rejection { return slices.Clone(c.st().rejected) }

// ChangeKind says how a connector's registration changed between scans.
type ChangeKind string

// Change kinds.
const (
	// Added: a key that had no previous registration.
	Added ChangeKind = "added"
	// Reregistered: a key whose binary (checksum), version or path changed.
	Reregistered ChangeKind = "reregistered"
	// Removed: a previously registered key that this scan did not load.
	Removed ChangeKind = "removed"
)

// Change is one difference between previous registrations and a scan.
type Change struct {
	Kind ChangeKind
	Key  string
	// Old is the previous registration (zero for Added); New is this
	// scan's entry (zero for Removed).
	Old, New Entry
	// Fields lists what changed for Reregistered: "sha256", "version",
	// "path".
	Fields []string
}

// RescanReport is what a rescan of the plugin directory found.
type RescanReport struct {
	Dir string
	// Connectors is the number catalogued now.
	Connectors int
	// Changes are the differences with the registrations before.
	Changes []Change
	// Rejected are the files not catalogued.
	Rejected []Rejection
}

// Diff compares this catalog with previous registrations (as the store
// recorded them: Key, Manifest.Version, Path and SHA256 are compared) and
// returns the changes sorted by key. Unchanged keys are not reported.
func (c *Catalog) Diff(prev []Entry) []Change {
	cs := c.st()
	old := map[string]Entry{}
	for _, e := range prev {
		old[e.Key] = e
	}
	keys := slices.Clone(cs.keys)
	for k := range old {
		if _, ok := cs.entries[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Change
	for _, k := range keys {
		o, inOld := old[k]
		n, inNew := cs.entries[k]
		switch {
		case !inOld:
			out = append(out, Change{Kind: Added, Key: k, New: n.clone()})
		case !inNew:
			out = append(out, Change{Kind: Removed, Key: k, Old: o.clone()})
		default:
			var fields []string
			if !bytes.Equal(o.SHA256, n.SHA256) {
				fields = append(fields, "sha256")
			}
			if o.Manifest.Version != n.Manifest.Version {
				fields = append(fields, "version")
			}
			if o.Path != n.Path {
				fields = append(fields, "path")
			}
			if len(fields) > 0 {
				out = append(out, Change{Kind: Reregistered, Key: k, Old: o.clone(), New: n.clone(), Fields: fields})
			}
		}
	}
	return out
}
