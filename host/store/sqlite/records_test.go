package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/connhost/connhost/host/store/storetest"
)

func TestRecordTables(t *testing.T) {
	t.Parallel()
	s := openTest(t, "", nil)
	storetest.RecordTables(t, s, s.w, Dialect())
}

func TestMigrateRecords(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), FileName), map[string][]string{"_pragma": {"foreign_keys(1)"}}))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	storetest.MigrateRecords(t, db, Dialect())
}

func TestMigrateStreamRecords(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", dsn(filepath.Join(t.TempDir(), FileName), map[string][]string{"_pragma": {"foreign_keys(1)"}}))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	storetest.MigrateStreamRecords(t, db, Dialect())
}
