package postgres

import (
	"fmt"
	"testing"

	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/storetest"
)

// BenchmarkIngest commits a million demo records per round at several
// batch sizes; the bytes are pg_total_relation_size (heap, indexes,
// TOAST) of every table that holds records and their bookkeeping.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1000, 5000, 10000, 20000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			storetest.BenchIngest(b, batch, func(b *testing.B) (store.Store, func() int64) {
				s := openTest(b, pgtest.Schema(b), nil)
				return s, func() int64 {
					var n int64
					err := s.db.QueryRowContext(b.Context(), `SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint
						FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace
						AND c.relname IN ('records', 'streams', 'record_batches')`).Scan(&n)
					if err != nil {
						b.Fatal(err)
					}
					return n
				}
			})
		})
	}
}
