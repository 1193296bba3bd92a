package health

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Monitor keeps the host's latest Report: it scans at Start (and logs the
// attention summary once), then again after Poke — debounced, so a burst
// of events costs one scan — and every Every as a safety net for changes
// nobody poked about (another host's runs, a catalog rescan). It logs the
// summary again whenever the attention list changes (its connections,
// verdicts, reasons or since). It never polls in between.
type Monitor struct {
	cfg  MonitorConfig
	poke chan struct{}

	mu      sync.Mutex
	last    Report
	lastKey string
	logged  bool
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	Store    Lister
	Assessor *Assessor
	Logger   hclog.Logger
	// Debounce is how long after a Poke the scan starts (default 1s):
	// pokes within it share the scan.
	Debounce time.Duration
	// Every is the safety rescan interval (default 1m).
	Every time.Duration
	// OnReport receives every new Report (metrics).
	OnReport func(Report)
}

// NewMonitor returns a Monitor; Start runs it.
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = time.Second
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	return &Monitor{cfg: cfg, poke: make(chan struct{}, 1)}
}

// Poke asks for a scan soon. It never blocks.
func (m *Monitor) Poke() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// Refresh scans now, records the report, and logs the summary when it is
// the first or the attention list changed.
func (m *Monitor) Refresh(ctx context.Context) (Report, error) {
	r, err := Scan(ctx, m.cfg.Store, m.cfg.Assessor)
	if err != nil {
		if ctx.Err() == nil {
			m.cfg.Logger.Warn("health scan failed", "error", err)
		}
		return Report{}, err
	}
	k := key(r.Attention)
	m.mu.Lock()
	changed := !m.logged || k != m.lastKey
	m.last, m.lastKey, m.logged = r, k, true
	m.mu.Unlock()
	if changed {
		m.cfg.Logger.Info(Summary(r.Attention), "connections", r.Connections, "needs_person", len(r.Attention))
	}
	if m.cfg.OnReport != nil {
		m.cfg.OnReport(r)
	}
	return r, nil
}

// Last returns the latest report and whether there is one.
func (m *Monitor) Last() (Report, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, m.logged
}

// Run scans (unless Refresh already did), then on pokes (debounced) and
// every Every, until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	if _, ok := m.Last(); !ok {
		_, _ = m.Refresh(ctx)
	}
	tick := time.NewTicker(m.cfg.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-m.poke:
			t := time.NewTimer(m.cfg.Debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			// Pokes during the wait are served by this scan.
			select {
			case <-m.poke:
			default:
			}
		}
		_, _ = m.Refresh(ctx)
	}
}
