package notify_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/connhost/connhost/host/notify"
	"github.com/connhost/connhost/host/runevents"
	"github.com/connhost/connhost/host/store/postgres"
)

type inbox struct {
	mu  sync.Mutex
	got map[notify.Topic][]string
	sig chan struct{}
}

func newInbox() *inbox { return &inbox{got: map[notify.Topic][]string{}, sig: make(chan struct{}, 64)} }

func (b *inbox) on(bus notify.Bus, topics ...notify.Topic) {
	for _, t := range topics {
		bus.Subscribe(t, func(p string) {
			b.mu.Lock()
			b.got[t] = append(b.got[t], p)
			b.mu.Unlock()
			select {
			case b.sig <- struct{}{}:
			default:
			}
		})
	}
}

func (b *inbox) of(t notify.Topic) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got[t]...)
}

func (b *inbox) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-b.sig:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

func openBus(t *testing.T, url, origin string) (*notify.Postgres, *postgres.Store) {
	t.Helper()
	st, err := postgres.Open(t.Context(), postgres.Config{URL: url, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	b, err := notify.NewPostgres(notify.PostgresConfig{Origin: origin, DB: st.DB(), Conn: st.ConnConfig(), Namespace: st.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	return b, st
}

// A message reaches the other hosts, not its sender, on its own topic.
func TestPostgresBusReachesTheOtherHosts(t *testing.T) {
	t.Parallel()
	url := pgtest.Schema(t)
	a, _ := openBus(t, url, "host_a")
	b, _ := openBus(t, url, "host_b")
	// Another cluster in another schema of the same database hears none
	// of it: NOTIFY channels are database-wide.
	other, _ := openBus(t, pgtest.Schema(t), "host_other")
	inA, inB, inOther := newInbox(), newInbox(), newInbox()
	inA.on(a, notify.Connection, notify.Cancel)
	inB.on(b, notify.Connection, notify.Cancel)
	inOther.on(other, notify.Connection, notify.Cancel)
	for _, bus := range []*notify.Postgres{a, b, other} {
		if err := bus.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bus.Close() })
	}
	if err := a.Publish(t.Context(), notify.Connection, "conn_1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(t.Context(), notify.Cancel, "run_9"); err != nil {
		t.Fatal(err)
	}
	inB.waitFor(t, "host b gets host a's message", func() bool { return len(inB.of(notify.Connection)) == 1 })
	inA.waitFor(t, "host a gets host b's message", func() bool { return len(inA.of(notify.Cancel)) == 1 })
	time.Sleep(100 * time.Millisecond)
	if got := inB.of(notify.Connection); got[0] != "conn_1" {
		t.Fatalf("payload = %v", got)
	}
	if n := len(inA.of(notify.Connection)); n != 0 {
		t.Fatalf("the sender received its own message %d times", n)
	}
	if n := len(inB.of(notify.Cancel)); n != 0 {
		t.Fatalf("the sender received its own message %d times", n)
	}
	if n := len(inOther.of(notify.Connection)) + len(inOther.of(notify.Cancel)); n != 0 {
		t.Fatalf("a cluster in another schema received %d messages", n)
	}
	if err := a.Publish(t.Context(), notify.Connection, strings.Repeat("x", notify.MaxPayload+1)); err != notify.ErrPayloadTooLarge {
		t.Fatalf("oversized payload: %v", err)
	}
}

// A host whose listening connection drops reconnects, runs its catch-up
// handlers, and receives what is sent afterwards.
func TestPostgresBusReconnects(t *testing.T) {
	t.Parallel()
	url := pgtest.Schema(t)
	a, st := openBus(t, url, "host_a")
	// The session to kill is found by its application name, across the
	// whole server: other tests (and other packages' test binaries) run
	// buses named host_b at the same time, so this one has a name of its
	// own.
	origin := fmt.Sprintf("host_b_%016x", rand.Uint64())
	b, _ := openBus(t, url, origin)
	in := newInbox()
	in.on(b, notify.Dispatch)
	var reconnects sync.WaitGroup
	reconnects.Add(1)
	var once sync.Once
	b.OnReconnect(func() { once.Do(reconnects.Done) })
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// Kill host b's LISTEN session.
	var killed int
	if err := st.DB().QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, notify.ApplicationName(origin)).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d sessions: %v", killed, err)
	}
	done := make(chan struct{})
	go func() { reconnects.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("no reconnect after the listening session was terminated")
	}
	if !b.Connected() {
		t.Fatal("not connected after the reconnect")
	}
	if err := a.Publish(t.Context(), notify.Dispatch, ""); err != nil {
		t.Fatal(err)
	}
	in.waitFor(t, "a message after the reconnect", func() bool { return len(in.of(notify.Dispatch)) >= 1 })
}

// relayPair starts two hosts' relays on one bus schema: host a's relay
// (to send on) and host b's hub (to follow).
func relayPair(t *testing.T) (*notify.Relay, *runevents.Hub) {
	t.Helper()
	url := pgtest.Schema(t)
	a, _ := openBus(t, url, "host_a")
	b, _ := openBus(t, url, "host_b")
	hubA, hubB := &runevents.Hub{}, &runevents.Hub{}
	ra := notify.NewRelay(a, hubA, nil)
	rb := notify.NewRelay(b, hubB, nil)
	for _, bus := range []*notify.Postgres{a, b} {
		if err := bus.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { ra.Close(); rb.Close(); _ = a.Close(); _ = b.Close() })
	return ra, hubB
}

// The relay carries run events to the other hosts' hubs, the end always,
// and progress at most every ProgressEvery per run.
func TestRelayCarriesRunEvents(t *testing.T) {
	t.Parallel()
	ra, hubB := relayPair(t)
	ch, stop := hubB.Subscribe("run_1")
	defer stop()
	ra.Send(runevents.Event{RunID: "run_1", Kind: runevents.KindStatus, Status: "running"})
	// A progress event per record and a records event per commit, as a
	// run sends them: the records events must not lose to the progress.
	for i := range 50 {
		ra.Send(runevents.Event{RunID: "run_1", Kind: runevents.KindProgress, Done: int64(i)})
		if i%10 == 9 {
			ra.Send(runevents.Event{RunID: "run_1", Kind: runevents.KindRecords, Records: int64(i + 1),
				StreamRecords: map[string]int64{"events": int64(i + 1)}})
		}
	}
	ra.Send(runevents.Event{RunID: "run_1", Kind: runevents.KindEnd, Status: "succeeded", Records: 50})
	var got []runevents.Event
	timeout := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case ev, ok := <-ch:
			if !ok {
				done = true
				break
			}
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("events after 10s: %+v", got)
		}
	}
	if len(got) < 2 || got[0].Kind != runevents.KindStatus || got[len(got)-1].Kind != runevents.KindEnd {
		t.Fatalf("events = %+v", got)
	}
	if len(got) > 6 {
		t.Fatalf("%d events relayed for 55 progress and records events sent within %s: not throttled", len(got), notify.ProgressEvery)
	}
	// The latest of each kind held back went out before the end.
	var lastProgress, lastRecords *runevents.Event
	for i := range got {
		switch got[i].Kind {
		case runevents.KindProgress:
			lastProgress = &got[i]
		case runevents.KindRecords:
			lastRecords = &got[i]
		}
	}
	if lastProgress == nil || lastProgress.Done != 49 {
		t.Errorf("last progress relayed %+v, want done 49", lastProgress)
	}
	if lastRecords == nil || lastRecords.Records != 50 || lastRecords.StreamRecords["events"] != 50 {
		t.Errorf("last records event relayed %+v, want 50 (events 50)", lastRecords)
	}
}

// An event held back by the throttle goes out when its interval is over,
// without waiting for another event or the end: a follower on another
// host sees a run's counts while it is quiet.
func TestRelaySendsHeldEventAfterInterval(t *testing.T) {
	t.Parallel()
	ra, hubB := relayPair(t)
	ch, stop := hubB.Subscribe("run_2")
	defer stop()
	for i := range 3 {
		ra.Send(runevents.Event{RunID: "run_2", Kind: runevents.KindRecords, Records: int64(i + 1)})
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Kind == runevents.KindRecords && ev.Records == 3 {
				return
			}
		case <-timeout:
			t.Fatal("the held-back records event (3) never went out")
		}
	}
}
