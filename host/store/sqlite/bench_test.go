package sqlite

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlstore"
	"github.com/connhost/connhost/host/store/storetest"
)

// BenchmarkCommitBatch1000 commits batches of 1,000 records (new keys, then
// the same keys again) with a checkpoint: one transaction, one fsync each.
func BenchmarkCommitBatch1000(b *testing.B) {
	for _, mode := range []string{"insert", "update"} {
		b.Run(mode, func(b *testing.B) {
			s := openTest(b, "", nil)
			c := mustConnection(b, s)
			r := mustRunningRun(b, s, c.ID)
			batch := func(n int) []store.Record {
				recs := make([]store.Record, 1000)
				for i := range recs {
					key := fmt.Sprintf("key-%07d", i)
					if mode == "insert" {
						key = fmt.Sprintf("key-%04d-%07d", n, i)
					}
					recs[i] = store.Record{Stream: "items", Key: key,
						Data: json.RawMessage(`{"id":12345,"name":"a typical record","tags":["x","y"],"updated":"2026-01-01T00:00:00Z"}`)}
				}
				return recs
			}
			n := 0
			for b.Loop() {
				b.StopTimer()
				recs := batch(n)
				b.StartTimer()
				if err := s.CommitBatch(b.Context(), c.ID, r.ID, recs, []byte(fmt.Sprint(n))); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// seedCredentials inserts n connections with an active credential each in
// one transaction (the API would take n fsynced transactions) and returns
// their ids.
func seedCredentials(b *testing.B, s *Store, n int) []string {
	b.Helper()
	ctx := b.Context()
	if _, err := s.UpsertConnector(ctx, registration("alpha")); err != nil {
		b.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	now := sqlstore.FormatTime(time.Now())
	ids := make([]string, n)
	ct := make([]byte, 120) // a sealed two-value secret is about this size
	for i := range ids {
		ids[i] = fmt.Sprintf("conn_%026d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO connections (id, connector_key, state, created_at, updated_at)
			VALUES (?, 'alpha', 'active', ?, ?)`, ids[i], now, now); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO credentials (connection_id, kind, state, names, ciphertext, key_id, captured_at, updated_at)
			VALUES (?, 'static_secret', 'active', '["API_USER","API_TOKEN"]', ?, 7, ?, ?)`, ids[i], ct, now, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return ids
}

func BenchmarkHasActiveCredential(b *testing.B) {
	s := openTest(b, "", nil)
	ids := seedCredentials(b, s, 10_000)
	i := 0
	for b.Loop() {
		ok, err := s.HasActiveCredential(b.Context(), ids[i%len(ids)])
		if err != nil || !ok {
			b.Fatalf("HasActiveCredential = %v, %v", ok, err)
		}
		i += 7919 // stride over the table rather than hit one hot row
	}
}

func BenchmarkGetCredential10k(b *testing.B) {
	s := openTest(b, "", nil)
	ids := seedCredentials(b, s, 10_000)
	i := 0
	for b.Loop() {
		c, err := s.GetCredential(b.Context(), ids[i%len(ids)])
		if err != nil || len(c.Ciphertext) == 0 {
			b.Fatalf("GetCredential = %v, %v", c.State, err)
		}
		i += 7919
	}
}

func BenchmarkGetCredentialMeta10k(b *testing.B) {
	s := openTest(b, "", nil)
	ids := seedCredentials(b, s, 10_000)
	i := 0
	for b.Loop() {
		if _, err := s.GetCredentialMeta(b.Context(), ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

// BenchmarkListConnections10k reads connections out of 10,000: the whole
// table at once (the boot sweep), the first page of 100, and a page of 100
// deep in the table through its cursor (the API's keyset paging, which
// should cost the same at any depth).
func BenchmarkListConnections10k(b *testing.B) {
	s := openTest(b, "", nil)
	seedCredentials(b, s, 10_000)
	ctx := b.Context()
	b.Run("all", func(b *testing.B) {
		for b.Loop() {
			if cs, err := s.ListConnections(ctx, store.ConnectionFilter{}); err != nil || len(cs) != 10_000 {
				b.Fatalf("ListConnections: %d, %v", len(cs), err)
			}
		}
	})
	deep := ""
	for f := (store.ConnectionPageFilter{Limit: store.MaxPageSize}); ; {
		page, err := s.ListConnectionPage(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		if page.Next == "" {
			break
		}
		deep, f.Cursor = page.Next, page.Next
	}
	for name, cursor := range map[string]string{"first page": "", "deep page": deep} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				page, err := s.ListConnectionPage(ctx, store.ConnectionPageFilter{Cursor: cursor, Limit: 100})
				if err != nil || len(page.Connections) != 100 {
					b.Fatalf("ListConnectionPage: %d, %v", len(page.Connections), err)
				}
			}
		})
	}
}

// BenchmarkListRecords100k pages through one connection's 100,000 records
// of one stream: the first page of 100 and a page of 100 at the end, which
// should cost the same.
func BenchmarkListRecords100k(b *testing.B) {
	s := openTest(b, "", nil)
	c := mustConnection(b, s)
	r := mustRunningRun(b, s, c.ID)
	ctx := b.Context()
	for n := range 100 {
		recs := make([]store.Record, 1000)
		for i := range recs {
			recs[i] = store.Record{Stream: "items", Key: fmt.Sprintf("key-%03d-%04d", n, i), Data: json.RawMessage(`{"id":1}`)}
		}
		if err := s.CommitBatch(ctx, c.ID, r.ID, recs, []byte(fmt.Sprint(n))); err != nil {
			b.Fatal(err)
		}
	}
	deep := ""
	for q := (store.RecordQuery{ConnectionID: c.ID, Limit: store.MaxPageSize}); ; {
		page, err := s.ListRecords(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if page.Next == "" {
			break
		}
		deep, q.Cursor = page.Next, page.Next
	}
	for name, cursor := range map[string]string{"first page": "", "deep page": deep} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				page, err := s.ListRecords(ctx, store.RecordQuery{ConnectionID: c.ID, Cursor: cursor, Limit: 100})
				if err != nil || len(page.Records) != 100 {
					b.Fatalf("ListRecords: %d, %v", len(page.Records), err)
				}
			}
		})
	}
}

// BenchmarkQueue is storetest.BenchQueue on SQLite.
func BenchmarkQueue(b *testing.B) {
	storetest.BenchQueue(b, openTest(b, "", nil))
}
