package postgres

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/connhost/connhost/host/store"
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

func TestMigrateStreamRecords(t *testing.T) {
	t.Parallel()
	cc, err := pgx.ParseConfig(pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	storetest.MigrateStreamRecords(t, stdlib.OpenDB(*cc), Dialect())
}

// TestCommitBatchCopyConflict: a stream's records are copied in until a
// copy meets a key the stream holds; that batch is committed again as an
// upsert, with the same result as one: the key keeps its place, new keys
// follow in emit order, and the checkpoint and the run's counts commit once.
func TestCommitBatchCopyConflict(t *testing.T) {
	t.Parallel()
	s := openTest(t, pgtest.Schema(t), nil)
	ctx := t.Context()
	if _, err := s.UpsertConnector(ctx, store.ConnectorRegistration{Key: "copy", Version: "1",
		Manifest: json.RawMessage(`{"connector_key":"copy","version":"1"}`), Path: "/copy", SHA256: strings.Repeat("00", 32)}); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateConnection(ctx, store.NewConnection{ConnectorKey: "copy"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRun(ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, store.LeaseRequest{ConnectionID: c.ID, RunID: r.ID, Holder: "test", TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MarkRunRunning(ctx, r.ID, nil); err != nil {
		t.Fatal(err)
	}
	rec := func(stream, key, data string) store.Record {
		return store.Record{Stream: stream, Key: key, Data: json.RawMessage(data)}
	}
	batches := [][]store.Record{
		{rec("events", "a", `1`), rec("events", "b", `2`), rec("events", "c", `3`)}, // copied
		{rec("events", "d", `4`), rec("events", "e", `5`), rec("events", "a", `6`)}, // copy meets a: upserted
		{rec("events", "f", `7`), rec("other", "x", `8`), rec("events", "b", `9`)},  // events is upserted now, and so the batch
		{rec("other", "y", `10`), rec("other", "x", `11`)},                          // copy meets x: upserted
	}
	for i, b := range batches {
		if err := s.CommitBatch(ctx, c.ID, r.ID, b, []byte(strconv.Itoa(i))); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	page, err := s.ListRecords(ctx, store.RecordQuery{ConnectionID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		got = append(got, r.Stream+"/"+r.Key+"="+string(r.Data))
	}
	want := []string{"events/a=6", "events/b=9", "events/c=3", "events/d=4", "events/e=5", "events/f=7", "other/x=11", "other/y=10"}
	if !slices.Equal(got, want) {
		t.Errorf("records = %v, want %v", got, want)
	}
	run, err := s.GetRun(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Records != 11 || !maps.Equal(run.StreamRecords, map[string]int64{"events": 8, "other": 3}) {
		t.Errorf("run records = %d %v, want 11 {events:8 other:3}", run.Records, run.StreamRecords)
	}
	cp, ok, err := s.GetCheckpoint(ctx, c.ID)
	if err != nil || !ok || string(cp) != "3" {
		t.Errorf("checkpoint = %q, %v, %v; want \"3\"", cp, ok, err)
	}
}
