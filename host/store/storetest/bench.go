package storetest

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/store"
)

// BenchQueue measures the dispatch queue's three writes on 10,000
// connections of s (an empty store): recording their ticks in batches of
// 1,000, claiming them 64 at a time, and completing 64 at a time — the
// cost per occurrence of each, on one client with no contention.
func BenchQueue(b *testing.B, s store.Store) {
	ctx := context.Background()
	mj := json.RawMessage(`{"connector_key":"bench","version":"1"}`)
	if _, err := s.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: mj,
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		b.Fatal(err)
	}
	const n = 10_000
	ids := make([]string, n)
	for i := range ids {
		c, err := s.CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench", Label: strconv.Itoa(i)})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = c.ID
	}
	due := time.Now().Truncate(time.Second)
	var rec, claim, complete time.Duration
	for b.Loop() {
		due = due.Add(time.Hour)
		t0 := time.Now()
		for i := 0; i < n; i += 1000 {
			ticks := make([]store.Tick, 0, 1000)
			for _, id := range ids[i : i+1000] {
				ticks = append(ticks, store.Tick{ConnectionID: id, DueAt: due, RunAt: due})
			}
			if _, _, err := s.RecordTicks(ctx, ticks); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		var claimed []store.Occurrence
		for len(claimed) < n {
			got, err := s.ClaimDue(ctx, "host_bench", due, 64)
			if err != nil || len(got) == 0 {
				b.Fatal(err, len(got))
			}
			claimed = append(claimed, got...)
		}
		t2 := time.Now()
		for i := 0; i < n; i += 64 {
			var cs []store.Completion
			for _, o := range claimed[i:min(n, i+64)] {
				cs = append(cs, store.Completion{ConnectionID: o.ConnectionID, OccurrenceID: o.ID, Holder: "host_bench"})
			}
			if _, err := s.CompleteOccurrences(ctx, cs); err != nil {
				b.Fatal(err)
			}
		}
		rec, claim, complete = rec+t1.Sub(t0), claim+t2.Sub(t1), complete+time.Since(t2)
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*n) / 1000 }
	b.ReportMetric(per(rec), "record-µs/occ")
	b.ReportMetric(per(claim), "claim-µs/occ")
	b.ReportMetric(per(complete), "complete-µs/occ")
}
