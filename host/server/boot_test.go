package server_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/google/go-cmp/cmp"
)

// manifestedPackage serves the manifest appended to its own binary (see
// its doc); display_name "hang in describe" makes it hang in Describe.
const manifestedPackage = "github.com/connhost/connhost/host/catalog/testdata/plugins/manifested"

// plantManifested writes a plugin serving m into dir/name.
func plantManifested(t *testing.T, dir, name string, m manifest.Manifest) string {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(hosttest.PluginBinary(t, manifestedPackage))
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

func testManifest(key string) manifest.Manifest {
	return manifest.Manifest{ConnectorKey: key, Version: "1.0.0", DisplayName: "Test " + key,
		Auth:    manifest.Auth{Kind: manifest.AuthNone},
		Streams: []manifest.Stream{{Name: "events", KeyFields: []string{"id"}}}}
}

// A start that cannot work is refused before anything is created: a busy
// port, an unusable plugin dir and an unusable token file leave a new data
// dir absent, and an existing one byte for byte as it was (no serve.lock
// either).
func TestRefusedBeforeTheDataDirIsTouched(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		change func(cfg *server.Config)
		want   error
		says   []string
	}{
		"busy port": {
			change: func(cfg *server.Config) { cfg.Listen = busy.Addr().String() },
			want:   server.ErrListen, says: []string{busy.Addr().String(), "--listen"},
		},
		"missing plugin dir": {
			change: func(cfg *server.Config) { cfg.PluginDir = filepath.Join(filepath.Dir(cfg.DataDir), "no-plugins") },
			want:   server.ErrPluginDir, says: []string{"no-plugins does not exist", "--plugin-dir"},
		},
		// Refused after the data dir is made and locked: the start
		// removes the lock file and the empty data dir it made.
		"token file readable by others": {
			change: func(cfg *server.Config) { cfg.TokenFile = file },
			want:   server.ErrInsecureFile, says: []string{file, "chmod 600"},
		},
		"plugin dir is a file": {
			change: func(cfg *server.Config) { cfg.PluginDir = file },
			want:   server.ErrPluginDir, says: []string{file, "is not a directory", "--plugin-dir"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// A new data dir stays absent.
			cfg := baseConfig(t)
			tc.change(&cfg)
			_, err := runOnce(t, cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused start created the data dir: %v", err)
			}

			// An existing data dir stays as it was.
			cfg = baseConfig(t)
			if _, err := runOnce(t, cfg); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, cfg.DataDir)
			tc.change(&cfg)
			if _, err := runOnce(t, cfg); !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			if diff := cmp.Diff(before, snapshot(t, cfg.DataDir)); diff != "" {
				t.Errorf("the refused start changed the data dir (-before +after):\n%s", diff)
			}
		})
	}
}

// An existing empty plugin dir serves, with a warning.
func TestEmptyPluginDirServesWithAWarning(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	cfg.PluginDir = t.TempDir()
	logs, err := runOnce(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "the plugin dir is empty") {
		t.Errorf("no warning about the empty plugin dir:\n%s", logs)
	}
}

// The listener answers as soon as it is bound, and /readyz says not ready
// until the host is assembled (the catalog loaded); a plugin that hangs in
// Describe is rejected at the describe deadline and the others load.
func TestListenerFirstNotReadyUntilCatalogued(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	hung := testManifest("hung")
	hung.DisplayName = "hang in describe"
	plantManifested(t, cfg.PluginDir, "hung", hung)
	plantManifested(t, cfg.PluginDir, "also-hung", hung)
	cfg.PluginDescribeTimeout = 5 * time.Second
	type answer struct {
		path   string
		status int
		body   apitypes.Error
	}
	var early []answer
	cfg.OnListen = func(addr string) {
		// Run waits for this call: the host is not assembled yet.
		for _, path := range []string{"/readyz", "/v1/connectors", "/healthz"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Errorf("GET %s while starting: %v", path, err)
				continue
			}
			a := answer{path: path, status: resp.StatusCode}
			_ = json.NewDecoder(resp.Body).Decode(&a.body)
			resp.Body.Close()
			early = append(early, a)
		}
	}
	r := start(t, cfg)
	want := map[string]int{"/readyz": 503, "/v1/connectors": 503, "/healthz": 200}
	if len(early) != len(want) {
		t.Fatalf("answers while starting: %+v", early)
	}
	for _, a := range early {
		if a.status != want[a.path] {
			t.Errorf("GET %s while starting: %d, want %d", a.path, a.status, want[a.path])
		}
		if a.status == 503 && a.body.Error.Code != apitypes.CodeUnavailable {
			t.Errorf("GET %s while starting: body %+v, want code unavailable", a.path, a.body)
		}
	}
	r.ok(http.StatusOK, "GET", "/readyz", nil, nil)
	var list apitypes.List[apitypes.Connector]
	r.ok(http.StatusOK, "GET", "/v1/connectors", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ConnectorKey != "demo" {
		t.Errorf("connectors %+v, want demo alone", list.Items)
	}
	var all apitypes.ConnectorList
	r.ok(http.StatusOK, "GET", "/v1/connectors?all=true", nil, &all)
	if len(all.Rejected) != 2 {
		t.Fatalf("rejected %+v, want the two hung plugins", all.Rejected)
	}
	for _, rej := range all.Rejected {
		if rej.Code != "plugin_describe_timeout" || !strings.Contains(rej.Reason, "within 5s") {
			t.Errorf("rejected %+v, want plugin_describe_timeout within 5s", rej)
		}
	}
}

// A new data dir whose keyset would be made under a KEK that cannot be
// had (a missing --kek-file, a --kms-uri no client serves) is refused
// before the store is opened: the data dir is not created.
func TestUnusableKEKRefusesANewDataDir(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		change func(cfg *server.Config)
		says   []string
	}{
		"missing KEK file": {
			change: func(cfg *server.Config) { cfg.KEKFile = filepath.Join(filepath.Dir(cfg.DataDir), "no-kek") },
			says:   []string{"create keyset", "no-kek"},
		},
		"KMS URI no client serves": {
			change: func(cfg *server.Config) { cfg.KMSURI = "bogus://key" },
			says:   []string{"create keyset", "kms bogus://"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(t)
			tc.change(&cfg)
			_, err := runOnce(t, cfg)
			if err == nil {
				t.Fatal("Run succeeded; want a refusal")
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused start created the data dir: %v", err)
			}
		})
	}
}
