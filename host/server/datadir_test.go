package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/host/store/sqlite"
)

// initialised starts a host once — a connection with a stored credential
// — and stops it: a data dir as an operator leaves it.
func initialised(t *testing.T) server.Config {
	t.Helper()
	cfg := baseConfig(t)
	r := start(t, cfg)
	c := createDemo(r, map[string]any{"records": 2})
	r.ok(http.StatusOK, http.MethodPut, "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "tok-datadir-1234"}}, nil)
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// snapshot hashes every file of the data dir, the lock file included (a
// refused start must not leave one it made).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, dir)] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runOnce starts the host and returns Run's error if it refused to start,
// or nil after a clean start and stop.
func runOnce(t *testing.T, cfg server.Config) (logs string, err error) {
	t.Helper()
	buf := &hosttest.SyncBuffer{}
	cfg.LogOutput = buf
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.OnReady = func(string) { cancel() }
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()
	select {
	case err := <-done:
		return buf.String(), err
	case <-time.After(60 * time.Second):
		t.Fatal("server.Run did not return")
		return "", nil
	}
}

// A damaged data dir is refused at boot with what is wrong, what to
// restore and the flag that starts over on purpose — and the refusal
// changes none of the data dir's bytes.
func TestDamagedDataDirIsRefused(t *testing.T) {
	t.Parallel()
	dbFiles := func(cfg server.Config) []string {
		db := filepath.Join(cfg.DataDir, sqlite.FileName)
		return []string{db, db + "-wal", db + "-shm"}
	}
	tests := map[string]struct {
		damage func(t *testing.T, cfg server.Config)
		want   error
		says   []string
	}{
		"store emptied": {
			damage: func(t *testing.T, cfg server.Config) {
				for i, p := range dbFiles(cfg) {
					if i == 0 {
						_ = os.Truncate(p, 0)
					} else {
						_ = os.Remove(p)
					}
				}
			},
			want: server.ErrStoreMissing, says: []string{"missing or empty", "--new-store", "connhost.db", "-wal"},
		},
		"store deleted": {
			damage: func(t *testing.T, cfg server.Config) {
				for _, p := range dbFiles(cfg) {
					_ = os.Remove(p)
				}
			},
			want: server.ErrStoreMissing, says: []string{"was initialised (store store_", "--new-store"},
		},
		"store emptied in a data dir from before store.id": {
			damage: func(t *testing.T, cfg server.Config) {
				_ = os.Remove(filepath.Join(cfg.DataDir, server.MarkerFile))
				for _, p := range dbFiles(cfg) {
					_ = os.Remove(p)
				}
			},
			want: server.ErrStoreMissing, says: []string{"operator token shows an earlier start", "--new-store"},
		},
		"another data dir's store": {
			damage: func(t *testing.T, cfg server.Config) {
				b := []byte(`{"store_id":"store_01OTHER","store":"sqlite:///elsewhere","created_at":"2026-01-01T00:00:00Z"}`)
				if err := os.WriteFile(filepath.Join(cfg.DataDir, server.MarkerFile), b, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: server.ErrStoreMismatch, says: []string{"store_01OTHER", server.MarkerFile},
		},
		"keyset deleted while credentials exist": {
			damage: func(t *testing.T, cfg server.Config) {
				if err := os.Remove(filepath.Join(cfg.DataDir, server.KeysetFile)); err != nil {
					t.Fatal(err)
				}
			},
			want: server.ErrKeysetMissing, says: []string{"key ids [", "--new-keyset", "restore the keyset"},
		},
		"garbage keyset": {
			damage: func(t *testing.T, cfg server.Config) {
				if err := os.WriteFile(filepath.Join(cfg.DataDir, server.KeysetFile), []byte("{not a keyset"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			says: []string{"keyset", "restore", "from a backup"},
		},
		"keyset readable by others": {
			damage: func(t *testing.T, cfg server.Config) {
				if err := os.Chmod(filepath.Join(cfg.DataDir, server.KeysetFile), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			says: []string{"keyset", "chmod 600"},
		},
		"operator token readable by others": {
			damage: func(t *testing.T, cfg server.Config) {
				if err := os.Chmod(cfg.TokenPath(), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			says: []string{"operator.token", "chmod 600"},
		},
		"no lock file yet, garbage keyset": {
			damage: func(t *testing.T, cfg server.Config) {
				if err := os.Remove(filepath.Join(cfg.DataDir, server.LockFile)); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cfg.DataDir, server.KeysetFile), []byte("{not a keyset"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			says: []string{"keyset", "from a backup"},
		},
		"operator token emptied": {
			damage: func(t *testing.T, cfg server.Config) {
				if err := os.Truncate(cfg.TokenPath(), 0); err != nil {
					t.Fatal(err)
				}
			},
			says: []string{"is empty", "delete the file"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := initialised(t)
			tc.damage(t, cfg)
			before := snapshot(t, cfg.DataDir)
			logs, err := runOnce(t, cfg)
			if err == nil {
				t.Fatalf("a damaged data dir started:\n%s", logs)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the refusal does not say %q: %v", s, err)
				}
			}
			after := snapshot(t, cfg.DataDir)
			for p, sum := range before {
				if after[p] != sum {
					t.Errorf("the refusal changed %s", p)
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("the refusal created %s", p)
				}
			}
		})
	}
}

// The flags that start over on purpose: --new-store serves an empty
// store under a new identity; --new-keyset serves with a new keyset, the
// old credentials refused until captured again. Either is refused where
// there is nothing to start over.
func TestStartingOverOnPurpose(t *testing.T) {
	t.Parallel()
	t.Run("new store", func(t *testing.T) {
		t.Parallel()
		cfg := initialised(t)
		old, _ := os.ReadFile(filepath.Join(cfg.DataDir, server.MarkerFile))
		db := filepath.Join(cfg.DataDir, sqlite.FileName)
		for _, p := range []string{db, db + "-wal", db + "-shm"} {
			_ = os.Remove(p)
		}
		cfg.NewStore = true
		r := start(t, cfg)
		var l apitypes.List[apitypes.Connection]
		r.ok(http.StatusOK, http.MethodGet, "/v1/connections", nil, &l)
		if len(l.Items) != 0 {
			t.Fatalf("a new store holds %d connections", len(l.Items))
		}
		if err := r.shutdown(); err != nil {
			t.Fatal(err)
		}
		now, _ := os.ReadFile(filepath.Join(cfg.DataDir, server.MarkerFile))
		if string(now) == string(old) || !strings.Contains(string(now), `"store_id": "store_`) {
			t.Fatalf("marker after --new-store: %s (before %s)", now, old)
		}
		// The flag is for an empty store only; without it the new store
		// is simply served.
		if _, err := runOnce(t, cfg); !errors.Is(err, server.ErrInvalidConfig) || !strings.Contains(err.Error(), "--new-store") {
			t.Fatalf("--new-store on a store that is not empty: %v", err)
		}
		cfg.NewStore = false
		if logs, err := runOnce(t, cfg); err != nil {
			t.Fatalf("restart: %v\n%s", err, logs)
		}
	})
	t.Run("new keyset", func(t *testing.T) {
		t.Parallel()
		cfg := initialised(t)
		if err := os.Remove(filepath.Join(cfg.DataDir, server.KeysetFile)); err != nil {
			t.Fatal(err)
		}
		cfg.NewKeyset = true
		if logs, err := runOnce(t, cfg); err != nil {
			t.Fatalf("--new-keyset: %v\n%s", err, logs)
		}
		if _, err := runOnce(t, cfg); !errors.Is(err, server.ErrInvalidConfig) || !strings.Contains(err.Error(), "--new-keyset") {
			t.Fatalf("--new-keyset with a keyset: %v", err)
		}
		// The old credential is not called active: the loaded keyset
		// does not hold its key, and enrollment says so, typed.
		cfg.NewKeyset = false
		r := start(t, cfg)
		var l apitypes.List[apitypes.Connection]
		r.ok(http.StatusOK, http.MethodGet, "/v1/connections", nil, &l)
		if len(l.Items) != 1 {
			t.Fatalf("%d connections", len(l.Items))
		}
		var cred apitypes.Credential
		r.ok(http.StatusOK, http.MethodGet, "/v1/connections/"+l.Items[0].ID+"/credential", nil, &cred)
		if cred.State != "key_missing" || cred.Present {
			t.Fatalf("credential under a lost key = %+v, want state key_missing, not present", cred)
		}
		var enr apitypes.Enrollment
		r.ok(http.StatusOK, http.MethodGet, "/v1/enrollment", nil, &enr)
		if len(enr.Connections) != 1 || enr.Connections[0].Outcome != "skipped_key_missing" {
			t.Fatalf("enrollment = %+v, want skipped_key_missing", enr)
		}
	})
}
