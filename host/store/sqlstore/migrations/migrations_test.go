package migrations

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	createTable = regexp.MustCompile(`(?is)CREATE TABLE (\w+) \((.*?)\n\)`)
	columnLine  = regexp.MustCompile(`^\s*(\w+)\s+\w+`)
	addColumn   = regexp.MustCompile(`(?i)ALTER TABLE (\w+) ADD COLUMN (\w+)`)
	fileName    = regexp.MustCompile(`^\d{5}_[a-z0-9_]+\.sql$`)
)

// schema maps each table a migration set creates to its columns, sorted.
func schema(t *testing.T, fsys fs.FS) (files []string, tables map[string][]string) {
	t.Helper()
	tables = map[string][]string{}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !fileName.MatchString(e.Name()) {
			t.Errorf("%s: migrations are named NNNNN_description.sql", e.Name())
		}
		files = append(files, e.Name())
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		up, _, ok := strings.Cut(string(b), "-- +goose Down")
		if !ok || !strings.Contains(up, "-- +goose Up") {
			t.Errorf("%s: no goose Up and Down sections", e.Name())
		}
		for _, m := range createTable.FindAllStringSubmatch(up, -1) {
			var cols []string
			for _, line := range strings.Split(m[2], "\n") {
				c := columnLine.FindStringSubmatch(line)
				if c == nil || slices.Contains([]string{"PRIMARY", "CHECK", "UNIQUE", "FOREIGN", "CONSTRAINT"}, strings.ToUpper(c[1])) {
					continue
				}
				cols = append(cols, strings.ToLower(c[1]))
			}
			slices.Sort(cols)
			tables[strings.ToLower(m[1])] = cols
		}
		for _, m := range addColumn.FindAllStringSubmatch(up, -1) {
			table := strings.ToLower(m[1])
			tables[table] = append(tables[table], strings.ToLower(m[2]))
			slices.Sort(tables[table])
		}
	}
	return files, tables
}

// TestDialectParity: every version exists for every dialect, and creates
// the same tables with the same columns, so one store runs on both.
func TestDialectParity(t *testing.T) {
	t.Parallel()
	sqliteFiles, sqliteTables := schema(t, SQLite())
	pgFiles, pgTables := schema(t, Postgres())
	if d := cmp.Diff(sqliteFiles, pgFiles); d != "" {
		t.Errorf("migration files differ (-sqlite +postgres):\n%s", d)
	}
	if d := cmp.Diff(sqliteTables, pgTables); d != "" {
		t.Errorf("schemas differ (-sqlite +postgres):\n%s", d)
	}
	for _, table := range []string{"connectors", "connections", "credentials", "runs", "leases", "records",
		"checkpoints", "audit_events", "enrollment", "locks", "occurrences", "hosts"} {
		if _, ok := sqliteTables[table]; !ok {
			t.Errorf("no table %s", table)
		}
	}
	if cols := sqliteTables["connections"]; !slices.Contains(cols, "schedule_gen") || !slices.Contains(cols, "last_due_at") {
		t.Errorf("connections columns = %v", cols)
	}
	if cols := sqliteTables["credentials"]; !slices.Contains(cols, "ciphertext") || !slices.Contains(cols, "key_id") {
		t.Errorf("credentials columns = %v", cols)
	}
}
