package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/broker"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
)

// commitCall is one CommitBatch call as the store saw it.
type commitCall struct {
	keys       []string
	checkpoint []byte
	err        error
}

// ingestStore is the real SQLite store, with every CommitBatch call
// recorded and one of them (failAt, 1-based) failing.
type ingestStore struct {
	*sqlite.Store
	failAt int

	mu        sync.Mutex
	calls     []commitCall
	committed atomic.Int64
}

var errInjected = errors.New("injected commit failure")

func (s *ingestStore) CommitBatch(ctx context.Context, connID, runID string, recs []store.Record, cp []byte) error {
	s.mu.Lock()
	n := len(s.calls) + 1
	s.mu.Unlock()
	err := errInjected
	if n != s.failAt {
		// Slow enough that records queue while a commit runs.
		time.Sleep(time.Millisecond)
		err = s.Store.CommitBatch(ctx, connID, runID, recs, cp)
	}
	c := commitCall{checkpoint: cp, err: err}
	for _, r := range recs {
		c.keys = append(c.keys, r.Key)
	}
	if err == nil {
		s.committed.Add(int64(len(recs)))
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return err
}

func (s *ingestStore) commits() []commitCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]commitCall(nil), s.calls...)
}

// scriptLauncher runs script in place of a plugin; like the real
// launcher, an error from emit ends the run and is returned unchanged.
type scriptLauncher struct {
	script func(ctx context.Context, emit func(wire.Message) error) error
}

func (l scriptLauncher) Run(ctx context.Context, _ launch.Spec, _ wire.RunRequest, emit func(wire.Message) error) error {
	return l.script(ctx, emit)
}

func (scriptLauncher) Check(context.Context, launch.Spec, wire.CheckRequest) (wire.CheckResult, error) {
	return wire.CheckResult{Valid: true}, nil
}

type countingObserver struct{ committed atomic.Int64 }

func (*countingObserver) RunStarted(string)                                             {}
func (*countingObserver) RunEnded(string, store.RunStatus, failure.Code, time.Duration) {}
func (o *countingObserver) RecordsCommitted(_ string, n int)                            { o.committed.Add(int64(n)) }

type oneConnector struct{ e catalog.Entry }

func (c oneConnector) Get(k string) (catalog.Entry, bool) { return c.e, k == c.e.Key }

// sent is what the script's emit accepted, in order: record keys, and
// each checkpoint with the number of records accepted before it.
type sent struct {
	mu          sync.Mutex
	tried       int // records of every records message emitted, accepted or not
	keys        []string
	checkpoints []sentCheckpoint
}

type sentCheckpoint struct {
	state []byte
	pos   int
}

// TestIngestCommitsCheckpointsWithTheirRecords: whatever ends a run — its
// end, a plugin crash, a cancel, a failed commit — every record received
// is committed (or the run says how many were not), each committed
// checkpoint commits with exactly the records received before it and
// none after, and the counters and events agree with the store.
func TestIngestCommitsCheckpointsWithTheirRecords(t *testing.T) {
	t.Parallel()
	const (
		msgs       = 40
		perMsg     = 3
		cpEvery    = 2 // messages
		bufRecords = 20
	)
	for _, tt := range []struct {
		name       string
		end        string // "ok", "crash", "cancel"
		failAt     int
		wantStatus store.RunStatus
		wantCode   failure.Code
	}{
		{"the run ends", "ok", 0, store.RunSucceeded, ""},
		{"the plugin crashes", "crash", 0, store.RunFailed, failure.ConnectorCrashed},
		{"the run is cancelled", "cancel", 0, store.RunCancelled, failure.Cancelled},
		{"a commit fails", "ok", 3, store.RunFailed, failure.Internal},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, conn := openIngestStore(t)
			is := &ingestStore{Store: st, failAt: tt.failAt}
			al := &audit.Log{Store: st}
			br, err := broker.New(broker.Config{Store: st, Audit: al})
			if err != nil {
				t.Fatal(err)
			}

			var got sent
			start := make(chan struct{})
			allSent := make(chan struct{})
			var overBound atomic.Int64
			script := func(ctx context.Context, emit func(wire.Message) error) error {
				<-start
				for i := range msgs {
					m := wire.Message{Kind: wire.KindRecords}
					for j := range perMsg {
						k := strconv.Itoa(i*perMsg + j)
						m.Records = append(m.Records, wire.Record{Stream: "s", Key: k, Data: json.RawMessage(`{"id":` + k + `}`)})
					}
					got.mu.Lock()
					got.tried += len(m.Records)
					got.mu.Unlock()
					if err := emit(m); err != nil {
						return err
					}
					got.mu.Lock()
					for _, r := range m.Records {
						got.keys = append(got.keys, r.Key)
					}
					n := len(got.keys)
					got.mu.Unlock()
					// The store counts a commit before the runner does, so
					// this reads no more than the runner holds.
					if held := int64(n) - is.committed.Load(); held > bufRecords {
						overBound.Store(held)
					}
					if (i+1)%cpEvery == 0 {
						state := []byte(fmt.Sprintf(`{"next":%d}`, n))
						if err := emit(wire.Message{Kind: wire.KindCheckpoint, Checkpoint: state}); err != nil {
							return err
						}
						got.mu.Lock()
						got.checkpoints = append(got.checkpoints, sentCheckpoint{state, n})
						got.mu.Unlock()
						if err := emit(wire.Message{Kind: wire.KindProgress, Progress: wire.Progress{Stream: "s", Done: int64(n)}}); err != nil {
							return err
						}
					}
				}
				// Records after the last checkpoint.
				got.mu.Lock()
				got.tried++
				got.mu.Unlock()
				if err := emit(wire.Message{Kind: wire.KindRecords, Records: []wire.Record{{Stream: "s", Key: "tail", Data: json.RawMessage(`{}`)}}}); err != nil {
					return err
				}
				got.mu.Lock()
				got.keys = append(got.keys, "tail")
				got.mu.Unlock()
				close(allSent)
				switch tt.end {
				case "crash":
					return failure.New(failure.ConnectorCrashed, "the connector process exited")
				case "cancel":
					<-ctx.Done()
					return failure.New(failure.Cancelled, "cancelled")
				}
				return nil
			}
			obs := &countingObserver{}
			r, err := runner.New(runner.Config{Store: is, Catalog: oneConnector{catalog.Entry{Key: "bench", Manifest: benchManifest, Path: "/bench"}},
				Broker: br, Launcher: scriptLauncher{script}, HostID: "host_ingest", Audit: al, Observer: obs,
				CommitEvery: 7, BufferRecords: bufRecords})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
			h, err := r.Launch(ctx, runner.Request{ConnectionID: conn.ID, Trigger: store.TriggerManual})
			if err != nil {
				t.Fatal(err)
			}
			events, stop := r.Events().Subscribe(h.RunID)
			defer stop()
			close(start)
			if tt.end == "cancel" {
				<-allSent
				if err := r.Cancel(h.RunID); err != nil {
					t.Fatal(err)
				}
			}
			run, runErr := h.Result()
			if run.Status != tt.wantStatus || run.FailureCode != tt.wantCode {
				t.Fatalf("run ended %s %s (%q), want %s %s", run.Status, run.FailureCode, run.FailureMessage, tt.wantStatus, tt.wantCode)
			}
			if (runErr == nil) != (tt.wantStatus == store.RunSucceeded) {
				t.Fatalf("Result error %v", runErr)
			}
			if n := overBound.Load(); n > 0 {
				t.Errorf("the runner held %d received records, bound %d", n, bufRecords)
			}

			// Every commit that succeeded, in order, is a prefix of what
			// was received; each checkpoint sits exactly where it was sent.
			calls := is.commits()
			var committed []string
			var lastCP []byte
			for i, c := range calls {
				if c.err != nil {
					if i != len(calls)-1 {
						t.Fatalf("commit %d failed and %d more followed", i+1, len(calls)-1-i)
					}
					continue
				}
				committed = append(committed, c.keys...)
				if c.checkpoint != nil {
					pos := -1
					for _, sc := range got.checkpoints {
						if string(sc.state) == string(c.checkpoint) {
							pos = sc.pos
						}
					}
					if pos != len(committed) {
						t.Fatalf("commit %d carries checkpoint %s (sent after %d records) with %d records committed",
							i+1, c.checkpoint, pos, len(committed))
					}
					lastCP = c.checkpoint
				}
			}
			if len(committed) > len(got.keys) || strings.Join(committed, ",") != strings.Join(got.keys[:len(committed)], ",") {
				t.Fatalf("committed %v, not a prefix of the %d received", committed, len(got.keys))
			}
			stored, _, err := st.GetCheckpoint(ctx, conn.ID)
			if err != nil || string(stored) != string(lastCP) {
				t.Fatalf("stored checkpoint %s (%v), last committed %s", stored, err, lastCP)
			}
			if tt.failAt == 0 {
				if len(committed) != len(got.keys) {
					t.Fatalf("%d of %d received records committed", len(committed), len(got.keys))
				}
				if want := got.checkpoints[len(got.checkpoints)-1].state; string(lastCP) != string(want) {
					t.Fatalf("last checkpoint %s, want %s", lastCP, want)
				}
			} else {
				// A message refused because a commit failed was received
				// all the same: it counts.
				lost := got.tried - len(committed)
				if !strings.Contains(run.FailureMessage, fmt.Sprintf("%d received records were not committed", lost)) {
					t.Fatalf("failure message %q does not say %d records were not committed", run.FailureMessage, lost)
				}
			}
			// Merging happened: fewer commits than checkpoints.
			if tt.failAt == 0 && len(calls) > len(got.checkpoints)+len(got.keys)/7+1 {
				t.Errorf("%d commits for %d records and %d checkpoints", len(calls), len(got.keys), len(got.checkpoints))
			}

			// Counters and events agree with the store.
			if run.Records != int64(len(committed)) || obs.committed.Load() != run.Records {
				t.Fatalf("run records %d, observer %d, store %d", run.Records, obs.committed.Load(), len(committed))
			}
			if want := map[string]int64{"s": int64(len(committed))}; !maps.Equal(run.StreamRecords, want) {
				t.Fatalf("run records by stream %v, want %v", run.StreamRecords, want)
			}
			var lastRecords, lastReceived int64
			var end runevents.Event
			for ev := range events {
				switch ev.Kind {
				case runevents.KindRecords:
					if ev.Records <= lastRecords || ev.Received < ev.Records {
						t.Errorf("records event %+v after records=%d", ev, lastRecords)
					}
					lastRecords = ev.Records
				case runevents.KindProgress:
					if ev.Received < lastReceived || ev.Received < ev.Records {
						t.Errorf("progress event %+v after received=%d", ev, lastReceived)
					}
					lastReceived = ev.Received
				case runevents.KindEnd:
					end = ev
				}
			}
			if lastRecords != run.Records || end.Records != run.Records {
				t.Errorf("last records event %d, end event %d, run %d", lastRecords, end.Records, run.Records)
			}
		})
	}
}

// TestIngestRefusesAnInvalidRecord: a record that is not JSON ends the run
// (internal) at once; the records received before it are committed.
func TestIngestRefusesAnInvalidRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, conn := openIngestStore(t)
	al := &audit.Log{Store: st}
	br, err := broker.New(broker.Config{Store: st, Audit: al})
	if err != nil {
		t.Fatal(err)
	}
	var after atomic.Bool
	script := func(ctx context.Context, emit func(wire.Message) error) error {
		if err := emit(wire.Message{Kind: wire.KindRecords, Records: []wire.Record{
			{Stream: "s", Key: "a", Data: json.RawMessage(`{"id":1}`)},
			{Stream: "s", Key: "b", Data: json.RawMessage(`{"id":`)},
		}}); err != nil {
			return err
		}
		after.Store(true)
		return nil
	}
	r, err := runner.New(runner.Config{Store: st, Catalog: oneConnector{catalog.Entry{Key: "bench", Manifest: benchManifest, Path: "/bench"}},
		Broker: br, Launcher: scriptLauncher{script}, HostID: "host_ingest", Audit: al})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	h, err := r.Launch(ctx, runner.Request{ConnectionID: conn.ID, Trigger: store.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := h.Result()
	if run.Status != store.RunFailed || run.FailureCode != failure.Internal || !strings.Contains(run.FailureMessage, "not valid JSON") {
		t.Fatalf("run %s %s %q", run.Status, run.FailureCode, run.FailureMessage)
	}
	if after.Load() {
		t.Fatal("the run went on after an invalid record")
	}
	page, err := st.ListRecords(ctx, store.RecordQuery{ConnectionID: conn.ID})
	if err != nil || len(page.Records) != 1 || page.Records[0].Key != "a" || run.Records != 1 {
		t.Fatalf("records %+v (%v), run records %d", page.Records, err, run.Records)
	}
}

// benchManifest is the connector of the ingest tests: one stream "s", no
// auth.
var benchManifest = manifest.Manifest{ConnectorKey: "bench", Version: "1", Auth: manifest.Auth{Kind: manifest.AuthNone},
	Streams: []manifest.Stream{{Name: "s", KeyFields: []string{"id"}}}}

// openIngestStore opens a fresh SQLite store holding the connector
// benchManifest declares, a registered host and one connection of it.
func openIngestStore(t *testing.T) (*sqlite.Store, store.Connection) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	mj, _ := json.Marshal(benchManifest)
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: "bench", Version: "1", Manifest: mj,
		Path: "/bench", SHA256: strings.Repeat("00", 32)}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RegisterHost(ctx, store.NewHost{ID: "host_ingest"}); err != nil {
		t.Fatal(err)
	}
	conn, err := st.CreateConnection(ctx, store.NewConnection{ConnectorKey: "bench"})
	if err != nil {
		t.Fatal(err)
	}
	return st, conn
}
