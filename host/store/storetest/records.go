package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

func testCommitBatchUpsertsByKey(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r1 := f.runningRun(c.ID)
	t0 := f.now()
	f.commit(c.ID, r1.ID, "items", 1, nil, "a", "b")
	must(f.s.FinishRun(f.ctx, r1.ID, store.RunResult{Status: store.RunSucceeded}))(t) // releases its lease

	t1 := f.advance(time.Minute)
	r2 := f.runningRun(c.ID)
	err := f.s.CommitBatch(f.ctx, c.ID, r2.ID, []store.Record{
		{Stream: "items", Key: "a", Data: json.RawMessage(`{"v":2}`)},
		{Stream: "items", Key: "c", Data: json.RawMessage(`{"v":2}`)},
		{Stream: "items", Key: "a", Data: json.RawMessage(`{"v":3}`)}, // last write in a batch wins
		{Stream: "other", Key: "a", Data: json.RawMessage(`[1,"two",null]`)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "records", []store.StoredRecord{
		{ConnectionID: c.ID, Stream: "items", Key: "a", Data: json.RawMessage(`{"v":3}`), RunID: r2.ID, UpdatedAt: t1},
		{ConnectionID: c.ID, Stream: "items", Key: "b", Data: json.RawMessage(`{"k":"b","v":1}`), RunID: r1.ID, UpdatedAt: t0},
		{ConnectionID: c.ID, Stream: "items", Key: "c", Data: json.RawMessage(`{"v":2}`), RunID: r2.ID, UpdatedAt: t1},
		{ConnectionID: c.ID, Stream: "other", Key: "a", Data: json.RawMessage(`[1,"two",null]`), RunID: r2.ID, UpdatedAt: t1},
	}, f.allRecords(c.ID, ""))
	if got := must(f.s.GetRun(f.ctx, r2.ID))(t).Records; got != 4 {
		t.Errorf("run records = %d, want 4", got)
	}

	// An empty batch with a checkpoint only moves the checkpoint.
	if err := f.s.CommitBatch(f.ctx, c.ID, r2.ID, nil, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	if cp, ok, err := f.s.GetCheckpoint(f.ctx, c.ID); err != nil || !ok || string(cp) != "cp" {
		t.Errorf("checkpoint = %q, %v, %v", cp, ok, err)
	}
}

func testCommitBatchFencing(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	recs := []store.Record{{Stream: "s", Key: "k", Data: json.RawMessage(`1`)}}

	queued := f.run(c.ID)
	f.lease(c.ID, queued.ID, "host-a", time.Hour)
	err := f.s.CommitBatch(f.ctx, c.ID, queued.ID, recs, []byte("cp"))
	wantErr(t, err, store.ErrRunState, "")

	running := must(f.s.MarkRunRunning(f.ctx, queued.ID, nil))(t)
	if err := f.s.ReleaseLease(f.ctx, c.ID, running.ID); err != nil {
		t.Fatal(err)
	}
	err = f.s.CommitBatch(f.ctx, c.ID, running.ID, recs, []byte("cp"))
	wantErr(t, err, store.ErrLeaseNotHeld, "")

	f.lease(c.ID, running.ID, "host-a", time.Hour)
	must(f.s.FinishRun(f.ctx, running.ID, store.RunResult{Status: store.RunCancelled, FailureCode: failure.Cancelled}))(t)
	err = f.s.CommitBatch(f.ctx, c.ID, running.ID, recs, []byte("cp"))
	wantErr(t, err, store.ErrRunState, "")

	err = f.s.CommitBatch(f.ctx, c.ID, "run_missing", recs, []byte("cp"))
	wantErr(t, err, store.ErrRunNotFound, "")

	if got := f.allRecords(c.ID, ""); len(got) != 0 {
		t.Errorf("fenced commits stored %d records", len(got))
	}
	if _, ok, _ := f.s.GetCheckpoint(f.ctx, c.ID); ok {
		t.Error("a fenced commit stored a checkpoint")
	}
}

func testCommitBatchInvalidRecordMovesNothing(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r := f.runningRun(c.ID)
	f.commit(c.ID, r.ID, "items", 1, []byte("cp-1"), "a", "b")
	before := f.allRecords(c.ID, "")

	for name, bad := range map[string]store.Record{
		"data not json": {Stream: "items", Key: "z", Data: json.RawMessage(`{"v":`)},
		"no data":       {Stream: "items", Key: "z"},
		"no stream":     {Key: "z", Data: json.RawMessage(`1`)},
		"no key":        {Stream: "items", Data: json.RawMessage(`1`)},
	} {
		t.Run(name, func(t *testing.T) {
			batch := []store.Record{
				{Stream: "items", Key: "a", Data: json.RawMessage(`{"v":9}`)},
				{Stream: "items", Key: "c", Data: json.RawMessage(`{"v":9}`)},
				bad,
			}
			err := f.s.CommitBatch(f.ctx, c.ID, r.ID, batch, []byte("cp-2"))
			wantErr(t, err, store.ErrInvalid, "")
			var ie *store.InvalidError
			if !errors.As(err, &ie) || ie.Field[:10] != "records[2]" {
				t.Errorf("error = %v, want one naming records[2]", err)
			}
			diff(t, "records", before, f.allRecords(c.ID, ""))
			if cp, _, _ := f.s.GetCheckpoint(f.ctx, c.ID); string(cp) != "cp-1" {
				t.Errorf("checkpoint moved to %q", cp)
			}
		})
	}
	if got := must(f.s.GetRun(f.ctx, r.ID))(t); got.Records != 2 || !maps.Equal(got.StreamRecords, map[string]int64{"items": 2}) {
		t.Errorf("run records = %d %v, want 2 {items:2}", got.Records, got.StreamRecords)
	}
}

// testCommitBatchInterruptedIsAllOrNothing cancels a multi-statement batch
// at every cancellation check it makes (before, between and after its
// statements): each attempt either stored every record and the checkpoint,
// or nothing.
func testCommitBatchInterruptedIsAllOrNothing(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r := f.runningRun(c.ID)
	const n = 450 // several INSERT statements
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%04d", i)
	}
	f.commit(c.ID, r.ID, "items", 0, []byte("cp-0"), keys...)
	committed := 0
	interruptEverywhere(t, func(ctx context.Context) error {
		attempt := committed + 1
		recs := make([]store.Record, n)
		for i, k := range keys {
			recs[i] = store.Record{Stream: "items", Key: k, Data: json.RawMessage(fmt.Sprintf(`{"v":%d}`, attempt))}
		}
		err := f.s.CommitBatch(ctx, c.ID, r.ID, recs, []byte(fmt.Sprintf("cp-%d", attempt)))
		if err == nil {
			committed = attempt
		}
		return err
	}, func(attempt int, err error) {
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: error = %v, want context.Canceled", attempt, err)
		}
		want := fmt.Sprintf("cp-%d", committed)
		if cp, _, err := f.s.GetCheckpoint(f.ctx, c.ID); err != nil || string(cp) != want {
			t.Fatalf("attempt %d: checkpoint = %q, %v; want %q", attempt, cp, err, want)
		}
		recs := f.allRecords(c.ID, "items")
		if len(recs) != n {
			t.Fatalf("attempt %d: %d records, want %d", attempt, len(recs), n)
		}
		for _, rec := range recs {
			var v struct{ V int }
			if err := json.Unmarshal(rec.Data, &v); err != nil || v.V != committed {
				t.Fatalf("attempt %d: record %s = %s, want version %d with checkpoint %s", attempt, rec.Key, rec.Data, committed, want)
			}
		}
	})
	if got := must(f.s.GetRun(f.ctx, r.ID))(t); got.Records != int64(2*n) || !maps.Equal(got.StreamRecords, map[string]int64{"items": int64(2 * n)}) {
		t.Errorf("run records = %d %v, want %d (failed attempts must not count)", got.Records, got.StreamRecords, 2*n)
	}
}

func testCheckpoints(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	if cp, ok, err := f.s.GetCheckpoint(f.ctx, c.ID); err != nil || ok || cp != nil {
		t.Errorf("fresh checkpoint = %q, %v, %v; want none", cp, ok, err)
	}
	_, _, err := f.s.GetCheckpoint(f.ctx, "conn_missing")
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)

	r := f.runningRun(c.ID)
	binary := []byte{0, 1, 2, 0xff, 0xfe}
	for _, tc := range []struct {
		name string
		set  []byte
		want []byte
	}{
		{"binary state", binary, binary},
		{"nil leaves it", nil, binary},
		{"empty is a state", []byte{}, []byte{}},
		{"replaced", []byte(`{"cursor":"abc"}`), []byte(`{"cursor":"abc"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.s.CommitBatch(f.ctx, c.ID, r.ID, nil, tc.set); err != nil {
				t.Fatal(err)
			}
			cp, ok, err := f.s.GetCheckpoint(f.ctx, c.ID)
			if err != nil || !ok {
				t.Fatalf("GetCheckpoint = %v, %v", ok, err)
			}
			diff(t, "state", tc.want, cp)
		})
	}
}

func testListRecordsPaging(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r := f.runningRun(c.ID)
	var all []string
	for _, stream := range []string{"b-stream", "a-stream", "c-stream"} {
		var keys []string
		for i := range 7 {
			keys = append(keys, fmt.Sprintf("k%02d", 6-i)) // inserted out of order
		}
		f.commit(c.ID, r.ID, stream, 1, nil, keys...)
	}
	// By stream, then in the order the keys were emitted.
	for _, stream := range []string{"a-stream", "b-stream", "c-stream"} {
		for i := range 7 {
			all = append(all, fmt.Sprintf("%s/k%02d", stream, 6-i))
		}
	}
	for _, tc := range []struct {
		stream string
		limit  int
		want   []string
	}{
		{"", 1, all},
		{"", 5, all},
		{"", 1000, all},
		{"b-stream", 3, all[7:14]},
		{"missing", 3, []string{}},
	} {
		t.Run(fmt.Sprintf("stream %q limit %d", tc.stream, tc.limit), func(t *testing.T) {
			got := readAllPages(t, tc.limit, len(all), func(cursor string) ([]store.StoredRecord, string) {
				page := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Stream: tc.stream, Cursor: cursor, Limit: tc.limit}))(t)
				return page.Records, page.Next
			}, func(rec store.StoredRecord) string { return rec.Stream + "/" + rec.Key })
			diff(t, "keys in order", tc.want, got)
		})
	}
	_, err := f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Cursor: "%%%"})
	wantErr(t, err, store.ErrInvalid, "")
	// A cursor of the old (stream, key) shape is refused, not misread.
	_, err = f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Cursor: "WyJyZWNvcmRzIiwiYSIsImsiXQ"})
	wantErr(t, err, store.ErrInvalid, "")
	_, err = f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: "conn_missing"})
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	page := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Limit: store.MaxPageSize + 50}))(t)
	if len(page.Records) != len(all) {
		t.Errorf("a limit above MaxPageSize returned %d records", len(page.Records))
	}
}

// testListRecordsEmitOrder: records list in the order the connector first
// emitted their keys ("0", "1", "2", …, "10", not "0", "1", "10", "2");
// a key written again keeps its place; new keys of a later batch or run
// come after; a page boundary does not move while records are rewritten.
func testListRecordsEmitOrder(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r := f.runningRun(c.ID)
	var keys []string
	for i := range 12 {
		keys = append(keys, fmt.Sprint(i))
	}
	f.commit(c.ID, r.ID, "events", 1, nil, keys...)
	key := func(rec store.StoredRecord) string { return rec.Key }
	list := func(limit int) []string {
		return readAllPages(t, limit, 64, func(cursor string) ([]store.StoredRecord, string) {
			page := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Stream: "events", Cursor: cursor, Limit: limit}))(t)
			return page.Records, page.Next
		}, key)
	}
	diff(t, "emit order", keys, list(5))

	// Rewritten keys keep their place; new ones (a later batch) follow.
	f.commit(c.ID, r.ID, "events", 2, nil, "12", "5", "0", "13")
	want := append(append([]string{}, keys...), "12", "13")
	diff(t, "after a rewrite and new keys", want, list(4))
	if got := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Stream: "events", Limit: 1}))(t); got.Records[0].Key != "0" || string(got.Records[0].Data) == "" {
		t.Errorf("first record %+v", got.Records)
	}

	// A page boundary holds while the records before and after it are
	// written again: no record is skipped or listed twice.
	first := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Stream: "events", Limit: 6}))(t)
	f.commit(c.ID, r.ID, "events", 3, nil, "13", "0", "7", "14")
	var got []string
	for _, rec := range first.Records {
		got = append(got, rec.Key)
	}
	cursor := first.Next
	for cursor != "" {
		page := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Stream: "events", Cursor: cursor, Limit: 6}))(t)
		for _, rec := range page.Records {
			got = append(got, rec.Key)
		}
		cursor = page.Next
	}
	diff(t, "paging across rewrites", append(want, "14"), got)
}

// testCheckpointReset: the last checkpoint reads with the run that
// committed it and when; a reset removes it (records stay), is refused
// run_active while a run holds the lease, and is a no-op with none.
func testCheckpointReset(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	_, _, err := f.s.LastCheckpoint(f.ctx, "conn_missing")
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	_, _, err = f.s.ResetCheckpoint(f.ctx, "conn_missing")
	wantErr(t, err, store.ErrConnectionNotFound, failure.ConnectionNotFound)
	if cp, ok, err := f.s.LastCheckpoint(f.ctx, c.ID); err != nil || ok || cp.RunID != "" {
		t.Fatalf("fresh LastCheckpoint = %+v, %v, %v; want none", cp, ok, err)
	}
	if _, ok, err := f.s.ResetCheckpoint(f.ctx, c.ID); err != nil || ok {
		t.Fatalf("reset of no checkpoint = %v, %v; want a no-op", ok, err)
	}

	r := f.runningRun(c.ID)
	at := f.advance(time.Second)
	f.commit(c.ID, r.ID, "events", 1, []byte(`{"next":60}`), "0", "1")
	want := store.Checkpoint{ConnectionID: c.ID, State: []byte(`{"next":60}`), RunID: r.ID, UpdatedAt: at}
	cp, ok, err := f.s.LastCheckpoint(f.ctx, c.ID)
	if err != nil || !ok {
		t.Fatalf("LastCheckpoint = %v, %v", ok, err)
	}
	diff(t, "last checkpoint", want, cp)

	// The running run holds the lease: refused, nothing removed.
	_, _, err = f.s.ResetCheckpoint(f.ctx, c.ID)
	wantErr(t, err, store.ErrLeaseHeld, failure.RunActive)
	var held *store.LeaseHeldError
	if !asErr(err, &held) || held.Lease.RunID != r.ID {
		t.Errorf("refusal %v does not name the run %s", err, r.ID)
	}
	after, _ := must2(f.s.LastCheckpoint(f.ctx, c.ID))(t)
	diff(t, "after the refused reset", want, after)

	must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunSucceeded}))(t) // releases its lease
	got, ok, err := f.s.ResetCheckpoint(f.ctx, c.ID)
	if err != nil || !ok {
		t.Fatalf("ResetCheckpoint = %v, %v", ok, err)
	}
	diff(t, "removed checkpoint", want, got)
	if _, ok, err := f.s.GetCheckpoint(f.ctx, c.ID); err != nil || ok {
		t.Errorf("GetCheckpoint after the reset = %v, %v; want none", ok, err)
	}
	if n := len(f.allRecords(c.ID, "")); n != 2 {
		t.Errorf("%d records after the reset, want 2 (records stay)", n)
	}
	if _, ok, err := f.s.ResetCheckpoint(f.ctx, c.ID); err != nil || ok {
		t.Errorf("second reset = %v, %v; want a no-op", ok, err)
	}

	// An expired lease does not hold the reset back.
	r2 := f.runningRun(c.ID)
	f.commit(c.ID, r2.ID, "events", 2, []byte(`{"next":2}`), "2")
	f.lease(c.ID, r2.ID, "host-a", time.Second)
	f.advance(time.Minute)
	if _, ok, err := f.s.ResetCheckpoint(f.ctx, c.ID); err != nil || !ok {
		t.Errorf("reset under an expired lease = %v, %v", ok, err)
	}
}

// testListRecordsAcrossStreams: each stream lists in its own emit order,
// whatever batch or run first wrote it; a stream added later still lists
// by its name; rewrites in one stream move nothing in another; and every
// page size, including ones that end exactly at a stream's last record,
// reads each record once.
func testListRecordsAcrossStreams(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	other := f.connection("beta")
	r := f.runningRun(c.ID)
	ro := f.runningRun(other.ID)
	f.commit(c.ID, r.ID, "m", 1, nil, "9", "3", "7")
	f.commit(other.ID, ro.ID, "m", 1, nil, "1", "2") // same stream name, another connection
	f.commit(c.ID, r.ID, "z", 1, nil, "b", "a")
	// One batch across streams, one of them new and first by name: the
	// rewritten keys keep their places, the new ones follow in batch order.
	err := f.s.CommitBatch(f.ctx, c.ID, r.ID, []store.Record{
		{Stream: "z", Key: "c", Data: json.RawMessage(`2`)},
		{Stream: "m", Key: "3", Data: json.RawMessage(`2`)},
		{Stream: "a", Key: "q", Data: json.RawMessage(`2`)},
		{Stream: "m", Key: "1", Data: json.RawMessage(`2`)},
		{Stream: "z", Key: "b", Data: json.RawMessage(`2`)},
		{Stream: "a", Key: "p", Data: json.RawMessage(`2`)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.commit(c.ID, r.ID, "m", 3, nil, "9", "0")
	all := []string{"a/q", "a/p", "m/9", "m/3", "m/7", "m/1", "m/0", "z/b", "z/a", "z/c"}
	key := func(rec store.StoredRecord) string { return rec.Stream + "/" + rec.Key }
	for _, tc := range []struct {
		stream string
		want   []string
	}{
		{"", all},
		{"a", all[:2]},
		{"m", all[2:7]},
		{"z", all[7:]},
	} {
		for _, limit := range []int{1, 2, 3, 5, 7, 10, 11} {
			t.Run(fmt.Sprintf("stream %q limit %d", tc.stream, limit), func(t *testing.T) {
				got := readAllPages(t, limit, 2*len(all), func(cursor string) ([]store.StoredRecord, string) {
					page := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: c.ID, Stream: tc.stream, Cursor: cursor, Limit: limit}))(t)
					return page.Records, page.Next
				}, key)
				diff(t, "order", tc.want, got)
			})
		}
	}
	// The last write of each key wins, with the run that wrote it.
	byKey := map[string]store.StoredRecord{}
	for _, rec := range f.allRecords(c.ID, "") {
		byKey[key(rec)] = rec
	}
	for k, want := range map[string]string{"m/9": `{"k":"9","v":3}`, "m/3": `2`, "m/7": `{"k":"7","v":1}`, "z/b": `2`} {
		got := byKey[k]
		diff(t, k, json.RawMessage(want), got.Data)
		if got.RunID != r.ID || got.ConnectionID != c.ID {
			t.Errorf("%s = %+v, want a record of run %s", k, got, r.ID)
		}
	}
	diff(t, "the other connection", []string{"m/1", "m/2"}, readAllPages(t, 1, 4, func(cursor string) ([]store.StoredRecord, string) {
		page := must(f.s.ListRecords(f.ctx, store.RecordQuery{ConnectionID: other.ID, Cursor: cursor, Limit: 1}))(t)
		return page.Records, page.Next
	}, key))
}
