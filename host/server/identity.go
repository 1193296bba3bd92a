package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/connhost/connhost/host/store"
	"github.com/oklog/ulid/v2"
)

// MarkerFile is the data dir's record of the store it belongs to,
// written at the first start: "initialised" means this file exists. A
// store that comes back missing or empty, or a different store, is then
// refused at boot instead of served as a fresh start.
const MarkerFile = "store.id"

// Errors of a damaged data dir.
var (
	// ErrStoreMissing: the data dir was initialised but its store is
	// missing or empty. Restore it, or start an empty one on purpose
	// (Config.NewStore).
	ErrStoreMissing = errors.New("server: the store is missing or empty")
	// ErrStoreMismatch: the data dir belongs to another store.
	ErrStoreMismatch = errors.New("server: the store is not this data dir's")
	// ErrKeysetMissing: no keyset, while the store holds credentials
	// sealed under one.
	ErrKeysetMissing = errors.New("server: the keyset is missing")
)

// marker is the content of MarkerFile.
type marker struct {
	StoreID   string    `json:"store_id"`
	Store     string    `json:"store"` // where it was, credentials redacted
	CreatedAt time.Time `json:"created_at"`
}

func readMarker(dataDir string) (marker, bool, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, MarkerFile))
	if os.IsNotExist(err) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, fmt.Errorf("server: read %s: %w", MarkerFile, err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.StoreID == "" {
		return marker{}, false, fmt.Errorf("server: %s in %s is damaged (want {\"store_id\": …}); restore it or remove it to adopt the store it is started with", MarkerFile, dataDir)
	}
	return m, true, nil
}

func writeMarker(dataDir string, m marker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dataDir, MarkerFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("server: write %s: %w", MarkerFile, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("server: write %s: %w", MarkerFile, err)
	}
	return nil
}

// checkSQLiteFile refuses, before the store is opened (so nothing in the
// data dir changes), a SQLite file that is missing or empty in a data dir
// that was initialised — by its marker, or, for a data dir from before
// markers, by an operator token an earlier start wrote — and a
// non-empty file with Config.NewStore.
func checkSQLiteFile(cfg *Config, loc StoreLocation, m marker, hasMarker bool) error {
	fi, err := os.Stat(loc.Path)
	empty := os.IsNotExist(err) || (err == nil && fi.Size() == 0)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("server: store file: %w", err)
	}
	switch {
	case cfg.NewStore && !empty:
		return fmt.Errorf("%w: --new-store starts an empty store, and %s is not empty (%d bytes); drop the flag to serve it (or, to start empty in place of a damaged store, move it and its -wal and -shm files aside first)",
			ErrInvalidConfig, loc.Path, fi.Size())
	case !empty || cfg.NewStore:
		return nil
	case hasMarker:
		return missingStore(cfg.DataDir, loc, fmt.Sprintf("store %s, first started %s", m.StoreID, m.CreatedAt.Format(time.RFC3339)))
	}
	if _, err := os.Stat(cfg.TokenPath()); err == nil {
		return missingStore(cfg.DataDir, loc, "its operator token shows an earlier start")
	}
	return nil
}

func missingStore(dataDir string, loc StoreLocation, why string) error {
	what := "restore the store from a backup"
	if loc.Kind == StoreSQLite {
		what = fmt.Sprintf("restore %s (with its -wal and -shm files) from a backup", loc.Path)
	}
	return fmt.Errorf("%w: the data dir %s was initialised (%s) but its store %s is missing or empty: %s, or run `connhost serve --new-store` once to start an empty store on purpose (the old store's connections, credentials and records do not come back)",
		ErrStoreMissing, dataDir, why, loc.Redacted, what)
}

// identityRefusal refuses a store whose identity is id (ok: it has one)
// for the data dir whose marker is m: another store's, a store with no
// identity where the data dir had one, or --new-store on a store that is
// not empty. A SQLite store is asked through sqlite.Preflight, before it
// is opened for writing; others once open.
func identityRefusal(cfg *Config, loc StoreLocation, m marker, hasMarker bool, id string, ok bool) error {
	switch {
	case ok && cfg.NewStore && loc.Kind != StoreSQLite:
		return fmt.Errorf("%w: --new-store starts an empty store, and %s is store %s; drop the flag to serve it",
			ErrInvalidConfig, loc.Redacted, id)
	case ok && hasMarker && id != m.StoreID:
		return fmt.Errorf("%w: the data dir %s belongs to store %s, but %s is store %s: point --store at this data dir's store, or --data-dir at that store's (or remove %s to adopt the store on purpose)",
			ErrStoreMismatch, cfg.DataDir, m.StoreID, loc.Redacted, id, filepath.Join(cfg.DataDir, MarkerFile))
	case !ok && hasMarker && !cfg.NewStore:
		return missingStore(cfg.DataDir, loc, fmt.Sprintf("store %s, first started %s", m.StoreID, m.CreatedAt.Format(time.RFC3339)))
	}
	return nil
}

// reconcileIdentity checks the opened store against the data dir's
// marker and writes whichever is missing: the store's id at its first
// start (or an --new-store start), the marker in a new data dir (a new
// host of a shared store, or a data dir from before markers).
func reconcileIdentity(ctx context.Context, st store.Identity, cfg *Config, loc StoreLocation, m marker, hasMarker bool, now time.Time) (string, error) {
	id, ok, err := st.StoreID(ctx)
	if err != nil {
		return "", err
	}
	if err := identityRefusal(cfg, loc, m, hasMarker, id, ok); err != nil {
		return "", err
	}
	switch {
	case !ok:
		if id, err = st.InitStoreID(ctx, "store_"+ulid.Make().String()); err != nil {
			return "", err
		}
	}
	if !hasMarker || m.StoreID != id {
		if err := writeMarker(cfg.DataDir, marker{StoreID: id, Store: loc.Redacted, CreatedAt: now.UTC()}); err != nil {
			return "", err
		}
	}
	return id, nil
}
