package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/storetest"
)

func openTest(t testing.TB, url string, now func() time.Time) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{URL: url, Now: now, MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestStoreSuite runs the same suite as the SQLite backend, unchanged.
func TestStoreSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, now func() time.Time) store.Store {
		return openTest(t, pgtest.Schema(t), now)
	})
}

// Hosts that boot together migrate once: goose's session lock makes the
// others wait and find the schema current.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.Schema(t)
	const hosts = 5
	var wg sync.WaitGroup
	versions := make([]int64, hosts)
	errs := make([]error, hosts)
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), Config{URL: url, MaxConns: 2})
			errs[i] = err
			if err == nil {
				versions[i] = s.SchemaVersion()
				_ = s.Close()
			}
		}()
	}
	wg.Wait()
	for i := range hosts {
		if errs[i] != nil {
			t.Fatalf("host %d: %v", i, errs[i])
		}
		if versions[i] != versions[0] || versions[0] < 2 {
			t.Fatalf("versions = %v", versions)
		}
	}
	s := openTest(t, url, nil)
	var applied int
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if int64(applied) != versions[0] {
		t.Fatalf("goose recorded %d applied migrations for version %d: a migration ran twice", applied, versions[0])
	}
}

func TestOpenErrorsKeepThePasswordOut(t *testing.T) {
	t.Parallel()
	const password = "hunter2-canary-pw"
	tests := map[string]struct {
		url  string
		want error
	}{
		"not a URL":        {url: "postgres://u:" + password + "@[::1", want: ErrBadURL},
		"nobody listening": {url: "postgres://u:" + password + "@127.0.0.1:1/db?connect_timeout=2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Open(t.Context(), Config{URL: tc.url})
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("the error quotes the password: %v", err)
			}
		})
	}
}

// BenchmarkQueue is storetest.BenchQueue on PostgreSQL.
func BenchmarkQueue(b *testing.B) {
	s, err := Open(b.Context(), Config{URL: pgtest.Schema(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchQueue(b, s)
}
