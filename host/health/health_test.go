package health_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/hashicorp/go-hclog"
)

var (
	t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
	t3 = t0.Add(3 * time.Hour)
)

func conn(mut ...func(*store.Connection)) store.Connection {
	c := store.Connection{ID: "conn_1", ConnectorKey: "demo", State: store.ConnectionActive, CreatedAt: t0, UpdatedAt: t0}
	for _, m := range mut {
		m(&c)
	}
	return c
}

func cred(state store.CredentialState, mut ...func(*store.CredentialMeta)) *store.CredentialMeta {
	m := &store.CredentialMeta{ConnectionID: "conn_1", State: state, Names: []string{"DEMO_TOKEN", "DEMO_USER"}, KeyID: 7, CapturedAt: t0, UpdatedAt: t0}
	switch state {
	case store.CredentialRevoked:
		m.RevokedAt = t1
	case store.CredentialDeleted:
		m.DeletedAt = t1
	case store.CredentialQuarantined:
		m.QuarantinedAt = t1
	}
	for _, f := range mut {
		f(m)
	}
	return m
}

func failed(code failure.Code, n int) func(*store.Connection) {
	return func(c *store.Connection) {
		c.Streak = store.Streak{LastRunStatus: store.RunFailed, LastRunAt: t2, FailCode: code, FailCount: n, FailSince: t1}
	}
}

func held(code failure.Code) func(*store.Connection) {
	return func(c *store.Connection) {
		c.Hold = store.Hold{Code: code, Message: "held: " + string(code), At: t2, RunID: "run_9"}
	}
}

// facts are a demo connection's: connector known, DEMO_TOKEN required,
// an active credential whose key is held, nothing from the host env.
func facts(c store.Connection, cr *store.CredentialMeta) health.Facts {
	return health.Facts{Connection: c, ConnectorKnown: true, AuthRequired: []string{"DEMO_TOKEN"}, Credential: cr,
		KeyHeld: true, HostEnvMissing: []string{"DEMO_TOKEN"}}
}

// TestDerive: every verdict, and which wins when several apply.
func TestDerive(t *testing.T) {
	active := cred(store.CredentialActive)
	for _, tc := range []struct {
		name        string
		f           health.Facts
		verdict     health.Verdict
		needsPerson bool
		since       time.Time
		reason      string // a substring
		action      string // a substring
	}{
		{"never run", facts(conn(), active), health.NeverRun, false, t0, "not run yet", ""},
		{"healthy", facts(conn(func(c *store.Connection) {
			c.Streak = store.Streak{LastRunStatus: store.RunSucceeded, LastRunAt: t2}
		}), active), health.Healthy, false, t2, "succeeded", ""},
		{"failing once: no person yet", facts(conn(failed(failure.ConnectorFailed, 1)), active), health.Failing, false, t1,
			"1 consecutive failure of connector_failed since 2026-03-01T11:00:00Z", "runs list --connection conn_1"},
		{"failing three times: a person", facts(conn(failed(failure.ConnectorFailed, health.AttentionAfter)), active), health.Failing, true, t1,
			"3 consecutive failures", ""},
		{"failing and backing off", facts(conn(failed(failure.ConnectorFailed, 4), func(c *store.Connection) { c.BackoffUntil = t3 }), active),
			health.Failing, true, t1, "backs off until 2026-03-01T13:00:00Z", ""},
		{"invalid config (streak)", facts(conn(failed(failure.InvalidConfig, 1)), active), health.InvalidConfig, true, t1, "rejected the config", "connection update conn_1"},
		{"invalid config (hold)", facts(conn(failed(failure.InvalidConfig, 1), held(failure.InvalidConfig)), active), health.InvalidConfig, true, t2, "held: invalid_config", ""},
		{"invalid config changed since: no person until the next run", facts(conn(failed(failure.InvalidConfig, 1), func(c *store.Connection) { c.UpdatedAt = t3 }), active),
			health.Failing, false, t1, "changed since", "connhost run conn_1"},
		{"credential rejected (validity)", facts(conn(), cred(store.CredentialActive, func(m *store.CredentialMeta) {
			m.Validity = &store.Validity{CheckedAt: t1, Valid: false, Message: "connector_failed: token rejected"}
		})), health.CredentialRejected, true, t1, "token rejected", "credential set conn_1"},
		{"credential rejected (streak)", facts(conn(failed(failure.CredentialRejected, 2)), active), health.CredentialRejected, true, t1, "rejected", "credential set conn_1"},
		{"credential rejected (hold)", facts(conn(failed(failure.CredentialRejected, 1), held(failure.CredentialRejected)), active), health.CredentialRejected, true, t2, "rejected", ""},
		{"credential rejected, captured since: no person until the next run", facts(conn(failed(failure.CredentialRejected, 2)),
			cred(store.CredentialActive, func(m *store.CredentialMeta) { m.CapturedAt = t3 })), health.Failing, false, t1, "changed since", ""},
		{"rejected beats invalid config", facts(conn(failed(failure.InvalidConfig, 1)), cred(store.CredentialActive, func(m *store.CredentialMeta) {
			m.Validity = &store.Validity{CheckedAt: t1, Valid: false}
		})), health.CredentialRejected, true, t1, "", ""},
		{"needs credential", facts(conn(), nil), health.NeedsCredential, true, t0, "lacks DEMO_TOKEN", "credential set conn_1"},
		{"needs credential since the hold", facts(conn(held(failure.CredentialsRequired)), nil), health.NeedsCredential, true, t2, "", ""},
		{"host env provides it", func() health.Facts { f := facts(conn(), nil); f.HostEnvMissing = nil; return f }(), health.NeverRun, false, t0, "", ""},
		{"no credential required", health.Facts{Connection: conn(), ConnectorKnown: true}, health.NeverRun, false, t0, "", ""},
		{"credential revoked", facts(conn(), cred(store.CredentialRevoked)), health.CredentialUnavailable, true, t1,
			"static_secret_credential_unavailable: stored credential revoked at 2026-03-01T11:00:00Z", "credential set conn_1"},
		{"credential deleted: the host env never stands in", func() health.Facts {
			f := facts(conn(), cred(store.CredentialDeleted))
			f.HostEnvMissing = nil
			return f
		}(), health.CredentialUnavailable, true, t1, "deleted", ""},
		{"credential quarantined", facts(conn(), cred(store.CredentialQuarantined)), health.CredentialUnavailable, true, t1, "quarantined", ""},
		{"key not held", func() health.Facts { f := facts(conn(), active); f.KeyHeld = false; return f }(), health.CredentialUnavailable, true, t0,
			"key id 7", "keyset that holds key 7"},
		{"stored credential lacks a required name", facts(conn(), cred(store.CredentialActive, func(m *store.CredentialMeta) {
			m.Names, m.UpdatedAt = []string{"OTHER"}, t1
		})), health.CredentialUnavailable, true, t1, "lacks required names DEMO_TOKEN", "credential set conn_1"},
		{"unavailable hold on an active credential", facts(conn(held(failure.StaticSecretUnavailable)), active), health.CredentialUnavailable, true, t2,
			"held: static_secret_credential_unavailable", ""},
		{"unavailable beats failing", facts(conn(failed(failure.ConnectorFailed, 5)), cred(store.CredentialRevoked)), health.CredentialUnavailable, true, t1, "", ""},
		{"connector missing", func() health.Facts {
			f := facts(conn(), cred(store.CredentialRevoked))
			f.ConnectorKnown, f.AuthRequired = false, nil
			return f
		}(), health.ConnectorMissing, true, t0, `connector "demo" is not in the catalog`, "connector rescan"},
		{"connector missing since the hold", health.Facts{Connection: conn(held(failure.ConnectorNotFound))}, health.ConnectorMissing, true, t2, "", ""},
		// Since is the best evidence of when the condition began (the
		// hold's At for its code, else the streak of its code, else the
		// latest run, else the creation) — never an unrelated update.
		{"connector missing, updated since, never ran: since its creation", health.Facts{Connection: conn(func(c *store.Connection) {
			c.UpdatedAt = t3
		})}, health.ConnectorMissing, true, t0, "", ""},
		{"connector missing after a run: since the run", health.Facts{Connection: conn(func(c *store.Connection) {
			c.Streak = store.Streak{LastRunStatus: store.RunSucceeded, LastRunAt: t2}
			c.UpdatedAt = t3
		})}, health.ConnectorMissing, true, t2, "", ""},
		{"connector missing since its streak", health.Facts{Connection: conn(failed(failure.ConnectorNotFound, 2), func(c *store.Connection) {
			c.UpdatedAt = t3
		})}, health.ConnectorMissing, true, t1, "", ""},
		{"connector missing, held for another code: since the run", health.Facts{Connection: conn(failed(failure.InvalidConfig, 1), func(c *store.Connection) {
			c.Hold = store.Hold{Code: failure.InvalidConfig, Message: "bad", At: t3}
		})}, health.ConnectorMissing, true, t2, "", ""},
		{"needs credential after a run: since the run", facts(conn(func(c *store.Connection) {
			c.Streak = store.Streak{LastRunStatus: store.RunSucceeded, LastRunAt: t2}
		}), nil), health.NeedsCredential, true, t2, "", ""},
		{"needs credential since its streak", facts(conn(failed(failure.CredentialsRequired, 2)), nil), health.NeedsCredential, true, t1, "", ""},
		{"needs credential, held for another code: since the run", facts(conn(failed(failure.ConnectorNotFound, 1), func(c *store.Connection) {
			c.Hold = store.Hold{Code: failure.ConnectorNotFound, At: t3}
		}), nil), health.NeedsCredential, true, t2, "", ""},
		{"key not held since its streak", func() health.Facts {
			f := facts(conn(failed(failure.StaticSecretUnavailable, 1)), active)
			f.KeyHeld = false
			return f
		}(), health.CredentialUnavailable, true, t1, "key id 7", ""},
		{"key not held after a run under it: since the run", func() health.Facts {
			f := facts(conn(func(c *store.Connection) { c.Streak = store.Streak{LastRunStatus: store.RunSucceeded, LastRunAt: t2} }), active)
			f.KeyHeld = false
			return f
		}(), health.CredentialUnavailable, true, t2, "key id 7", ""},
		// Host env credentials off: the reason and action never point at
		// the host env (see the check below the table).
		{"needs credential, host env credentials off", func() health.Facts {
			f := facts(conn(), nil)
			f.HostEnvOff = true
			return f
		}(), health.NeedsCredential, true, t0, "host env credentials are turned off", "capture one: `connhost credential set conn_1`"},
		// A person addressed a failure only a person can fix since the
		// latest run: the next run tells, nobody is asked for more.
		{"credential unavailable, captured since: no person until the next run", facts(conn(failed(failure.StaticSecretUnavailable, 3)),
			cred(store.CredentialActive, func(m *store.CredentialMeta) { m.CapturedAt = t3 })), health.Failing, false, t1, "changed since", "connhost run conn_1"},
		{"credential unavailable, rotated since: no person until the next run", facts(conn(failed(failure.StaticSecretUnavailable, 1)),
			cred(store.CredentialActive, func(m *store.CredentialMeta) { m.RotatedAt = t3 })), health.Failing, false, t1, "changed since", "connhost run conn_1"},
		{"credential unavailable, unchanged since: a person after 3", facts(conn(failed(failure.StaticSecretUnavailable, 3)), active),
			health.Failing, true, t1, "3 consecutive failures of static_secret_credential_unavailable", "runs list --connection conn_1"},
		{"credentials required, captured since: no person until the next run", facts(conn(failed(failure.CredentialsRequired, 3)),
			cred(store.CredentialActive, func(m *store.CredentialMeta) { m.CapturedAt = t3 })), health.Failing, false, t1, "changed since", "connhost run conn_1"},
		{"credentials required, the host env provides it since: no person until the next run", func() health.Facts {
			f := facts(conn(failed(failure.CredentialsRequired, 3)), nil)
			f.HostEnvMissing = nil
			return f
		}(), health.Failing, false, t1, "changed since", "connhost run conn_1"},
		{"connector back since: no person until the next run", facts(conn(failed(failure.ConnectorNotFound, 3)), active),
			health.Failing, false, t1, "changed since", "connhost run conn_1"},
		{"paused beats connector missing", health.Facts{Connection: conn(func(c *store.Connection) {
			c.State, c.UpdatedAt = store.ConnectionPaused, t3
		})}, health.Paused, false, t3, "paused", "connection resume conn_1"},
		{"paused beats a revoked credential", facts(conn(func(c *store.Connection) { c.State = store.ConnectionPaused }), cred(store.CredentialRevoked)),
			health.Paused, false, t0, "", ""},
		{"revoked beats everything", func() health.Facts {
			f := facts(conn(failed(failure.ConnectorFailed, 9), held(failure.InvalidConfig), func(c *store.Connection) {
				c.State, c.UpdatedAt = store.ConnectionRevoked, t3
			}), cred(store.CredentialRevoked))
			f.ConnectorKnown = false
			return f
		}(), health.Revoked, false, t3, "revoked", "connection delete conn_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := health.Derive(tc.f)
			if h.Verdict != tc.verdict || h.NeedsPerson != tc.needsPerson || !h.Since.Equal(tc.since) {
				t.Errorf("Derive = %s needs_person=%v since %s; want %s needs_person=%v since %s (%+v)",
					h.Verdict, h.NeedsPerson, h.Since, tc.verdict, tc.needsPerson, tc.since, h)
			}
			if !strings.Contains(h.Reason, tc.reason) || h.Reason == "" {
				t.Errorf("reason %q lacks %q", h.Reason, tc.reason)
			}
			if !strings.Contains(h.Action, tc.action) {
				t.Errorf("action %q lacks %q", h.Action, tc.action)
			}
			if h.NeedsPerson && h.Action == "" {
				t.Error("a verdict that needs a person names no action")
			}
			if tc.f.HostEnvOff && (strings.Contains(h.Reason+h.Action, "host environment") || strings.Contains(h.Reason+h.Action, "DEMO_TOKEN")) {
				t.Errorf("host env credentials are off, yet %q / %q point at the host environment", h.Reason, h.Action)
			}
		})
	}
}

// TestEveryVerdictReachable: the table above covers every verdict of
// health.Verdicts (a new verdict needs a case).
func TestEveryVerdictReachable(t *testing.T) {
	seen := map[health.Verdict]bool{
		health.NeverRun: true, health.Healthy: true, health.Failing: true, health.InvalidConfig: true,
		health.CredentialRejected: true, health.NeedsCredential: true, health.CredentialUnavailable: true,
		health.ConnectorMissing: true, health.Paused: true, health.Revoked: true,
	}
	for _, v := range health.Verdicts {
		if !seen[v] {
			t.Errorf("verdict %s has no TestDerive case", v)
		}
	}
	if len(seen) != len(health.Verdicts) {
		t.Errorf("health.Verdicts has %d verdicts, TestDerive covers %d", len(health.Verdicts), len(seen))
	}
}

// fakeStore serves connections and credential metadata, counting reads.
type fakeStore struct {
	mu      sync.Mutex
	conns   []store.Connection
	metas   map[string]store.CredentialMeta
	singles int
	batches int
	fail    error
}

func (f *fakeStore) GetCredentialMeta(_ context.Context, id string) (store.CredentialMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.singles++
	m, ok := f.metas[id]
	if !ok {
		return m, store.ErrCredentialNotFound
	}
	return m, nil
}

func (f *fakeStore) CredentialMetas(_ context.Context, ids []string) (map[string]store.CredentialMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches++
	out := map[string]store.CredentialMeta{}
	for _, id := range ids {
		if m, ok := f.metas[id]; ok {
			out[id] = m
		}
	}
	return out, nil
}

func (f *fakeStore) ListConnectionPage(_ context.Context, p store.ConnectionPageFilter) (store.ConnectionPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return store.ConnectionPage{}, f.fail
	}
	start := 0
	if p.Cursor != "" {
		fmt.Sscan(p.Cursor, &start)
	}
	end := min(start+2, len(f.conns)) // pages of 2: Scan must follow cursors
	page := store.ConnectionPage{Connections: append([]store.Connection(nil), f.conns[start:end]...)}
	if end < len(f.conns) {
		page.Next = fmt.Sprint(end)
	}
	return page, nil
}

type manifests map[string]manifest.Manifest

func (m manifests) Manifest(key string) (manifest.Manifest, bool) { v, ok := m[key]; return v, ok }

var demoManifests = manifests{
	"demo": {ConnectorKey: "demo", Auth: manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"DEMO_TOKEN", "DEMO_USER"}}},
	"open": {ConnectorKey: "open"},
}

// TestAssessor: the facts it gathers — catalog, credential metadata, key
// held, host env by presence (an empty value is absent; nothing counts
// when host env credentials are off) — and AssessAll matches Assess with
// one batched read.
func TestAssessor(t *testing.T) {
	st := &fakeStore{metas: map[string]store.CredentialMeta{
		"c_active": *cred(store.CredentialActive, func(m *store.CredentialMeta) { m.ConnectionID = "c_active" }),
		"c_key":    *cred(store.CredentialActive, func(m *store.CredentialMeta) { m.ConnectionID = "c_key"; m.KeyID = 99 }),
		"c_rev":    *cred(store.CredentialRevoked, func(m *store.CredentialMeta) { m.ConnectionID = "c_rev" }),
	}}
	mk := func(id, key string) store.Connection {
		return conn(func(c *store.Connection) { c.ID, c.ConnectorKey = id, key })
	}
	conns := []store.Connection{mk("c_active", "demo"), mk("c_key", "demo"), mk("c_rev", "demo"), mk("c_none", "demo"),
		mk("c_open", "open"), mk("c_gone", "gone")}
	env := map[string]string{"DEMO_TOKEN": "x", "DEMO_USER": ""}
	for _, tc := range []struct {
		name  string
		allow bool
		env   map[string]string
		want  []health.Verdict
	}{
		{"host env off", false, env, []health.Verdict{health.NeverRun, health.CredentialUnavailable, health.CredentialUnavailable,
			health.NeedsCredential, health.NeverRun, health.ConnectorMissing}},
		{"host env on, one name empty", true, env, []health.Verdict{health.NeverRun, health.CredentialUnavailable, health.CredentialUnavailable,
			health.NeedsCredential, health.NeverRun, health.ConnectorMissing}},
		{"host env on and complete", true, map[string]string{"DEMO_TOKEN": "x", "DEMO_USER": "y"}, []health.Verdict{health.NeverRun,
			health.CredentialUnavailable, health.CredentialUnavailable, health.NeverRun, health.NeverRun, health.ConnectorMissing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &health.Assessor{Manifests: demoManifests, Credentials: st, KeyHeld: func(id uint32) bool { return id == 7 },
				HostEnv: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }, AllowHostEnv: tc.allow}
			st.batches, st.singles = 0, 0
			all, err := a.AssessAll(context.Background(), conns)
			if err != nil {
				t.Fatal(err)
			}
			if st.batches != 1 || st.singles != 0 {
				t.Errorf("AssessAll read %d batches and %d singles, want 1 batch", st.batches, st.singles)
			}
			for i, c := range conns {
				one, err := a.Assess(context.Background(), c)
				if err != nil {
					t.Fatal(err)
				}
				if one != all[i] {
					t.Errorf("%s: Assess %+v != AssessAll %+v", c.ID, one, all[i])
				}
				if all[i].Verdict != tc.want[i] {
					t.Errorf("%s: %s, want %s (%s)", c.ID, all[i].Verdict, tc.want[i], all[i].Reason)
				}
				// With host env credentials off, DEMO_TOKEN set in the host
				// env is no reason to say the host env lacks it.
				if all[i].Verdict == health.NeedsCredential && !tc.allow &&
					(!strings.Contains(all[i].Reason, "host env credentials are turned off") || strings.Contains(all[i].Action, "host environment")) {
					t.Errorf("%s with host env credentials off: %q / %q", c.ID, all[i].Reason, all[i].Action)
				}
			}
		})
	}
	t.Run("no keyset loaded", func(t *testing.T) {
		a := &health.Assessor{Manifests: demoManifests, Credentials: st}
		h, err := a.Assess(context.Background(), conns[0])
		if err != nil || h.Verdict != health.CredentialUnavailable {
			t.Errorf("Assess = %+v, %v; want credential_unavailable", h, err)
		}
	})
}

// TestScanAndMonitor: Scan counts every verdict (zeros included) across
// pages, lists only connections that need a person, oldest since first;
// the monitor logs the summary at its first scan and again only when the
// list changes.
func TestScanAndMonitor(t *testing.T) {
	mk := func(id string, created time.Time, key string) store.Connection {
		return conn(func(c *store.Connection) { c.ID, c.ConnectorKey, c.CreatedAt, c.UpdatedAt = id, key, created, created })
	}
	st := &fakeStore{metas: map[string]store.CredentialMeta{
		"c_rev": *cred(store.CredentialRevoked, func(m *store.CredentialMeta) { m.ConnectionID = "c_rev"; m.RevokedAt = t3 }),
		"c_ok":  *cred(store.CredentialActive, func(m *store.CredentialMeta) { m.ConnectionID = "c_ok" }),
	}}
	st.conns = []store.Connection{mk("c_ok", t0, "demo"), mk("c_rev", t0, "demo"), mk("c_none", t2, "demo"), mk("c_open", t0, "open"),
		mk("c_gone", t1, "gone")}
	a := &health.Assessor{Manifests: demoManifests, Credentials: st, KeyHeld: func(uint32) bool { return true }}
	var logs strings.Builder
	var reports []health.Report
	m := health.NewMonitor(health.MonitorConfig{Store: st, Assessor: a,
		Logger:   hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}),
		OnReport: func(r health.Report) { reports = append(reports, r) }})
	rep, err := m.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connections != 5 || len(rep.Counts) != len(health.Verdicts) {
		t.Errorf("report: %d connections, %d verdicts counted", rep.Connections, len(rep.Counts))
	}
	want := map[health.Verdict]int{health.NeverRun: 2, health.CredentialUnavailable: 1, health.NeedsCredential: 1, health.ConnectorMissing: 1}
	for _, v := range health.Verdicts {
		if rep.Counts[v] != want[v] {
			t.Errorf("count %s = %d, want %d", v, rep.Counts[v], want[v])
		}
	}
	var order []string
	for _, it := range rep.Attention {
		order = append(order, it.Connection.ID+"="+string(it.Health.Verdict))
	}
	// Since: c_gone t1 (created), c_none t2 (created), c_rev t3 (revoked).
	if got, w := strings.Join(order, " "), "c_gone=connector_missing c_none=needs_credential c_rev=credential_unavailable"; got != w {
		t.Errorf("attention = %s, want %s", got, w)
	}
	line := "attention: 3 connections need a person: connector_missing=1 credential_unavailable=1 needs_credential=1"
	if strings.Count(logs.String(), line) != 1 {
		t.Errorf("log lacks %q once:\n%s", line, logs.String())
	}
	// Unchanged: no new line.
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "attention:"); n != 1 {
		t.Errorf("%d attention lines after an unchanged scan, want 1:\n%s", n, logs.String())
	}
	// Changed: one more line.
	st.mu.Lock()
	st.conns = st.conns[:2]
	st.mu.Unlock()
	if _, err := m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "attention: 1 connection needs a person: credential_unavailable=1") {
		t.Errorf("no line for the changed list:\n%s", logs.String())
	}
	if len(reports) != 3 {
		t.Errorf("%d reports, want 3", len(reports))
	}
	// Nothing needs a person.
	if got := health.Summary(nil); got != "attention: no connection needs a person" {
		t.Errorf("Summary(nil) = %q", got)
	}
	// A failed scan keeps the last report.
	st.mu.Lock()
	st.fail = errors.New("db down")
	st.mu.Unlock()
	if _, err := m.Refresh(context.Background()); err == nil {
		t.Error("Refresh over a failing store succeeded")
	}
	if last, ok := m.Last(); !ok || last.Connections != 2 {
		t.Errorf("Last = %d connections, %v; want the previous report", last.Connections, ok)
	}
}

// TestMonitorPokes: Run scans after a Poke (debounced) without polling.
func TestMonitorPokes(t *testing.T) {
	st := &fakeStore{metas: map[string]store.CredentialMeta{}}
	a := &health.Assessor{Manifests: demoManifests, Credentials: st}
	got := make(chan health.Report, 10)
	m := health.NewMonitor(health.MonitorConfig{Store: st, Assessor: a, Debounce: time.Millisecond, Every: time.Hour,
		OnReport: func(r health.Report) { got <- r }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if r := <-got; r.Connections != 0 {
		t.Fatalf("first scan saw %d connections", r.Connections)
	}
	st.mu.Lock()
	st.conns = []store.Connection{conn()}
	st.mu.Unlock()
	m.Poke()
	select {
	case r := <-got:
		if r.Connections != 1 || r.Counts[health.NeedsCredential] != 1 {
			t.Errorf("scan after the poke: %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no scan after a poke")
	}
}
