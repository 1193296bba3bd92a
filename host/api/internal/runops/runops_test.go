package runops

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/store"
	"github.com/google/go-cmp/cmp"
)

// fakeRuns is a Runs whose rows a test changes.
type fakeRuns struct {
	mu      sync.Mutex
	rows    map[string]store.Run
	claimed map[string]bool
}

func (f *fakeRuns) GetRun(_ context.Context, id string) (store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rows[id]
	if !ok {
		return store.Run{}, store.ErrRunNotFound
	}
	return r, nil
}

func (f *fakeRuns) set(r store.Run) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows[r.ID] = r
}

// CancelQueuedRun cancels a queued row in place; other statuses are a
// RunStateError and a claimed row (claimed[id]) ErrOccurrenceLost.
func (f *fakeRuns) CancelQueuedRun(_ context.Context, id string, res store.RunResult) (store.Run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.rows[id]
	switch {
	case !ok:
		return store.Run{}, store.ErrRunNotFound
	case r.Status != store.RunQueued:
		return store.Run{}, &store.RunStateError{RunID: id, Status: r.Status}
	case f.claimed[id]:
		return store.Run{}, store.ErrOccurrenceLost
	}
	r.Status, r.FailureCode, r.FailureMessage = res.Status, res.FailureCode, res.FailureMessage
	f.rows[id] = r
	return r, nil
}

// fakeRunner is a Runner with func fields.
type fakeRunner struct {
	hub       *runevents.Hub
	cancel    func(runID string) error
	elsewhere func(runID string) error
	ended     []store.Run
}

func (f *fakeRunner) Cancel(runID string) error { return f.cancel(runID) }
func (f *fakeRunner) CancelElsewhere(_ context.Context, runID string) error {
	if f.elsewhere == nil {
		return errors.New("no other host")
	}
	return f.elsewhere(runID)
}
func (f *fakeRunner) Ended(r store.Run)      { f.ended = append(f.ended, r) }
func (f *fakeRunner) Events() *runevents.Hub { return f.hub }
func newRuns(rows ...store.Run) *fakeRuns {
	return (&fakeRuns{rows: map[string]store.Run{}, claimed: map[string]bool{}}).with(rows...)
}
func (f *fakeRuns) with(rows ...store.Run) *fakeRuns {
	for _, r := range rows {
		f.rows[r.ID] = r
	}
	return f
}

var (
	_ Runs   = (*fakeRuns)(nil)
	_ Queue  = (*fakeRuns)(nil)
	_ Runner = (*fakeRunner)(nil)
)

func running(id string) store.Run {
	return store.Run{ID: id, ConnectionID: "conn_1", Status: store.RunRunning}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	ended := store.Run{ID: "run_done", ConnectionID: "conn_1", Status: store.RunSucceeded}
	t.Run("ended run", func(t *testing.T) {
		t.Parallel()
		r := &fakeRunner{hub: &runevents.Hub{}, cancel: func(string) error { t.Error("cancel called"); return nil }}
		_, err := Cancel(context.Background(), newRuns(ended), newRuns(ended), r, "run_done")
		var ee *EndedError
		if !errors.As(err, &ee) || !errors.Is(err, ErrRunEnded) || ee.Status != store.RunSucceeded {
			t.Errorf("got %v", err)
		}
	})
	t.Run("unknown run", func(t *testing.T) {
		t.Parallel()
		r := &fakeRunner{hub: &runevents.Hub{}}
		if _, err := Cancel(context.Background(), newRuns(), newRuns(), r, "run_x"); !errors.Is(err, store.ErrRunNotFound) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("not on this host", func(t *testing.T) {
		t.Parallel()
		r := &fakeRunner{hub: &runevents.Hub{}, cancel: func(string) error { return errors.New("not active") }}
		if _, err := Cancel(context.Background(), newRuns(running("run_1")), newRuns(running("run_1")), r, "run_1"); !errors.Is(err, ErrNotOnThisHost) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("cancelled and waited for", func(t *testing.T) {
		t.Parallel()
		runs := newRuns(running("run_1"))
		hub := &runevents.Hub{}
		r := &fakeRunner{hub: hub, cancel: func(id string) error {
			go func() {
				hub.Publish(runevents.Event{RunID: id, Kind: runevents.KindProgress})
				final := running(id)
				final.Status, final.FailureCode = store.RunCancelled, failure.Cancelled
				runs.set(final)
				hub.Publish(runevents.Event{RunID: id, Kind: runevents.KindEnd, Status: string(store.RunCancelled)})
			}()
			return nil
		}}
		got, err := Cancel(context.Background(), runs, runs, r, "run_1")
		if err != nil || got.Status != store.RunCancelled || got.FailureCode != failure.Cancelled {
			t.Errorf("got %+v %v", got, err)
		}
	})
	t.Run("queued run cancelled in the queue", func(t *testing.T) {
		t.Parallel()
		runs := newRuns(store.Run{ID: "run_q", ConnectionID: "conn_1", Status: store.RunQueued})
		r := &fakeRunner{hub: &runevents.Hub{}, cancel: func(string) error { t.Error("runner cancel called"); return nil }}
		got, err := Cancel(context.Background(), runs, runs, r, "run_q")
		if err != nil || got.Status != store.RunCancelled || got.FailureCode != failure.Cancelled {
			t.Fatalf("got %+v %v", got, err)
		}
		if len(r.ended) != 1 || r.ended[0].ID != "run_q" {
			t.Fatalf("the end of the queued run was not published: %+v", r.ended)
		}
	})
	t.Run("run on another host", func(t *testing.T) {
		t.Parallel()
		runs := newRuns(store.Run{ID: "run_b", ConnectionID: "conn_1", Status: store.RunQueued})
		runs.claimed["run_b"] = true // a worker of another host took it
		hub := &runevents.Hub{}
		var asked []string
		r := &fakeRunner{hub: hub, cancel: func(string) error { return errors.New("not here") },
			elsewhere: func(id string) error {
				asked = append(asked, id)
				go func() {
					final, _ := runs.GetRun(context.Background(), id)
					final.Status, final.FailureCode = store.RunCancelled, failure.Cancelled
					runs.set(final)
					hub.Publish(runevents.Event{RunID: id, Kind: runevents.KindEnd, Status: string(store.RunCancelled)})
				}()
				return nil
			}}
		got, err := Cancel(context.Background(), runs, runs, r, "run_b")
		if err != nil || got.Status != store.RunCancelled || len(asked) != 1 {
			t.Fatalf("got %+v %v, asked %v", got, err, asked)
		}
	})
	t.Run("wait bounded by ctx", func(t *testing.T) {
		t.Parallel()
		r := &fakeRunner{hub: &runevents.Hub{}, cancel: func(string) error { return nil }}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got, err := Cancel(ctx, newRuns(running("run_1")), newRuns(running("run_1")), r, "run_1")
		if err != nil || got.Status != store.RunRunning {
			t.Errorf("got %+v %v", got, err)
		}
	})
}

// collect runs Follow and returns the updates' kinds.
func collect(t *testing.T, runs *fakeRuns, hub *runevents.Hub, id string, every time.Duration) ([]Update, error) {
	t.Helper()
	var got []Update
	err := Follow(context.Background(), runs, hub, id, every, func(u Update) error {
		got = append(got, u)
		return nil
	})
	return got, err
}

func kinds(us []Update) []string {
	var out []string
	for _, u := range us {
		if u.Heartbeat {
			out = append(out, "heartbeat")
			continue
		}
		out = append(out, string(u.Event.Kind))
	}
	return out
}

func TestFollow(t *testing.T) {
	t.Parallel()
	t.Run("terminal run yields only its end", func(t *testing.T) {
		t.Parallel()
		done := store.Run{ID: "run_1", ConnectionID: "conn_1", Status: store.RunFailed, FailureCode: failure.ConnectorFailed,
			FailureMessage: "boom", Records: 3}
		got, err := collect(t, newRuns(done), &runevents.Hub{}, "run_1", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"end"}, kinds(got)); diff != "" {
			t.Fatal(diff)
		}
		ev := got[0].Event
		if ev.Status != "failed" || ev.FailureCode != "connector_failed" || ev.Message != "boom" || ev.Records != 3 || got[0].Run == nil {
			t.Errorf("end %+v", got[0])
		}
	})
	t.Run("live events then the end from the store", func(t *testing.T) {
		t.Parallel()
		runs := newRuns(running("run_1"))
		hub := &runevents.Hub{}
		var got []Update
		done := make(chan error, 1)
		first := make(chan struct{})
		go func() {
			done <- Follow(context.Background(), runs, hub, "run_1", time.Hour, func(u Update) error {
				got = append(got, u)
				if len(got) == 1 {
					close(first)
				}
				return nil
			})
		}()
		<-first // subscribed and snapshot sent
		hub.Publish(runevents.Event{RunID: "run_1", Kind: runevents.KindProgress, Done: 1, Total: 2})
		hub.Publish(runevents.Event{RunID: "run_1", Kind: runevents.KindRecords, Records: 2})
		final := running("run_1")
		final.Status, final.Records = store.RunSucceeded, 2
		runs.set(final)
		hub.Publish(runevents.Event{RunID: "run_1", Kind: runevents.KindEnd, Status: "succeeded"})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"status", "progress", "records", "end"}, kinds(got)); diff != "" {
			t.Fatal(diff)
		}
		if got[0].Run == nil || got[0].Event.Status != "running" || got[3].Run == nil || got[3].Run.Records != 2 {
			t.Errorf("snapshot %+v end %+v", got[0], got[3])
		}
	})
	t.Run("a run ended elsewhere is found by polling", func(t *testing.T) {
		t.Parallel()
		runs := newRuns(running("run_1"))
		beats := 0
		err := Follow(context.Background(), runs, &runevents.Hub{}, "run_1", 5*time.Millisecond, func(u Update) error {
			if u.Heartbeat {
				beats++
				if beats == 2 {
					final := running("run_1")
					final.Status, final.FailureCode = store.RunFailed, failure.HostCrashed
					runs.set(final)
				}
			}
			if u.End() && u.Run.FailureCode != failure.HostCrashed {
				t.Errorf("end %+v", u)
			}
			return nil
		})
		if err != nil || beats != 2 {
			t.Errorf("err %v, %d heartbeats", err, beats)
		}
	})
	t.Run("emit error stops", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("client gone")
		err := Follow(context.Background(), newRuns(running("run_1")), &runevents.Hub{}, "run_1", time.Hour, func(Update) error { return boom })
		if !errors.Is(err, boom) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("ctx ends the follow", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		err := Follow(ctx, newRuns(running("run_1")), &runevents.Hub{}, "run_1", time.Hour, func(Update) error { cancel(); return nil })
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("unknown run", func(t *testing.T) {
		t.Parallel()
		if _, err := collect(t, newRuns(), &runevents.Hub{}, "run_x", time.Hour); !errors.Is(err, store.ErrRunNotFound) {
			t.Errorf("got %v", err)
		}
	})
}
