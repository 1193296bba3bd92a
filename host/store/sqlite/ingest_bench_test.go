package sqlite

import (
	"fmt"
	"os"
	"testing"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/storetest"
)

// BenchmarkIngest commits a million demo records per round at several
// batch sizes; the bytes are the database file and its WAL after a
// checkpoint that truncates the WAL.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1000, 5000, 10000, 20000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			storetest.BenchIngest(b, batch, func(b *testing.B) (store.Store, func() int64) {
				s := openTest(b, "", nil)
				return s, func() int64 {
					if _, err := s.w.ExecContext(b.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
						b.Fatal(err)
					}
					var n int64
					for _, suffix := range []string{"", "-wal"} {
						if fi, err := os.Stat(s.Path() + suffix); err == nil {
							n += fi.Size()
						}
					}
					return n
				}
			})
		})
	}
}
