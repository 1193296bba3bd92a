package storetest

import (
	"context"
	"encoding/json"
	"os"
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

// IngestTotal is how many records BenchIngest commits per round: a
// million, the unit for rate and bytes on disk. CONNHOST_BENCH_RECORDS
// overrides it (a quick run).
func IngestTotal() int {
	if n, err := strconv.Atoi(os.Getenv("CONNHOST_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// BenchIngest commits IngestTotal demo-like records (stream "events", key
// the decimal id, data the demo's event JSON) to one connection of a fresh
// store, batch records per CommitBatch with a checkpoint each, the way the
// runner commits a demo run. open returns the fresh store and a function
// giving its bytes on disk once the records are in. It reports records/s
// and MB per million records.
func BenchIngest(b *testing.B, batch int, open func(b *testing.B) (store.Store, func() int64)) {
	total := IngestTotal()
	var elapsed time.Duration
	var bytes int64
	for b.Loop() {
		b.StopTimer()
		s, size := open(b)
		ctx := context.Background()
		connID, runID := benchRun(b, s)
		tail := []byte(`,"connection_id":"` + connID + `"}`)
		recs := make([]store.Record, 0, batch)
		buf := make([]byte, 0, batch*(len(tail)+32))
		b.StartTimer()
		t0 := time.Now()
		for next := 0; next < total; {
			recs, buf = recs[:0], buf[:0]
			for ; len(recs) < batch && next < total; next++ {
				start := len(buf)
				buf = append(buf, `{"id":`...)
				buf = strconv.AppendInt(buf, int64(next), 10)
				buf = append(buf, `,"seq":`...)
				buf = strconv.AppendInt(buf, int64(next), 10)
				buf = append(buf, tail...)
				recs = append(recs, store.Record{Stream: "events", Key: strconv.Itoa(next), Data: buf[start:len(buf):len(buf)]})
			}
			if err := s.CommitBatch(ctx, connID, runID, recs, []byte(`{"next":`+strconv.Itoa(next)+`}`)); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(t0)
		b.StopTimer()
		bytes += size()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*total)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(bytes)/float64(b.N)/float64(total), "MB/1M")
}

// benchRun creates a connection with a running run that holds its lease.
func benchRun(b *testing.B, s store.Store) (connID, runID string) {
	ctx := context.Background()
	mj := json.RawMessage(`{"connector_key":"bench","version":"1"}`)
	if _, err := s.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: mj,
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		b.Fatal(err)
	}
	c, err := s.CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	r, err := s.CreateRun(ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerManual})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, store.LeaseRequest{ConnectionID: c.ID, RunID: r.ID, Holder: "bench", TTL: time.Hour}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.MarkRunRunning(ctx, r.ID, nil); err != nil {
		b.Fatal(err)
	}
	return c.ID, r.ID
}
