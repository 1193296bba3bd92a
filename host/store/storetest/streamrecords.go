package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
)

// testRunStreamRecords: a run's counts by stream grow with every commit
// (a repeated key counts, as it does in Records), always sum to Records,
// read back the same from GetRun, ListRuns and FinishRun, are nil before
// the first record, and are untouched by a checkpoint alone, a fenced
// commit and another run's commits.
func testRunStreamRecords(t *testing.T, f *fixture) {
	c := f.connection("alpha")
	r := f.runningRun(c.ID)
	other := f.connection("beta")
	ro := f.runningRun(other.ID)

	check := func(what string, want map[string]int64) {
		t.Helper()
		var sum int64
		for _, n := range want {
			sum += n
		}
		got := must(f.s.GetRun(f.ctx, r.ID))(t)
		diff(t, what+": get", want, got.StreamRecords)
		if got.Records != sum {
			t.Errorf("%s: records = %d, want the counts' sum %d", what, got.Records, sum)
		}
		page := must(f.s.ListRuns(f.ctx, store.RunFilter{ConnectionID: c.ID}))(t)
		if len(page.Runs) != 1 {
			t.Fatalf("%s: listed %d runs, want 1", what, len(page.Runs))
		}
		diff(t, what+": list", want, page.Runs[0].StreamRecords)
	}
	check("before any commit", nil)

	if err := f.s.CommitBatch(f.ctx, c.ID, r.ID, nil, []byte("cp")); err != nil {
		t.Fatal(err)
	}
	check("a checkpoint alone", nil)

	f.commit(c.ID, r.ID, "events", 1, nil, "a", "b", "c")
	check("one stream", map[string]int64{"events": 3})

	if err := f.s.CommitBatch(f.ctx, c.ID, r.ID, []store.Record{
		{Stream: "users", Key: "u1", Data: json.RawMessage(`1`)},
		{Stream: "events", Key: "a", Data: json.RawMessage(`2`)},
		{Stream: "users", Key: "u1", Data: json.RawMessage(`3`)}, // counted as emitted
	}, []byte("cp-2")); err != nil {
		t.Fatal(err)
	}
	check("two streams", map[string]int64{"events": 4, "users": 2})

	f.commit(other.ID, ro.ID, "events", 1, nil, "x")
	check("another run's commit", map[string]int64{"events": 4, "users": 2})
	diff(t, "the other run", map[string]int64{"events": 1}, must(f.s.GetRun(f.ctx, ro.ID))(t).StreamRecords)

	// A commit that fails validation or the fence counts nothing.
	bad := []store.Record{{Stream: "events", Key: "z", Data: json.RawMessage(`1`)}, {Stream: "users"}}
	wantErr(t, f.s.CommitBatch(f.ctx, c.ID, r.ID, bad, nil), store.ErrInvalid, "")
	wantErr(t, f.s.CommitBatch(f.ctx, other.ID, r.ID, bad[:1], nil), store.ErrRunNotFound, "")
	check("refused commits", map[string]int64{"events": 4, "users": 2})

	f.advance(time.Second)
	fin := must(f.s.FinishRun(f.ctx, r.ID, store.RunResult{Status: store.RunFailed, FailureCode: failure.ConnectorFailed}))(t)
	diff(t, "finished", map[string]int64{"events": 4, "users": 2}, fin.StreamRecords)
	wantErr(t, f.s.CommitBatch(f.ctx, c.ID, r.ID, bad[:1], nil), store.ErrRunState, "")
	check("after the end", map[string]int64{"events": 4, "users": 2})
}
