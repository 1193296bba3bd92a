package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/catalog"
	"github.com/connhost/connhost/host/cli"
	"github.com/connhost/connhost/host/dispatch"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/schedule"
	"github.com/connhost/connhost/host/store"
	"github.com/hashicorp/go-hclog"
)

// farSchedule keeps the schedule out of the way: the tests move the fake
// clock by hours at most, and only manual runs change the streak.
const farSchedule = "@every 720h"

// healthCanary is the stored DEMO_TOKEN of the health tests: it must
// appear in no API body, CLI output, metric or log line.
const healthCanary = "canary-health-9f2c41d7e0"

// healthEnv is a test API whose health monitor feeds its metrics.
type healthEnv struct {
	*env
	mon  *health.Monitor
	logs *bytes.Buffer
	seen []string // every body and output read, for the canary check
}

func newHealthEnv(t *testing.T) *healthEnv {
	t.Helper()
	// No retries (a failed manual run stays failed) and no host env
	// credentials.
	e := newEnv(t, hosttest.Options{Retry: dispatch.RetryPolicy{MaxAttempts: 1, Base: 1, Max: 1}})
	logs := &bytes.Buffer{}
	mon := health.NewMonitor(health.MonitorConfig{Store: e.h.Store, Assessor: e.h.Health,
		Logger:   hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}),
		OnReport: func(r health.Report) { e.m.ConnectionHealth(r.Counts) }})
	return &healthEnv{env: e, mon: mon, logs: logs}
}

// get reads a connection through the API, and the one row of the list.
func (e *healthEnv) get(id string) apitypes.Connection {
	e.t.Helper()
	var c apitypes.Connection
	r := e.ok(http.StatusOK, "GET", "/v1/connections/"+id, nil, &c)
	e.seen = append(e.seen, string(r.Body))
	var l apitypes.List[apitypes.Connection]
	r = e.ok(http.StatusOK, "GET", "/v1/connections", nil, &l)
	e.seen = append(e.seen, string(r.Body))
	for _, k := range l.Items {
		if k.ID == id {
			if k.Health == nil || c.Health == nil || *k.Health != *c.Health {
				e.t.Errorf("list health %+v != show health %+v", k.Health, c.Health)
			}
		}
	}
	return c
}

// expect checks the connection's health read back through the API, and
// connhost_connections{health} after a monitor scan: 1 for want, 0 for
// every other verdict (one connection in the store).
func (e *healthEnv) expect(step, id string, want health.Verdict, needsPerson bool, reason string) apitypes.Connection {
	e.t.Helper()
	c := e.get(id)
	h := c.Health
	if h == nil {
		e.t.Fatalf("%s: no health in %+v", step, c)
	}
	if h.Verdict != string(want) || h.NeedsPerson != needsPerson || !strings.Contains(h.Reason, reason) {
		e.t.Errorf("%s: health %+v; want %s needs_person=%v reason ~ %q", step, *h, want, needsPerson, reason)
	}
	if needsPerson && h.Action == "" {
		e.t.Errorf("%s: needs a person but names no action", step)
	}
	if h.Since == "" {
		e.t.Errorf("%s: no since", step)
	}
	if _, err := e.mon.Refresh(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	metrics := e.scrape()
	for _, v := range health.Verdicts {
		n := "0"
		if v == want {
			n = "1"
		}
		if line := `connhost_connections{health="` + string(v) + `"} ` + n + "\n"; !strings.Contains(metrics, line) {
			e.t.Errorf("%s: metrics lack %q", step, strings.TrimSpace(line))
		}
	}
	return c
}

func (e *healthEnv) scrape() string {
	e.t.Helper()
	r := e.call("GET", "/metrics", nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("metrics: %s", r)
	}
	e.seen = append(e.seen, string(r.Body))
	return string(r.Body)
}

// run triggers a manual run through the API and waits for its end.
func (e *healthEnv) run(id string) apitypes.Run {
	e.t.Helper()
	var queued apitypes.Run
	r := e.call("POST", "/v1/connections/"+id+"/runs", nil)
	switch r.Status {
	case http.StatusAccepted:
		if err := json.Unmarshal(r.Body, &queued); err != nil {
			e.t.Fatal(err)
		}
		return e.waitRun(queued.ID)
	default:
		return e.waitRun(r.ErrorBody(e.t).RunID)
	}
}

// cli runs the CLI against the test API.
func (e *healthEnv) cli(args ...string) string {
	e.t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"--addr", e.srv.URL, "--token", testToken}, args...), cli.Runtime{
		Stdout: &out, Stderr: &errOut, LookupEnv: func(string) (string, bool) { return "", false },
		HTTPClient: e.srv.Client()})
	if code != 0 {
		e.t.Fatalf("connhost %v: exit %d: %s%s", args, code, out.String(), errOut.String())
	}
	e.seen = append(e.seen, out.String(), errOut.String())
	return out.String()
}

// noCanary fails if the canary is in anything read, or in the logs.
func (e *healthEnv) noCanary() {
	e.t.Helper()
	for _, s := range append(e.seen, e.logs.String(), e.h.Logs.String()) {
		if strings.Contains(s, healthCanary) {
			e.t.Fatalf("the canary secret leaked: %.500s", s)
		}
	}
}

// TestHealthTransitions drives one demo connection through every verdict
// with the real runner, store and demo plugin subprocess, reading each
// back through the API (show and list), the metrics gauge and the CLI.
func TestHealthTransitions(t *testing.T) {
	e := newHealthEnv(t)
	ctx := context.Background()
	c := e.createDemo(map[string]any{"records": 5}, farSchedule)
	id := c.ID

	// No credential and no host env credentials.
	got := e.expect("created", id, health.NeedsCredential, true, "host env credentials are turned off")
	if got.Streak != nil || got.Hold != nil || got.BackoffUntil != "" {
		t.Errorf("a new connection has streak %+v, hold %+v, backoff %q", got.Streak, got.Hold, got.BackoffUntil)
	}

	e.setToken(id, healthCanary)
	e.expect("credential captured", id, health.NeverRun, false, "not run yet")

	if r := e.run(id); r.Status != "succeeded" {
		t.Fatalf("first run: %+v", r)
	}
	got = e.expect("run succeeded", id, health.Healthy, false, "succeeded")
	if got.Streak == nil || got.Streak.LastRunStatus != "succeeded" || got.Streak.LastRunAt == "" || got.Streak.Failures != nil {
		t.Errorf("streak after a success: %+v", got.Streak)
	}

	// A config the connector refuses at run time (the API's schema check
	// would refuse it, so it is written to the store directly).
	if _, err := e.h.Store.UpdateConnection(ctx, id, store.ConnectionPatch{Config: json.RawMessage(`{"records":-1}`)}); err != nil {
		t.Fatal(err)
	}
	if r := e.run(id); r.FailureCode != "invalid_config" {
		t.Fatalf("run with a bad config: %+v", r)
	}
	got = e.expect("config rejected", id, health.InvalidConfig, true, "")
	if f := got.Streak.Failures; f == nil || f.Code != "invalid_config" || f.Count != 1 || f.Since == "" {
		t.Errorf("streak after invalid_config: %+v", got.Streak)
	}
	// Fixed by an operator (a minute later): off the attention list until
	// the next run.
	e.h.Clock.Advance(time.Minute)
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+id, map[string]any{"config": map[string]any{"records": 10, "fail_at": 1}}, nil)
	e.expect("config fixed", id, health.Failing, false, "changed since")

	// Retryable failures, one class, in a row.
	for i := range health.AttentionAfter {
		if r := e.run(id); r.FailureCode != "connector_failed" {
			t.Fatalf("failing run %d: %+v", i, r)
		}
		if i == 0 {
			e.expect("failed once", id, health.Failing, false, "1 consecutive failure of connector_failed")
		}
	}
	got = e.expect("failed three times", id, health.Failing, true, "3 consecutive failures of connector_failed")
	if f := got.Streak.Failures; f == nil || f.Code != "connector_failed" || f.Count != 3 || got.Streak.LastRunStatus != "failed" {
		t.Errorf("streak after 3 failures: %+v", got.Streak)
	}

	// The provider rejects the credential: the check after a rotation
	// records it.
	other := sha256.Sum256([]byte("the-only-accepted-token"))
	e.ok(http.StatusOK, "PATCH", "/v1/connections/"+id, map[string]any{"config": map[string]any{"records": 10,
		"token_sha256": hex.EncodeToString(other[:])}}, nil)
	e.setToken(id, healthCanary)
	e.expect("credential rejected", id, health.CredentialRejected, true, "token rejected")

	e.ok(http.StatusOK, "POST", "/v1/connections/"+id+"/credential/revoke", nil, nil)
	e.expect("credential revoked", id, health.CredentialUnavailable, true, "stored credential revoked at")
	if r := e.run(id); r.Status != "refused" || r.FailureCode != "static_secret_credential_unavailable" {
		t.Errorf("run after revoke: %+v", r)
	}
	e.expect("refused after revoke", id, health.CredentialUnavailable, true, "")

	// A deleted credential is unavailable too, never "needs one": the
	// host env does not stand in for a tombstone.
	e.ok(http.StatusOK, "DELETE", "/v1/connections/"+id+"/credential", nil, nil)
	e.expect("credential deleted", id, health.CredentialUnavailable, true, "stored credential deleted at")

	// The attention list and its CLI show it, with the action.
	var att apitypes.List[apitypes.AttentionItem]
	r := e.ok(http.StatusOK, "GET", "/v1/attention", nil, &att)
	e.seen = append(e.seen, string(r.Body))
	if len(att.Items) != 1 || att.Items[0].ConnectionID != id || att.Items[0].Verdict != "credential_unavailable" ||
		!strings.Contains(att.Items[0].Action, "credential set "+id) {
		t.Errorf("attention: %+v", att.Items)
	}
	if out := e.cli("attention"); !strings.Contains(out, id) || !strings.Contains(out, "credential_unavailable") {
		t.Errorf("connhost attention:\n%s", out)
	}
	if out := e.cli("connection", "show", id); !strings.Contains(out, "health:          credential_unavailable") ||
		!strings.Contains(out, "action:          capture a new credential") {
		t.Errorf("connhost connection show:\n%s", out)
	}
	if out := e.cli("connection", "list"); !strings.Contains(out, "HEALTH") || !strings.Contains(out, "credential_unavailable") {
		t.Errorf("connhost connection list:\n%s", out)
	}

	e.ok(http.StatusOK, "POST", "/v1/connections/"+id+"/pause", nil, nil)
	e.expect("paused", id, health.Paused, false, "paused")
	e.ok(http.StatusOK, "POST", "/v1/connections/"+id+"/resume", nil, nil)
	e.expect("resumed", id, health.CredentialUnavailable, true, "")

	// The connector leaves the plugin dir.
	if err := os.Remove(filepath.Join(e.h.PluginDir, "demo")); err != nil {
		t.Fatal(err)
	}
	next, _ := catalog.Scan(ctx, e.h.PluginDir, e.h.Launcher.L, catalog.Options{CheckSchedule: schedule.Check})
	e.h.Catalog.Replace(next)
	e.expect("connector gone", id, health.ConnectorMissing, true, `connector "demo" is not in the catalog`)

	e.ok(http.StatusOK, "POST", "/v1/connections/"+id+"/revoke", nil, nil)
	e.expect("connection revoked", id, health.Revoked, false, "revoked")

	e.noCanary()
}

// TestAttentionList: only connections whose health needs a person are
// listed, oldest since first, by the API and the CLI (text and JSON);
// the monitor logs the summary and a change; no output holds the canary.
func TestAttentionList(t *testing.T) {
	e := newHealthEnv(t)
	// Oldest: no credential at all (since its creation).
	needs := e.createDemo(map[string]any{"records": 1}, farSchedule)
	e.h.Clock.Advance(time.Hour)
	healthy := e.createDemo(map[string]any{"records": 1}, farSchedule)
	e.setToken(healthy.ID, healthCanary)
	if r := e.run(healthy.ID); r.Status != "succeeded" {
		t.Fatalf("run: %+v", r)
	}
	paused := e.createDemo(map[string]any{"records": 1}, farSchedule)
	e.ok(http.StatusOK, "POST", "/v1/connections/"+paused.ID+"/pause", nil, nil)
	e.h.Clock.Advance(time.Hour)
	// Needs a credential since its creation, an hour after the first.
	middle := e.createDemo(map[string]any{"records": 1}, farSchedule)
	// Created before middle, but its credential is revoked later: since
	// is the revocation.
	revoked := e.createDemo(map[string]any{"records": 1}, farSchedule)
	e.setToken(revoked.ID, healthCanary)
	e.h.Clock.Advance(time.Hour)
	e.ok(http.StatusOK, "POST", "/v1/connections/"+revoked.ID+"/credential/revoke", nil, nil)
	e.h.Clock.Advance(time.Hour)

	if _, err := e.mon.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var att apitypes.List[apitypes.AttentionItem]
	r := e.ok(http.StatusOK, "GET", "/v1/attention", nil, &att)
	e.seen = append(e.seen, string(r.Body))
	var order []string
	for _, it := range att.Items {
		order = append(order, it.ConnectionID+"="+it.Verdict)
		if it.Reason == "" || it.Action == "" || it.Since == "" || it.ConnectorKey != "demo" {
			t.Errorf("incomplete item %+v", it)
		}
	}
	want := []string{needs.ID + "=needs_credential", middle.ID + "=needs_credential", revoked.ID + "=credential_unavailable"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("attention order:\n got %v\nwant %v", order, want)
	}
	if att.Next != "" {
		t.Errorf("next = %q", att.Next)
	}

	// The CLI prints one JSON array, as every list command does.
	var fromCLI []apitypes.AttentionItem
	out := e.cli("attention", "-o", "json")
	if err := json.Unmarshal([]byte(out), &fromCLI); err != nil {
		t.Fatalf("attention -o json is not an array: %v\n%s", err, out)
	}
	if len(fromCLI) != len(att.Items) || fromCLI[0] != att.Items[0] {
		t.Errorf("CLI JSON %+v != API %+v", fromCLI, att.Items)
	}
	text := e.cli("attention")
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "CONNECTION") || !strings.HasPrefix(lines[1], needs.ID) ||
		!strings.HasPrefix(lines[3], revoked.ID) {
		t.Errorf("connhost attention:\n%s", text)
	}
	for _, id := range []string{healthy.ID, paused.ID} {
		if strings.Contains(text, id) {
			t.Errorf("%s is listed but needs no person:\n%s", id, text)
		}
	}
	line := "attention: 3 connections need a person: credential_unavailable=1 needs_credential=2"
	if !strings.Contains(e.logs.String(), line) {
		t.Errorf("log lacks %q:\n%s", line, e.logs.String())
	}

	// A capture takes one off the list; the monitor says so.
	e.setToken(needs.ID, healthCanary)
	if _, err := e.mon.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if line := "attention: 2 connections need a person: credential_unavailable=1 needs_credential=1"; !strings.Contains(e.logs.String(), line) {
		t.Errorf("log lacks %q:\n%s", line, e.logs.String())
	}
	e.noCanary()
}
