// Package metrics is connhost's Prometheus instrumentation: one Metrics
// value, on its own registry (never the global one, so two hosts in one
// test binary do not collide), fed by the runner (runner.Observer), the
// scheduler (schedule.Observer) and the HTTP API, and served at /metrics.
//
// Series, all prefixed connhost_:
//
//	runs_total{trigger,status}              counter: every run attempt, refusals included, by outcome
//	run_refusals_total{failure_code}        counter: launches refused before a child was spawned
//	run_failures_total{failure_code}        counter: runs that failed or were cancelled after spawning
//	run_duration_seconds{trigger,status}    histogram: spawn to end of runs that started
//	runs_active                             gauge: runs with a live child on this host
//	records_ingested_total{connector}       counter: records committed, by connector key
//	scheduler_lag_seconds                   histogram: how late gocron fired a job after its instant
//	dispatch_lag_seconds{trigger}           histogram: run_at (due + jitter) to a worker taking the occurrence
//	occurrences_total{outcome}              counter: ticks recorded, coalesced, duplicate (another host was first), stale
//	occurrences_coalesced_total             counter: ticks dropped because the connection's occurrence was pending or running
//	workers_busy                            gauge: this host's workers holding an occurrence
//	http_requests_total{route,code}         counter: API requests by ServeMux pattern and status
//	http_request_duration_seconds{route}    histogram: API request latency
//	connections{health}                     gauge: connections by health verdict (host/health), every verdict, zeros included
//
// connections{health} is not computed at scrape: the host's health
// monitor (health.Monitor) sets it after each scan — at boot, a second
// after a run ends or an operator changes something (debounced), and
// every minute — so a scrape costs nothing and a scan costs one page
// query and one batched credential read per 1,000 connections. It counts
// every connection of the store, so on a shared store every host reports
// the same numbers (aggregate with max, not sum).
//
// plus the standard Go runtime and process collectors.
//
// Label values come from closed sets (triggers, statuses, failure codes,
// connector keys of the catalog, registered route patterns), never from
// connection or run ids, so cardinality stays bounded as connections grow.
// Nothing here ever sees a secret: observers receive codes, names and
// durations only.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/connhost/connhost/host/api/adminrpc"
	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series.
const Namespace = "connhost"

// Metrics holds the host's collectors and their registry. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	runs        *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	failures    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	active      prometheus.Gauge
	records     *prometheus.CounterVec
	launch      *prometheus.HistogramVec
	lag         prometheus.Histogram
	dispLag     *prometheus.HistogramVec
	ticks       *prometheus.CounterVec
	coalesced   prometheus.Counter
	busy        prometheus.Gauge
	httpReqs    *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec
	grpcReqs    *prometheus.CounterVec
	grpcLatency *prometheus.HistogramVec
	health      *prometheus.GaugeVec
}

// New returns Metrics registered on a fresh registry, with the Go and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_total",
			Help: "Run attempts by trigger and final status (refused runs included).",
		}, []string{"trigger", "status"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "run_refusals_total",
			Help: "Launches refused before a connector child was spawned, by failure code.",
		}, []string{"failure_code"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "run_failures_total",
			Help: "Started runs that failed or were cancelled, by failure code.",
		}, []string{"failure_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "run_duration_seconds",
			Help: "Duration of runs that spawned a connector child, from start to end.",
			// 50ms (a tiny demo run) to ~3.4h (beyond the default 1h run timeout).
			Buckets: prometheus.ExponentialBuckets(0.05, 4, 10),
		}, []string{"trigger", "status"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "runs_active",
			Help: "Runs with a live connector child on this host.",
		}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "records_ingested_total",
			Help: "Records committed to the store, by connector key.",
		}, []string{"connector"}),
		launch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "launch_duration_seconds",
			Help: "Time to start a connector child: verify the binary, spawn it, complete the go-plugin handshake.",
			// 5ms to ~10s (the default handshake timeout is 1 minute).
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"connector"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "scheduler_lag_seconds",
			Help:    "How late the schedule's clock fired a connection's job after the instant it was for.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60},
		}),
		dispLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "dispatch_lag_seconds",
			Help:    "How long after its run_at (due instant plus jitter) an occurrence reached a worker (waiting for a free worker included).",
			Buckets: []float64{0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600},
		}, []string{"trigger"}),
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "occurrences_total",
			Help: "Schedule ticks this host recorded, by outcome: recorded, coalesced, duplicate (another host recorded the instant first), stale (the schedule changed), held (the connection is held, or the instant falls before its backoff).",
		}, []string{"outcome"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "occurrences_coalesced_total",
			Help: "Schedule ticks dropped because the connection's previous occurrence was still pending or running.",
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "workers_busy",
			Help: "Workers of this host holding an occurrence (at most --max-concurrent-runs).",
		}),
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP API requests by route pattern and status code.",
		}, []string{"route", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP API request latency by route pattern (event streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		grpcReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grpc_requests_total",
			Help: "gRPC admin calls by full method name and status code.",
		}, []string{"method", "code"}),
		grpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "grpc_request_duration_seconds",
			Help:    "gRPC admin call latency by full method name (server streams excluded).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method"}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "connections",
			Help: "Connections by health verdict (every verdict reported, zeros included), as of the health monitor's latest scan.",
		}, []string{"health"}),
	}
	m.reg.MustRegister(
		m.runs, m.refusals, m.failures, m.duration, m.active, m.records, m.launch, m.lag, m.httpReqs, m.httpLatency, m.grpcReqs, m.grpcLatency,
		m.dispLag, m.ticks, m.coalesced, m.busy, m.health,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Every trigger × final status exists from the start at zero, so a
	// rate() or an alert on "no successful runs" sees a series before the
	// first run of its kind.
	for _, trigger := range []store.RunTrigger{store.TriggerScheduled, store.TriggerRetry, store.TriggerManual} {
		for _, status := range []store.RunStatus{store.RunSucceeded, store.RunFailed, store.RunRefused, store.RunCancelled} {
			m.runs.WithLabelValues(string(trigger), string(status))
		}
	}
	for _, o := range []store.TickOutcome{store.TickRecorded, store.TickCoalesced, store.TickDuplicate, store.TickStale, store.TickHeld} {
		m.ticks.WithLabelValues(string(o))
	}
	for _, v := range health.Verdicts {
		m.health.WithLabelValues(string(v)).Set(0)
	}
	return m
}

// ConnectionHealth sets connections{health} from a health scan's counts;
// a verdict absent from counts is set to 0.
func (m *Metrics) ConnectionHealth(counts map[health.Verdict]int) {
	for _, v := range health.Verdicts {
		m.health.WithLabelValues(string(v)).Set(float64(counts[v]))
	}
}

// Registry returns the registry the collectors are on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. It does
// no authentication: the API wraps it with the operator token check.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// RunStarted counts a run whose connector child is starting.
func (m *Metrics) RunStarted(trigger string) {
	m.active.Inc()
}

// RunEnded records a run's outcome. A refused run never started (the
// runner reports it without RunStarted and with no duration), so it
// neither leaves the active gauge nor enters the duration histogram.
func (m *Metrics) RunEnded(trigger string, status store.RunStatus, code failure.Code, d time.Duration) {
	m.runs.WithLabelValues(trigger, string(status)).Inc()
	switch status {
	case store.RunRefused:
		m.refusals.WithLabelValues(string(code)).Inc()
		return
	case store.RunFailed, store.RunCancelled:
		m.failures.WithLabelValues(string(code)).Inc()
	}
	m.active.Dec()
	m.duration.WithLabelValues(trigger, string(status)).Observe(d.Seconds())
}

// RecordsCommitted counts records committed for a connector.
func (m *Metrics) RecordsCommitted(connectorKey string, n int) {
	m.records.WithLabelValues(connectorKey).Add(float64(n))
}

// ObserveLaunch records how long a connector child took to start (see
// launch.Config.ObserveStart).
func (m *Metrics) ObserveLaunch(connectorKey string, d time.Duration) {
	m.launch.WithLabelValues(connectorKey).Observe(d.Seconds())
}

// ObserveLag records a scheduled run's start lag. The connection id is
// not a label: it would grow one series per connection.
func (m *Metrics) ObserveLag(_ string, lag time.Duration) {
	if lag < 0 {
		lag = 0
	}
	m.lag.Observe(lag.Seconds())
}

// Ticks counts recorded ticks by outcome (dispatch.Observer).
func (m *Metrics) Ticks(outcome store.TickOutcome, n int) {
	m.ticks.WithLabelValues(string(outcome)).Add(float64(n))
}

// Coalesced counts dropped ticks (dispatch.Observer).
func (m *Metrics) Coalesced(n int) { m.coalesced.Add(float64(n)) }

// ObserveDispatchLag records how late an occurrence reached a worker
// (dispatch.Observer).
func (m *Metrics) ObserveDispatchLag(trigger string, lag time.Duration) {
	m.dispLag.WithLabelValues(trigger).Observe(max(lag, 0).Seconds())
}

// WorkersBusy sets the busy-worker gauge (dispatch.Observer).
func (m *Metrics) WorkersBusy(n int) { m.busy.Set(float64(n)) }

// ObserveHTTP records one API request. route is the ServeMux pattern that
// matched ("" for none, recorded as "unmatched"); streaming routes pass
// stream true so their open time does not skew the latency histogram.
func (m *Metrics) ObserveHTTP(route string, code int, d time.Duration, stream bool) {
	if route == "" {
		route = "unmatched"
	}
	m.httpReqs.WithLabelValues(route, strconv.Itoa(code)).Inc()
	if !stream {
		m.httpLatency.WithLabelValues(route).Observe(d.Seconds())
	}
}

// ObserveGRPC records one gRPC admin call; server streams (WatchRun) are
// counted but kept out of the latency histogram, like HTTP event streams.
func (m *Metrics) ObserveGRPC(method, code string, d time.Duration, stream bool) {
	m.grpcReqs.WithLabelValues(method, code).Inc()
	if !stream {
		m.grpcLatency.WithLabelValues(method).Observe(d.Seconds())
	}
}

var (
	_ adminrpc.Observer = (*Metrics)(nil)
	_ dispatch.Observer = (*Metrics)(nil)
	_ runner.Observer   = (*Metrics)(nil)
	_ schedule.Observer = (*Metrics)(nil)
)
