package cluster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/cluster"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/jonboulle/clockwork"
)

const (
	ttl  = 6 * time.Second
	skew = 2 * time.Second
)

// newStore is a real SQLite store keeping time by the fake clock.
func newStore(t *testing.T, fc *clockwork.FakeClock) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{DataDir: t.TempDir(), Now: fc.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func join(t *testing.T, st *sqlite.Store, fc *clockwork.FakeClock, id string, alone bool, onLost func()) *cluster.Member {
	t.Helper()
	m, err := cluster.Join(context.Background(), cluster.Config{Store: st, HostID: id, Addr: "127.0.0.1:1", Version: "test",
		Alone: alone, TTL: ttl, MaxClockSkew: skew, Clock: fc, OnLost: onLost, Audit: &audit.Log{Store: st}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func status(t *testing.T, st *sqlite.Store, id string) store.HostStatus {
	t.Helper()
	hosts, err := st.ListHosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.ID == id {
			return h.Status
		}
	}
	t.Fatalf("host %s is not listed", id)
	return ""
}

// eventually advances the fake clock by step until cond holds.
func eventually(t *testing.T, fc *clockwork.FakeClock, step time.Duration, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		fc.Advance(step)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("condition not met (fake clock at %s)", fc.Now().Format(time.RFC3339))
}

// A host is reaped once its last heartbeat is older than TTL plus the
// skew, not before; on a store a host owns alone, every earlier process is
// reaped at Join whatever its last heartbeat.
func TestJoinReapsDeadHosts(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		alone    bool
		silent   time.Duration // since the other host's last heartbeat
		wantDead bool
	}{
		"shared, within TTL + skew":  {silent: ttl + skew - time.Second},
		"shared, past TTL + skew":    {silent: ttl + skew + time.Second, wantDead: true},
		"alone, an earlier process":  {alone: true, silent: 0, wantDead: true},
		"alone, long gone":           {alone: true, silent: time.Hour, wantDead: true},
		"shared, exactly TTL + skew": {silent: ttl + skew},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fc := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			st := newStore(t, fc)
			if _, err := st.RegisterHost(context.Background(), store.NewHost{ID: "host_other"}); err != nil {
				t.Fatal(err)
			}
			fc.Advance(tc.silent)
			join(t, st, fc, "host_self", tc.alone, nil)
			want := store.HostLive
			if tc.wantDead {
				want = store.HostCrashed
			}
			if got := status(t, st, "host_other"); got != want {
				t.Fatalf("other host %s, want %s", got, want)
			}
			if got := status(t, st, "host_self"); got != store.HostLive {
				t.Fatalf("this host %s", got)
			}
		})
	}
}

// Every live host heartbeats and reaps: a host that stops heartbeating is
// reaped by a survivor within TTL + skew + one reap period, and a
// heartbeating one never is.
func TestSurvivorReapsAHostThatStoppedHeartbeating(t *testing.T) {
	t.Parallel()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := newStore(t, fc)
	ctx := context.Background()
	a := join(t, st, fc, "host_a", false, nil)
	a.Start()
	t.Cleanup(func() { _ = a.Leave(ctx) })
	// host_b is another process: it heartbeats every second for four
	// TTLs, and nobody reaps it.
	if _, err := st.RegisterHost(ctx, store.NewHost{ID: "host_b"}); err != nil {
		t.Fatal(err)
	}
	for range 4 * int(ttl/time.Second) {
		fc.Advance(time.Second)
		if _, err := st.HeartbeatHost(ctx, "host_b", 0); err != nil {
			t.Fatalf("heartbeat of a live host: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if status(t, st, "host_a") != store.HostLive || status(t, st, "host_b") != store.HostLive {
		t.Fatal("a heartbeating host was reaped")
	}
	// host_b dies; host_a reaps it.
	died := fc.Now()
	eventually(t, fc, 500*time.Millisecond, func() bool { return status(t, st, "host_b") == store.HostCrashed })
	if after := fc.Since(died); after <= ttl+skew || after > ttl+skew+ttl/5+time.Second {
		t.Fatalf("reaped %s after its last heartbeat, want after TTL + skew (%s) and within a reap period more", after, ttl+skew)
	}
	if status(t, st, "host_a") != store.HostLive {
		t.Fatal("the survivor was reaped")
	}
}

// A host the others declared dead (it stalled past the TTL) learns it at
// its next heartbeat: OnLost runs, and it joins again.
func TestLostHostCancelsAndJoinsAgain(t *testing.T) {
	t.Parallel()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := newStore(t, fc)
	var lost atomic.Int32
	m := join(t, st, fc, "host_stalled", false, func() { lost.Add(1) })
	m.Start()
	t.Cleanup(func() { _ = m.Leave(context.Background()) })
	// Another host reaps it behind its back.
	if _, err := st.ReapHosts(context.Background(), "host_other", fc.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if status(t, st, "host_stalled") != store.HostCrashed {
		t.Fatal("not reaped")
	}
	eventually(t, fc, time.Second, func() bool { return lost.Load() == 1 && status(t, st, "host_stalled") == store.HostLive })
}

// Leave marks the host stopped and hands back what it claimed and did not
// start, at once: nobody waits for a TTL.
func TestLeaveHandsTheWorkBack(t *testing.T) {
	t.Parallel()
	fc := clockwork.NewFakeClockAt(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st := newStore(t, fc)
	ctx := context.Background()
	m := join(t, st, fc, "host_leaving", false, nil)
	m.Start()
	if _, err := st.UpsertConnector(ctx, store.ConnectorRegistration{Key: "demo", Version: "1", Manifest: []byte(`{}`),
		Path: "/demo", SHA256: "00000000000000000000000000000000000000000000000000000000000000ff"}); err != nil {
		t.Fatal(err)
	}
	c, err := st.CreateConnection(ctx, store.NewConnection{ConnectorKey: "demo", Label: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnqueueManual(ctx, store.ManualRun{ConnectionID: c.ID}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ClaimDue(ctx, "host_leaving", fc.Now(), 1); err != nil || len(got) != 1 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	if err := m.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if got := status(t, st, "host_leaving"); got != store.HostStopped {
		t.Fatalf("status %s, want stopped", got)
	}
	q, err := st.ListOccurrences(ctx, store.OccurrenceFilter{ConnectionID: c.ID})
	if err != nil || len(q) != 1 || q[0].State != store.OccurrencePending || q[0].ClaimedBy != "" {
		t.Fatalf("queue after leave = %+v, %v", q, err)
	}
}
