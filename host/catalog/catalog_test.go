package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/syncbuf"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/pluginimage"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

// manifestedPath is the test plugin, built once per test binary.
var manifestedPath string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "catalog-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	manifestedPath = filepath.Join(dir, "manifested")
	cmd := exec.Command("go", "build", "-o", manifestedPath, "./testdata/plugins/manifested")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building test plugin: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// plant writes a plugin serving m into dir/name.
func plant(t *testing.T, dir, name string, m manifest.Manifest) string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(manifestedPath)
	if err != nil {
		t.Fatal(err)
	}
	bin = append(bin, "\n#connhost-test-manifest:"+base64.StdEncoding.EncodeToString(raw)+"\n"...)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func good(key string) manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: key,
		Version:      "1.0.0",
		DisplayName:  "Test " + key,
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"TOKEN"}},
		Streams:      []manifest.Stream{{Name: "events", KeyFields: []string{"id"}}},
		DefaultSchedule: manifest.Schedule{
			Spec: "@every 1h", AutoEnroll: true,
		},
	}
}

func with(key string, f func(*manifest.Manifest)) manifest.Manifest {
	m := good(key)
	f(&m)
	return m
}

func fileSum(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// describer is a Describer fake with a func field; the tests wrap the real
// launcher with it to see what the catalog asks for.
type describer struct {
	describe func(ctx context.Context, im *pluginimage.Image) (manifest.Manifest, error)
}

func (d describer) Describe(ctx context.Context, im *pluginimage.Image) (manifest.Manifest, error) {
	return d.describe(ctx, im)
}

var _ Describer = describer{}
var _ Describer = (*launch.Launcher)(nil)

// recording wraps a real launcher and records the checksum passed for each
// path.
func recording(t *testing.T) (Describer, func() map[string][]byte) {
	t.Helper()
	l, err := launch.New(launch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string][]byte{}
	d := describer{describe: func(ctx context.Context, im *pluginimage.Image) (manifest.Manifest, error) {
		mu.Lock()
		seen[filepath.Base(im.Path())] = im.SHA256()
		mu.Unlock()
		return l.Describe(ctx, im)
	}}
	return d, func() map[string][]byte {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// wantErr describes one expected rejected file.
type wantErr struct {
	field string
	code  failure.Code // for describe failures; "" otherwise
	is    error        // a sentinel the error wraps; nil to skip
	text  string       // substring of the error
}

func TestScan(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		setup   func(t *testing.T, dir string)
		check   manifest.ScheduleChecker
		keys    []string
		errs    map[string]wantErr // by file base name
		skipped []string
	}{
		"good directory": {
			setup: func(t *testing.T, dir string) {
				plant(t, dir, "alpha", good("alpha"))
				plant(t, dir, "beta", good("beta"))
			},
			keys: []string{"alpha", "beta"},
		},
		"empty directory": {
			setup: func(t *testing.T, dir string) {},
		},
		"invalid manifests name file and field": {
			check: manifest.CheckSchedule,
			setup: func(t *testing.T, dir string) {
				plant(t, dir, "alpha", good("alpha"))
				plant(t, dir, "url-key", good("https://example.com/connectors/github"))
				plant(t, dir, "upper-key", good("GitHub"))
				plant(t, dir, "bad-auth", with("badauth", func(m *manifest.Manifest) { m.Auth.Kind = "oauth" }))
				plant(t, dir, "no-required", with("noreq", func(m *manifest.Manifest) { m.Auth.Required = nil }))
				plant(t, dir, "reserved-env", with("reserved", func(m *manifest.Manifest) { m.EnvPassthrough = []string{"CONNHOST_TOKEN"} }))
				plant(t, dir, "no-streams", with("nostreams", func(m *manifest.Manifest) { m.Streams = nil }))
				plant(t, dir, "bad-schedule", with("badsched", func(m *manifest.Manifest) { m.DefaultSchedule.Spec = "every tuesday" }))
				plant(t, dir, "schema-ref", with("schemaref", func(m *manifest.Manifest) { m.ConfigSchema = `{"$ref":"file:///etc/passwd"}` }))
				plant(t, dir, "bad-schema", with("badschema", func(m *manifest.Manifest) { m.ConfigSchema = `{"type":12}` }))
			},
			keys: []string{"alpha"},
			errs: map[string]wantErr{
				"url-key":      {field: "connector_key", is: manifest.ErrInvalid, text: "looks like a URL"},
				"upper-key":    {field: "connector_key", is: manifest.ErrInvalid},
				"bad-auth":     {field: "capabilities.auth.kind", is: manifest.ErrInvalid, text: "oauth"},
				"no-required":  {field: "capabilities.auth.required", is: manifest.ErrInvalid},
				"reserved-env": {field: "env_passthrough[0]", is: manifest.ErrInvalid, text: "reserved"},
				"no-streams":   {field: "streams", is: manifest.ErrInvalid},
				"bad-schedule": {field: "default_schedule.spec", is: manifest.ErrInvalid},
				"schema-ref":   {field: "config_schema", text: "may refer only to itself"},
				"bad-schema":   {field: "config_schema"},
			},
		},
		"duplicate key loads from neither file": {
			setup: func(t *testing.T, dir string) {
				plant(t, dir, "alpha", good("alpha"))
				plant(t, dir, "gamma-v1", good("gamma"))
				plant(t, dir, "gamma-v2", with("gamma", func(m *manifest.Manifest) { m.Version = "2.0.0" }))
			},
			keys: []string{"alpha"},
			errs: map[string]wantErr{
				"gamma-v1": {field: "connector_key", is: ErrDuplicateKey, text: "gamma-v2"},
				"gamma-v2": {field: "connector_key", is: ErrDuplicateKey, text: "gamma-v1"},
			},
		},
		"broken binaries are rejected, the rest loads": {
			setup: func(t *testing.T, dir string) {
				plant(t, dir, "alpha", good("alpha"))
				write(t, filepath.Join(dir, "shell-script"), "#!/bin/sh\necho not a plugin\n", 0o755)
				write(t, filepath.Join(dir, "garbage"), "\x7fELF this is not a real binary", 0o755)
				if err := os.WriteFile(filepath.Join(dir, "no-manifest"), mustRead(t, manifestedPath), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			keys: []string{"alpha"},
			errs: map[string]wantErr{
				"shell-script": {code: failure.PluginHandshakeFailed, text: "not a plugin"},
				"garbage":      {code: failure.PluginHandshakeFailed},
				"no-manifest":  {code: failure.ConnectorFailed, text: "no manifest trailer"},
			},
		},
		"non-candidates are skipped": {
			setup: func(t *testing.T, dir string) {
				plant(t, dir, "alpha", good("alpha"))
				write(t, filepath.Join(dir, "README"), "plugins live here\n", 0o644)
				plant(t, dir, "not-executable", good("nx"))
				os.Chmod(filepath.Join(dir, "not-executable"), 0o644)
				plant(t, dir, ".hidden", good("hidden"))
				if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
					t.Fatal(err)
				}
				outside := plant(t, t.TempDir(), "linked", good("linked"))
				if err := os.Symlink(outside, filepath.Join(dir, "linked")); err != nil {
					t.Fatal(err)
				}
			},
			keys:    []string{"alpha", "linked"},
			skipped: []string{".hidden", "README", "not-executable", "subdir"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.setup(t, dir)
			d, seen := recording(t)
			logs := &bytes.Buffer{}
			var logMu sync.Mutex
			logger := hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&logMu, logs}, Level: hclog.Debug})
			at := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

			c, errs := Scan(context.Background(), dir, d, Options{CheckSchedule: tc.check, Logger: logger, Now: func() time.Time { return at }})

			var keys []string
			for _, e := range c.List() {
				keys = append(keys, e.Key)
				if diff := cmp.Diff(fileSum(t, e.Path), e.SHA256); diff != "" {
					t.Errorf("%s: pinned checksum differs from the file's", e.Key)
				}
				if !bytes.Equal(seen()[filepath.Base(e.Path)], e.SHA256) {
					t.Errorf("%s: described with a checksum other than the pinned one", e.Key)
				}
				if !e.ScannedAt.Equal(at) {
					t.Errorf("%s: ScannedAt %v, want %v", e.Key, e.ScannedAt, at)
				}
				got, ok := c.Get(e.Key)
				if !ok || got.Path != e.Path {
					t.Errorf("Get(%q) = %+v, %v", e.Key, got, ok)
				}
			}
			if diff := cmp.Diff(tc.keys, keys); diff != "" {
				t.Errorf("catalogued keys (-want +got):\n%s", diff)
			}
			if c.Len() != len(tc.keys) {
				t.Errorf("Len() = %d, want %d", c.Len(), len(tc.keys))
			}

			gotFiles := map[string]bool{}
			for _, err := range errs {
				var se *ScanError
				if !errors.As(err, &se) {
					t.Errorf("error %v is not a *ScanError", err)
					continue
				}
				base := filepath.Base(se.File)
				gotFiles[base] = true
				want, ok := tc.errs[base]
				if !ok {
					t.Errorf("unexpected error for %s: %v", base, err)
					continue
				}
				if se.Field != want.field {
					t.Errorf("%s: field %q, want %q (%v)", base, se.Field, want.field, err)
				}
				if want.code != "" && failure.CodeOf(err) != want.code {
					t.Errorf("%s: code %s, want %s (%v)", base, failure.CodeOf(err), want.code, err)
				}
				if want.is != nil && !errors.Is(err, want.is) {
					t.Errorf("%s: error %v does not wrap %v", base, err, want.is)
				}
				if !strings.Contains(err.Error(), se.File) || !strings.Contains(err.Error(), want.text) {
					t.Errorf("%s: error %q should name the file and contain %q", base, err, want.text)
				}
				logMu.Lock()
				logged := logs.String()
				logMu.Unlock()
				// The rejection's entry: its line, and the lines a
				// multi-line reason continues on.
				var line string
				for _, file := range []string{se.File, strconv.Quote(se.File)} {
					if i := strings.Index(logged, "plugin not catalogued: file="+file+" "); i >= 0 {
						line = logged[i:]
						if j := strings.Index(line, "\n20"); j >= 0 {
							line = line[:j]
						}
					}
				}
				if line == "" || !strings.Contains(line, "reason=") ||
					strings.Contains(line, "connector=") || (se.Field == "") == strings.Contains(line, "field=") ||
					(se.Field != "" && !strings.Contains(line, "field="+se.Field)) {
					t.Errorf("%s: rejection not logged with file, field (if any) and reason:\n%s", base, logged)
				}
			}
			for f := range tc.errs {
				if !gotFiles[f] {
					t.Errorf("no error for %s", f)
				}
			}
			// Rejected lists what errs holds, file, field and reason.
			rej := c.Rejected()
			if len(rej) != len(errs) {
				t.Errorf("Rejected() has %d files, errs %d", len(rej), len(errs))
			}
			for _, r := range rej {
				want, ok := tc.errs[filepath.Base(r.File)]
				if !ok {
					t.Errorf("Rejected() lists %s", r.File)
					continue
				}
				if r.Field != want.field || !strings.Contains(r.Reason, want.text) || r.Reason == "" {
					t.Errorf("Rejected %s: field %q reason %q, want field %q containing %q", r.File, r.Field, r.Reason, want.field, want.text)
				}
				if want.code != "" && r.Code != want.code {
					t.Errorf("Rejected %s: code %q, want %q", r.File, r.Code, want.code)
				}
			}

			var skipped []string
			for _, s := range c.Skipped() {
				skipped = append(skipped, filepath.Base(s))
			}
			sort.Strings(skipped)
			want := append([]string(nil), tc.skipped...)
			sort.Strings(want)
			if diff := cmp.Diff(want, skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}
}

// A plugin that hangs in Describe is rejected at the scan's deadline
// (plugin_describe_timeout, its process killed) while the others load, and
// the hung one does not hold them back: they are described concurrently.
func TestScanBoundsAHungDescribe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plant(t, dir, "alpha", good("alpha"))
	plant(t, dir, "hangs", with("hangs", func(m *manifest.Manifest) { m.DisplayName = "hang in describe" }))
	plant(t, dir, "hangs-too", with("hangstoo", func(m *manifest.Manifest) { m.DisplayName = "hang in describe" }))
	plant(t, dir, "omega", good("omega"))
	l, err := launch.New(launch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, errs := Scan(context.Background(), dir, l, Options{DescribeTimeout: 5 * time.Second, Parallelism: 2})
	var keys []string
	for _, e := range c.List() {
		keys = append(keys, e.Key)
	}
	if diff := cmp.Diff([]string{"alpha", "omega"}, keys); diff != "" {
		t.Errorf("catalogued (-want +got):\n%s", diff)
	}
	if len(errs) != 2 {
		t.Fatalf("errs = %v, want the two hung plugins", errs)
	}
	for i, want := range []string{"hangs", "hangs-too"} {
		r := c.Rejected()[i]
		if filepath.Base(r.File) != want || r.Code != failure.PluginDescribeTimeout || !strings.Contains(r.Reason, "within 5s") {
			t.Errorf("Rejected()[%d] = %+v, want %s plugin_describe_timeout within 5s", i, r, want)
		}
	}
}

func TestScanUnreadableDirectory(t *testing.T) {
	t.Parallel()
	c, errs := Scan(context.Background(), filepath.Join(t.TempDir(), "missing"), describer{}, Options{})
	if len(errs) != 1 || !errors.Is(errs[0], os.ErrNotExist) {
		t.Errorf("errs = %v, want one not-exist error", errs)
	}
	if c == nil || c.Len() != 0 {
		t.Errorf("catalog = %v, want an empty catalog", c)
	}
}

func TestScanRejectsInvalidOptions(t *testing.T) {
	t.Parallel()
	_, errs := Scan(context.Background(), t.TempDir(), describer{}, Options{Parallelism: -1})
	if len(errs) != 1 || !errors.Is(errs[0], ErrInvalidOptions) {
		t.Errorf("errs = %v, want ErrInvalidOptions", errs)
	}
}

// A catalogued binary changed under the host. A touch (same bytes) still
// launches. Other bytes refuse every launch of the entry with
// plugin_checksum_mismatch naming the path and both sums, Verify says the
// same, and the change is logged and given to OnChange once, not once per
// refused launch. A rescan pins the new binary, whose launches run it; the
// old entry's image is closed and its launches still refused. A removed
// binary is a change too.
func TestChangedBinary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := plant(t, dir, "alpha", good("alpha"))
	l, err := launch.New(launch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		changes []string
		logs    syncBuffer
	)
	opts := Options{
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs}),
		OnChange: func(key string, ce *pluginimage.ChangedError) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, fmt.Sprintf("%s %s %x %x %v", key, ce.Path, ce.Pinned, ce.Found, ce.Err != nil))
		},
	}
	c, errs := Scan(ctx, dir, l, opts)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	e, ok := c.Get("alpha")
	if !ok || e.Image == nil || !bytes.Equal(e.Image.SHA256(), e.SHA256) {
		t.Fatalf("alpha = %+v, %v: want an entry holding its image", e, ok)
	}
	pinned := fileSum(t, path)

	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Describe(ctx, e.Image); err != nil {
		t.Errorf("launch of a touched binary: %v", err)
	}
	if err := e.Verify(); err != nil {
		t.Errorf("Verify of a touched binary: %v", err)
	}

	newer := plant(t, t.TempDir(), "alpha", with("alpha", func(m *manifest.Manifest) { m.Version = "2.0.0" }))
	if err := os.Rename(newer, path); err != nil {
		t.Fatal(err)
	}
	found := fileSum(t, path)
	for i := range 3 {
		_, err := l.Describe(ctx, e.Image)
		var fe *failure.Error
		if !errors.As(err, &fe) || fe.Code != failure.PluginChecksumMismatch ||
			!strings.Contains(fe.Message, path) || !strings.Contains(fe.Message, fmt.Sprintf("%x", pinned)) ||
			!strings.Contains(fe.Message, fmt.Sprintf("%x", found)) {
			t.Fatalf("launch #%d after the change = %v, want plugin_checksum_mismatch naming %s and both sums", i+1, err, path)
		}
	}
	if err := e.Verify(); !failure.Has(err, failure.PluginChecksumMismatch) {
		t.Errorf("Verify after the change = %v, want plugin_checksum_mismatch", err)
	}
	want := []string{fmt.Sprintf("alpha %s %x %x false", path, pinned, found)}
	mu.Lock()
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("changes reported (-want +got):\n%s", diff)
	}
	mu.Unlock()
	if n := strings.Count(logs.String(), "plugin binary changed on disk"); n != 1 {
		t.Errorf("change logged %d times, want once:\n%s", n, logs.String())
	}

	next, errs := Scan(ctx, dir, l, opts)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	c.Replace(next)
	e2, _ := c.Get("alpha")
	if !bytes.Equal(e2.SHA256, found) {
		t.Errorf("rescanned sha256 %x, want %x", e2.SHA256, found)
	}
	if m, err := l.Describe(ctx, e2.Image); err != nil || m.Version != "2.0.0" {
		t.Errorf("launch after the rescan = %q, %v; want the new build, 2.0.0", m.Version, err)
	}
	if _, err := e.Image.Acquire(); !errors.Is(err, pluginimage.ErrClosed) {
		t.Errorf("the replaced image's Acquire = %v, want ErrClosed", err)
	}
	if _, err := l.Describe(ctx, e.Image); !failure.Has(err, failure.PluginChecksumMismatch) {
		t.Errorf("launch of the replaced entry = %v, want plugin_checksum_mismatch", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := e2.Verify(); !failure.Has(err, failure.PluginChecksumMismatch) {
		t.Errorf("Verify after removal = %v, want plugin_checksum_mismatch", err)
	}
	if _, err := l.Describe(ctx, e2.Image); !failure.Has(err, failure.PluginChecksumMismatch) {
		t.Errorf("launch after removal = %v, want plugin_checksum_mismatch", err)
	}
	mu.Lock()
	if len(changes) != 2 || !strings.HasSuffix(changes[1], " true") {
		t.Errorf("changes = %q, want the removal reported as a second change", changes)
	}
	mu.Unlock()
	c.Close()
}

// Every file is read once at a scan, into one image per catalogued
// entry; the images of rejected files are closed at once, and those of
// replaced entries when a rescan replaces them.
func TestScanImagesLifetime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	plant(t, dir, "lifetime-alpha", good("alpha"))
	plant(t, dir, "lifetime-dup1", good("dup"))
	plant(t, dir, "lifetime-dup2", good("dup"))
	plant(t, dir, "lifetime-bad", with("bad", func(m *manifest.Manifest) { m.Version = "" }))
	l, err := launch.New(launch.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, errs := Scan(ctx, dir, l, Options{})
	if len(errs) != 3 {
		t.Fatalf("errs = %v, want the two duplicates and the bad manifest", errs)
	}
	if got := imageFDs(t, "lifetime-"); len(got) != 1 || !strings.Contains(got[0], "lifetime-alpha") {
		t.Fatalf("memfds after the scan: %q, want alpha's only", got)
	}
	old, _ := c.Get("alpha")
	next, _ := Scan(ctx, dir, l, Options{})
	c.Replace(next)
	if got := imageFDs(t, "lifetime-"); len(got) != 1 {
		t.Errorf("memfds after the rescan: %q, want the new alpha's only", got)
	}
	if _, err := old.Image.Acquire(); !errors.Is(err, pluginimage.ErrClosed) {
		t.Errorf("replaced image's Acquire = %v, want ErrClosed", err)
	}
	c.Replace(next) // the same content again closes nothing
	if e, _ := c.Get("alpha"); e.Image == nil {
		t.Fatal("alpha lost its image")
	} else if lease, err := e.Image.Acquire(); err != nil {
		t.Errorf("Acquire after replacing a catalog with itself: %v", err)
	} else {
		lease.Release()
	}
	c.Close()
	if got := imageFDs(t, "lifetime-"); len(got) != 0 {
		t.Errorf("memfds after Close: %q", got)
	}
}

// imageFDs returns the memfd links of this process's descriptors whose
// name starts with prefix.
func imageFDs(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	var out []string
	for _, e := range ents {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(link, "/memfd:connhost:"+prefix) {
			out = append(out, link)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer = syncbuf.Buffer

// fromEntries is a catalog holding es.
func fromEntries(es ...Entry) *Catalog {
	s := &state{entries: map[string]Entry{}}
	for _, e := range es {
		s.entries[e.Key] = e
		s.keys = append(s.keys, e.Key)
	}
	sort.Strings(s.keys)
	c := &Catalog{}
	c.cur.Store(s)
	return c
}

func TestGetAndListReturnCopies(t *testing.T) {
	t.Parallel()
	c := fromEntries(Entry{Key: "alpha", SHA256: []byte{1}, Manifest: good("alpha")})
	e, _ := c.Get("alpha")
	e.SHA256[0] = 9
	e.Manifest.Streams[0].KeyFields[0] = "changed"
	l := c.List()
	l[0].Manifest.Auth.Required[0] = "CHANGED"
	again, _ := c.Get("alpha")
	if diff := cmp.Diff(Entry{Key: "alpha", SHA256: []byte{1}, Manifest: good("alpha")}, again); diff != "" {
		t.Errorf("catalog changed through a returned entry (-want +got):\n%s", diff)
	}
	if _, ok := c.Get("missing"); ok {
		t.Error("Get(missing) found an entry")
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	entry := func(key, version, path string, sum byte) Entry {
		m := good(key)
		m.Version = version
		return Entry{Key: key, Manifest: m, Path: path, SHA256: []byte{sum}}
	}
	catalog := fromEntries
	tests := map[string]struct {
		prev []Entry
		cur  *Catalog
		want []Change
	}{
		"first boot": {
			cur:  catalog(entry("a", "1", "/p/a", 1)),
			want: []Change{{Kind: Added, Key: "a", New: entry("a", "1", "/p/a", 1)}},
		},
		"unchanged": {
			prev: []Entry{entry("a", "1", "/p/a", 1)},
			cur:  catalog(entry("a", "1", "/p/a", 1)),
		},
		"new binary": {
			prev: []Entry{entry("a", "1", "/p/a", 1)},
			cur:  catalog(entry("a", "1", "/p/a", 2)),
			want: []Change{{Kind: Reregistered, Key: "a", Old: entry("a", "1", "/p/a", 1), New: entry("a", "1", "/p/a", 2), Fields: []string{"sha256"}}},
		},
		"new version and path": {
			prev: []Entry{entry("a", "1", "/p/a", 1)},
			cur:  catalog(entry("a", "2", "/q/a", 2)),
			want: []Change{{Kind: Reregistered, Key: "a", Old: entry("a", "1", "/p/a", 1), New: entry("a", "2", "/q/a", 2), Fields: []string{"sha256", "version", "path"}}},
		},
		"removed and added, sorted by key": {
			prev: []Entry{entry("c", "1", "/p/c", 3), entry("a", "1", "/p/a", 1)},
			cur:  catalog(entry("a", "1", "/p/a", 1), entry("b", "1", "/p/b", 2)),
			want: []Change{
				{Kind: Added, Key: "b", New: entry("b", "1", "/p/b", 2)},
				{Kind: Removed, Key: "c", Old: entry("c", "1", "/p/c", 3)},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, tc.cur.Diff(tc.prev)); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		opts    Options
		wantErr bool
	}{
		"zero":                 {opts: Options{}},
		"parallelism":          {opts: Options{Parallelism: 2}},
		"negative parallelism": {opts: Options{Parallelism: -1}, wantErr: true},
		"negative timeout":     {opts: Options{DescribeTimeout: -1}, wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := tc.opts.Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
