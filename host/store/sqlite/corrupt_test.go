package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// seeded is a closed store file holding 2,000 records of one connection.
func seeded(t *testing.T) (dir string, connID string) {
	t.Helper()
	dir = t.TempDir()
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c := mustConnection(t, s)
	r := mustRunningRun(t, s, c.ID)
	for n := range 4 {
		recs := make([]store.Record, 500)
		for i := range recs {
			recs[i] = store.Record{Stream: "items", Key: fmt.Sprintf("key-%d-%04d", n, i),
				Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", 200)))}
		}
		if err := s.CommitBatch(context.Background(), c.ID, r.ID, recs, []byte(fmt.Sprint(n))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		t.Fatal(err)
	}
	return dir, c.ID
}

// garble writes 8 KiB of garbage in the middle of the database file.
func garble(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, FileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, 8<<10)
	for i := range junk {
		junk[i] = byte(i*131 + 7)
	}
	if _, err := f.WriteAt(junk, fi.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
}

func wantCorrupt(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrCorrupt) || failure.CodeOf(err) != failure.StoreCorrupt {
		t.Fatalf("err = %v, want store_corrupt", err)
	}
}

// A damaged file is refused when the store opens: quick_check reads every
// page first.
func TestOpenRefusesADamagedFile(t *testing.T) {
	t.Parallel()
	for name, damage := range map[string]func(t *testing.T, dir string){
		"garbage in the middle": garble,
		"not a database": func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, FileName), []byte("this is not a SQLite database, not at all..."), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, _ := seeded(t)
			damage(t, dir)
			_, err := Open(context.Background(), Config{DataDir: dir})
			wantCorrupt(t, err)
		})
	}
}

// A page damaged while the store is open is a typed error the moment a
// read reaches it — never a short page — and the store reports itself
// corrupt from then on.
func TestReadOfADamagedPageIsStoreCorrupt(t *testing.T) {
	t.Parallel()
	dir, connID := seeded(t)
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	garble(t, dir)
	got := 0
	q := store.RecordQuery{ConnectionID: connID, Limit: store.MaxPageSize}
	for {
		page, err := s.ListRecords(context.Background(), q)
		if err != nil {
			wantCorrupt(t, err)
			break
		}
		got += len(page.Records)
		if page.Next == "" {
			t.Fatalf("the listing ended without an error after %d of 2000 records", got)
		}
		q.Cursor = page.Next
	}
	wantCorrupt(t, s.Ping(context.Background()))
}

// dirBytes maps each file of dir to its contents.
func dirBytes(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// Preflight answers from a read-only look: a damaged file is store_corrupt,
// a missing or empty one has nothing to say, and no byte of the directory
// changes either way.
func TestPreflightChangesNothing(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		damage  func(t *testing.T, dir string)
		corrupt bool
	}{
		"sound":                 {damage: func(*testing.T, string) {}},
		"garbage in the middle": {damage: garble, corrupt: true},
		"truncated": {damage: func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, FileName), 3*4096); err != nil {
				t.Fatal(err)
			}
		}, corrupt: true},
		"empty": {damage: func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, FileName), 0); err != nil {
				t.Fatal(err)
			}
		}},
		"missing": {damage: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, FileName)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, _ := seeded(t)
			tc.damage(t, dir)
			before := dirBytes(t, dir)
			got, err := Preflight(context.Background(), filepath.Join(dir, FileName))
			switch {
			case tc.corrupt:
				wantCorrupt(t, err)
			case err != nil:
				t.Fatalf("Preflight = %v", err)
			case len(got.KeyIDs) != 0:
				t.Errorf("Preflight found key ids %v in a store without credentials", got.KeyIDs)
			}
			after := dirBytes(t, dir)
			if len(before) != len(after) {
				t.Errorf("files before %d, after %d", len(before), len(after))
			}
			for f, b := range before {
				if after[f] != b {
					t.Errorf("Preflight changed %s", f)
				}
			}
		})
	}
}
