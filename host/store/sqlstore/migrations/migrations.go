// Package migrations holds the versioned schema of the SQL store, one
// directory per dialect, embedded in the binary and applied with goose.
//
// Both dialects carry the same versions with the same tables, columns and
// constraints; only the type names differ (see each file's header). A new
// version is added to every dialect in the same change — the parity test
// fails otherwise. Files are named NNNNN_description.sql and never edited
// once released.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite returns the SQLite migrations.
func SQLite() fs.FS { return sub("sqlite") }

// Postgres returns the PostgreSQL migrations.
func Postgres() fs.FS { return sub("postgres") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// fs.Sub fails only for an invalid path; dir is a constant above.
		panic(err)
	}
	return f
}
