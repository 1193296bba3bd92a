package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/connhost/connhost/host/store/storetest"
)

func TestRecordTables(t *testing.T) {
	t.Parallel()
	s := openTest(t, pgtest.Schema(t), nil)
	storetest.RecordTables(t, s, s.db, Dialect())
}

func TestMigrateRecords(t *testing.T) {
	t.Parallel()
	cc, err := pgx.ParseConfig(pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.MigrateRecords(t, stdlib.OpenDB(*cc), Dialect())
}
