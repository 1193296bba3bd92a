package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
)

// Migrate applies the dialect's pending migrations to db and returns the
// schema version. It is idempotent: on an up-to-date database it applies
// nothing. logger receives goose's progress lines; nil discards them.
func Migrate(ctx context.Context, db *sql.DB, d Dialect, logger *slog.Logger) (int64, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	} else {
		opts = append(opts, goose.WithLogger(goose.NopLogger()))
	}
	if d.MigrationLock != nil {
		l, err := d.MigrationLock()
		if err != nil {
			return 0, fmt.Errorf("sqlstore: migrate %s: lock: %w", d.Name, err)
		}
		opts = append(opts, goose.WithSessionLocker(l))
	}
	p, err := goose.NewProvider(d.Goose, db, d.Migrations, opts...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrate %s: %w", d.Name, err)
	}
	// p.Close would close db, which the caller owns: it is not called.
	if logger != nil {
		// goose logs a migration once it is done; one that rewrites a
		// large table (version 6 moves every record: ≈13 s per million
		// on SQLite) would leave the start silent until then.
		if from, err := p.GetDBVersion(ctx); err == nil {
			if pending, err := p.HasPending(ctx); err == nil && pending {
				logger.Info("store migration: applying the pending versions; a version that rewrites the records takes a while on a large store",
					"dialect", d.Name, "from_version", from)
			}
		}
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("sqlstore: migrate %s: %w", d.Name, err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: migrate %s: version: %w", d.Name, err)
	}
	return v, nil
}
