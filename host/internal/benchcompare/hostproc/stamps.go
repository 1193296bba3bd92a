package hostproc

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the store's own driver, read-only here
)

// sqliteFile is package sqlite's FileName.
const sqliteFile = "connhost.db"

// stampReader reads a run row's created_at, started_at and ended_at from
// the store itself: the API prints them to the second, a run of one
// record lasts milliseconds.
type stampReader struct {
	once sync.Once
	db   *sql.DB // SQLite, read-only
	pg   *pgx.Conn
	err  error
	mu   sync.Mutex // pgx.Conn is not safe for concurrent use
}

func (h *Host) stamps(ctx context.Context, runID string) (created, started, ended time.Time, err error) {
	s := &h.stampsDB
	s.once.Do(func() {
		if strings.HasPrefix(h.cfg.Store, "postgres") {
			s.pg, s.err = pgx.Connect(ctx, h.cfg.Store)
			return
		}
		path := filepath.Join(h.cfg.DataDir, sqliteFile)
		s.db, s.err = sql.Open("sqlite", "file:"+path+"?mode=ro&"+url.Values{"_pragma": {"busy_timeout(5000)", "query_only(1)"}}.Encode())
	})
	if s.err != nil {
		return created, started, ended, fmt.Errorf("hostproc: open the store: %w", s.err)
	}
	const q = `SELECT created_at, started_at, ended_at FROM runs WHERE id = `
	if s.pg != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		err = s.pg.QueryRow(ctx, q+"$1", runID).Scan(&created, &started, &ended)
		return created, started, ended, err
	}
	var c, st, e string
	if err := s.db.QueryRowContext(ctx, q+"?", runID).Scan(&c, &st, &e); err != nil {
		return created, started, ended, err
	}
	for _, p := range []struct {
		s   string
		dst *time.Time
	}{{c, &created}, {st, &started}, {e, &ended}} {
		if *p.dst, err = time.Parse(time.RFC3339Nano, p.s); err != nil {
			return created, started, ended, err
		}
	}
	return created, started, ended, nil
}

func (s *stampReader) close() {
	if s.db != nil {
		_ = s.db.Close()
	}
	if s.pg != nil {
		_ = s.pg.Close(context.Background())
	}
}
