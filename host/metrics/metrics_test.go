package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/metrics"
	"github.com/connhost/connhost/host/store"
	dto "github.com/prometheus/client_model/go"
)

// value returns the value of the series name{labels}: a counter's or a
// gauge's value, or a histogram's sample count.
func value(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if !matches(s.GetLabel(), labels) {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue()
			case s.Gauge != nil:
				return s.GetGauge().GetValue()
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func matches(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, l := range got {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// TestObservers: each observation lands in its series; a refusal counts
// as a run and a refusal without touching the active gauge or the
// duration histogram.
func TestObservers(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RunStarted("manual")
	m.RunStarted("scheduled")
	m.RunStarted("scheduled")
	m.RecordsCommitted("demo", 40)
	m.RecordsCommitted("demo", 2)
	m.RunEnded("manual", store.RunSucceeded, "", 2*time.Second)
	m.RunEnded("scheduled", store.RunFailed, failure.ConnectorFailed, time.Second)
	m.RunEnded("scheduled", store.RunRefused, failure.StaticSecretUnavailable, 0)
	m.ObserveLaunch("demo", 90*time.Millisecond)
	m.ObserveLaunch("demo", 50*time.Millisecond)
	m.ObserveLag("conn_1", 3*time.Second)
	m.ObserveLag("conn_2", -time.Second)
	m.ObserveHTTP("GET /v1/runs/{id}", 200, time.Millisecond, false)
	m.ObserveHTTP("GET /v1/runs/{id}/events", 200, time.Minute, true)
	m.ObserveHTTP("", 404, time.Millisecond, false)
	m.ObserveGRPC("/connhost.admin.v1.AdminService/TriggerRun", "OK", time.Millisecond, false)
	m.ObserveGRPC("/connhost.admin.v1.AdminService/WatchRun", "OK", time.Minute, true)

	cases := map[string]struct {
		name   string
		labels map[string]string
		want   float64
	}{
		"succeeded run":      {"connhost_runs_total", map[string]string{"trigger": "manual", "status": "succeeded"}, 1},
		"failed run":         {"connhost_runs_total", map[string]string{"trigger": "scheduled", "status": "failed"}, 1},
		"refused run":        {"connhost_runs_total", map[string]string{"trigger": "scheduled", "status": "refused"}, 1},
		"refusal by code":    {"connhost_run_refusals_total", map[string]string{"failure_code": "static_secret_credential_unavailable"}, 1},
		"failure by code":    {"connhost_run_failures_total", map[string]string{"failure_code": "connector_failed"}, 1},
		"one still active":   {"connhost_runs_active", map[string]string{}, 1},
		"durations observed": {"connhost_run_duration_seconds", map[string]string{"trigger": "scheduled", "status": "failed"}, 1},
		"no refused duration": {"connhost_run_duration_seconds",
			map[string]string{"trigger": "scheduled", "status": "refused"}, 0},
		"records":        {"connhost_records_ingested_total", map[string]string{"connector": "demo"}, 42},
		"lag samples":    {"connhost_scheduler_lag_seconds", map[string]string{}, 2},
		"launches":       {"connhost_launch_duration_seconds", map[string]string{"connector": "demo"}, 2},
		"http by route":  {"connhost_http_requests_total", map[string]string{"route": "GET /v1/runs/{id}", "code": "200"}, 1},
		"unmatched":      {"connhost_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1},
		"stream counted": {"connhost_http_requests_total", map[string]string{"route": "GET /v1/runs/{id}/events", "code": "200"}, 1},
		"stream not in latency": {"connhost_http_request_duration_seconds",
			map[string]string{"route": "GET /v1/runs/{id}/events"}, 0},
		"grpc by method": {"connhost_grpc_requests_total",
			map[string]string{"method": "/connhost.admin.v1.AdminService/TriggerRun", "code": "OK"}, 1},
		"grpc latency": {"connhost_grpc_request_duration_seconds",
			map[string]string{"method": "/connhost.admin.v1.AdminService/TriggerRun"}, 1},
		"grpc stream counted": {"connhost_grpc_requests_total",
			map[string]string{"method": "/connhost.admin.v1.AdminService/WatchRun", "code": "OK"}, 1},
		"grpc stream not in latency": {"connhost_grpc_request_duration_seconds",
			map[string]string{"method": "/connhost.admin.v1.AdminService/WatchRun"}, 0},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := value(t, m, c.name, c.labels); got != c.want {
				t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
			}
		})
	}
}

// TestHandlerExposition: the handler serves the text format with the
// host's series and the runtime collectors, on the private registry only.
func TestHandlerExposition(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	m.RecordsCommitted("demo", 1)
	other := metrics.New() // a second host in one process must not collide
	other.RecordsCommitted("demo", 5)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`connhost_records_ingested_total{connector="demo"} 1`, "go_goroutines", "# HELP connhost_runs_total"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

// TestConnectionHealth: every verdict has a connections{health} series
// from the start, at 0; a scan's counts set them, and a verdict no longer
// counted goes back to 0.
func TestConnectionHealth(t *testing.T) {
	m := metrics.New()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	scrape := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	text := scrape()
	for _, v := range health.Verdicts {
		if line := `connhost_connections{health="` + string(v) + `"} 0`; !strings.Contains(text, line) {
			t.Errorf("scrape lacks %q", line)
		}
	}
	m.ConnectionHealth(map[health.Verdict]int{health.Healthy: 3, health.CredentialUnavailable: 2})
	m.ConnectionHealth(map[health.Verdict]int{health.Healthy: 4, health.NeedsCredential: 1})
	want := map[health.Verdict]float64{health.Healthy: 4, health.NeedsCredential: 1}
	for _, v := range health.Verdicts {
		if got := value(t, m, "connhost_connections", map[string]string{"health": string(v)}); got != want[v] {
			t.Errorf("connections{health=%q} = %v, want %v", v, got, want[v])
		}
	}
}
