// Package cluster is a host's membership in the store it works on: it
// registers the host (id, address, version), heartbeats, and reaps hosts
// that stopped heartbeating, so their work comes back without waiting for
// them.
//
// A host is dead when its last heartbeat is older than TTL plus the
// largest clock skew the cluster tolerates (MaxClockSkew): reaping it, in
// one transaction per host, fails its started runs with host_crashed,
// deletes its leases and returns its claimed-but-unstarted occurrences to
// the queue. Every live host reaps, every ReapEvery; the store lets one
// reaper win. A host the others declared dead (it stalled past the TTL)
// learns it at its next heartbeat: OnLost cancels what it still runs, and
// it registers again.
//
// On a store one host owns alone (SQLite, one host per data dir), every
// other host row is an earlier process of this data dir: Join reaps them
// all at once, whatever their last heartbeat.
//
// The member also knows the live hosts (read at every heartbeat), so the
// hosts can share out the recording of schedule ticks: Primary says
// whether this host is the one that records a connection's ticks first
// (rendezvous hashing over the live hosts, so a host joining or leaving
// moves only its share).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/connhost/connhost/host/audit"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/store"
	"github.com/hashicorp/go-hclog"
	"github.com/jonboulle/clockwork"
)

// Store is the part of the store membership uses.
type Store interface {
	RegisterHost(ctx context.Context, h store.NewHost) (store.Host, error)
	HeartbeatHost(ctx context.Context, id string, runsActive int) (store.Host, error)
	StopHost(ctx context.Context, id string) error
	ReapHosts(ctx context.Context, self string, deadBefore time.Time) ([]store.HostReap, error)
	ListHosts(ctx context.Context) ([]store.Host, error)
}

// Defaults.
const (
	DefaultTTL          = 15 * time.Second
	DefaultMaxClockSkew = 2 * time.Second
)

// Config configures a Member.
type Config struct {
	Store   Store
	HostID  string
	Addr    string
	Version string
	// Alone is set for a store this host owns alone (SQLite).
	Alone bool
	// TTL is how long a host may go without a heartbeat before the others
	// reap it (default 15s); it heartbeats every TTL/3.
	TTL time.Duration
	// MaxClockSkew is the largest difference between two hosts' clocks
	// the cluster tolerates (default 2s): a heartbeat is judged with it.
	MaxClockSkew time.Duration
	// ReapEvery is how often this host looks for dead hosts (default
	// TTL/5).
	ReapEvery time.Duration
	Clock     clockwork.Clock
	// RunsActive reports this host's active runs, for its heartbeat.
	RunsActive func() int
	// Ended is told about every run a reap failed (to publish its end to
	// followers).
	Ended func(store.Run)
	// OnLost is called when the others declared this host dead; the
	// member registers again after it returns.
	OnLost func()
	Audit  *audit.Log
	Logger hclog.Logger
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil || c.HostID == "":
		return errors.New("cluster: Store and HostID are required")
	case c.TTL < 0 || c.MaxClockSkew < 0 || c.ReapEvery < 0:
		return errors.New("cluster: negative durations")
	case c.TTL != 0 && c.TTL < 3*time.Second:
		return errors.New("cluster: TTL must be at least 3s")
	}
	return nil
}

func (c *Config) defaults() {
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.ReapEvery == 0 {
		c.ReapEvery = c.TTL / 5
	}
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.RunsActive == nil {
		c.RunsActive = func() int { return 0 }
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Member is this host in the cluster.
type Member struct {
	cfg  Config
	stop context.CancelFunc
	done sync.WaitGroup
	live atomic.Pointer[[]string] // the live hosts' ids, this one included
}

// New returns the host's member, not joined yet: until Join, the host
// counts itself the only live one (Primary of every connection).
func New(cfg Config) (*Member, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	m := &Member{cfg: cfg}
	m.live.Store(&[]string{cfg.HostID})
	return m, nil
}

// Join registers the host, reaps what dead hosts left behind and reads
// the live hosts. Join once the host records every tick that falls due
// — its schedules enrolled, their recent instants caught up: from then on
// the other hosts leave this host's share of the recording to it, and an
// instant they stop recording at once must already be recorded here.
func (m *Member) Join(ctx context.Context) error {
	if err := m.register(ctx); err != nil {
		return err
	}
	deadBefore := m.deadBefore()
	if m.cfg.Alone {
		// Every other row is an earlier process of this data dir.
		deadBefore = m.cfg.Clock.Now().Add(100 * 365 * 24 * time.Hour)
	}
	if err := m.reap(ctx, deadBefore); err != nil {
		return err
	}
	m.refreshLive(ctx)
	return nil
}

// refreshLive reads which hosts are live.
func (m *Member) refreshLive(ctx context.Context) {
	hosts, err := m.cfg.Store.ListHosts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Warn("list live hosts", "error", err)
		}
		return
	}
	live := []string{m.cfg.HostID}
	for _, h := range hosts {
		if h.Status == store.HostLive && h.ID != m.cfg.HostID {
			live = append(live, h.ID)
		}
	}
	m.live.Store(&live)
}

// Live returns the ids of the live hosts as last read, this one included.
func (m *Member) Live() []string { return slices.Clone(*m.live.Load()) }

// Primary reports whether this host records the ticks of connectionID as
// they fall due (dispatch.Config.Primary); the other live hosts record
// them later, as backups.
func (m *Member) Primary(connectionID string) bool {
	return Owner(*m.live.Load(), connectionID) == m.cfg.HostID
}

// Owner returns which of hosts is the primary of connectionID: the one
// with the highest hash of (host, connection) — rendezvous hashing, so
// every host computes the same owner from the same list, and a host
// joining or leaving moves only the connections it wins or held.
func Owner(hosts []string, connectionID string) string {
	var (
		best  string
		score uint64
	)
	for _, h := range hosts {
		f := fnv.New64a()
		_, _ = f.Write([]byte(h))
		_, _ = f.Write([]byte{0})
		_, _ = f.Write([]byte(connectionID))
		if v := mix(f.Sum64()); best == "" || v > score || (v == score && h < best) {
			best, score = h, v
		}
	}
	return best
}

// mix is MurmurHash3's 64-bit finalizer. FNV-1a leaves its high bits to
// the first bytes it hashes — the host id, here — so without it one host
// would win almost every comparison.
func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

func (m *Member) register(ctx context.Context) error {
	if _, err := m.cfg.Store.RegisterHost(ctx, store.NewHost{ID: m.cfg.HostID, Addr: m.cfg.Addr, Version: m.cfg.Version}); err != nil {
		return fmt.Errorf("cluster: register host: %w", err)
	}
	return nil
}

// deadBefore is the heartbeat time before which a host is dead.
func (m *Member) deadBefore() time.Time {
	return m.cfg.Clock.Now().Add(-(m.cfg.TTL + m.cfg.MaxClockSkew))
}

// Start heartbeats and reaps until Leave.
func (m *Member) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.done.Add(2)
	go m.loop(ctx, m.cfg.TTL/3, m.heartbeat)
	go m.loop(ctx, m.cfg.ReapEvery, func(ctx context.Context) {
		if err := m.reap(ctx, m.deadBefore()); err != nil && ctx.Err() == nil {
			m.cfg.Logger.Error("reap dead hosts", "error", err)
		}
	})
}

func (m *Member) loop(ctx context.Context, every time.Duration, fn func(context.Context)) {
	defer m.done.Done()
	t := m.cfg.Clock.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			cctx, cancel := context.WithTimeout(ctx, every)
			fn(cctx)
			cancel()
		}
	}
}

func (m *Member) heartbeat(ctx context.Context) {
	_, err := m.cfg.Store.HeartbeatHost(ctx, m.cfg.HostID, m.cfg.RunsActive())
	switch {
	case err == nil:
		m.refreshLive(ctx)
		return
	case ctx.Err() != nil:
		return
	case errors.Is(err, store.ErrHostNotLive):
		m.cfg.Logger.Error("the other hosts declared this host dead (no heartbeat within the TTL); its runs were failed and its work taken back: cancelling what still runs here and joining again",
			"host_id", m.cfg.HostID, "ttl", m.cfg.TTL)
		if m.cfg.OnLost != nil {
			m.cfg.OnLost()
		}
		if err := m.register(ctx); err != nil {
			m.cfg.Logger.Error("join again", "error", err)
		}
	default:
		m.cfg.Logger.Warn("heartbeat failed", "error", err)
	}
}

// reap takes back the work of hosts whose heartbeat is before deadBefore.
func (m *Member) reap(ctx context.Context, deadBefore time.Time) error {
	reaps, err := m.cfg.Store.ReapHosts(ctx, m.cfg.HostID, deadBefore)
	for _, r := range reaps {
		m.cfg.Logger.Warn("host stopped heartbeating; its work was taken back", "host_id", r.Host.ID,
			"last_seen", r.Host.LastSeen.UTC().Format(time.RFC3339), "runs_failed", len(r.Runs),
			"occurrences_released", r.Released, "leases", len(r.Leases))
		m.cfg.Audit.Record(ctx, audit.Event{Actor: audit.ActorHost, Operation: "host.reap", TargetKind: "host",
			TargetID: r.Host.ID, Outcome: store.AuditSucceeded,
			Detail: map[string]string{"by": m.cfg.HostID, "runs_failed": fmt.Sprint(len(r.Runs)), "occurrences_released": fmt.Sprint(r.Released)}})
		for _, run := range r.Runs {
			m.cfg.Audit.Record(ctx, audit.Event{Actor: audit.ActorHost, Operation: "run.reclaim", TargetKind: "connection",
				TargetID: run.ConnectionID, Outcome: store.AuditFailed,
				Detail: map[string]string{"run_id": run.ID, "host_id": r.Host.ID, "failure_code": string(failure.HostCrashed)}})
			if m.cfg.Ended != nil {
				m.cfg.Ended(run)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("cluster: reap: %w", err)
	}
	if len(reaps) > 0 {
		m.refreshLive(ctx) // their share of the recording is ours now
	}
	return nil
}

// Leave stops heartbeating and marks the host stopped, handing back what
// it claimed and did not start. Call it after the host's runs ended.
func (m *Member) Leave(ctx context.Context) error {
	if m.stop != nil {
		m.stop()
		m.done.Wait()
	}
	if err := m.cfg.Store.StopHost(ctx, m.cfg.HostID); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}
