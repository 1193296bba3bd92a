package server_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// rebuild replaces path with a copy of itself plus a few bytes (a new
// checksum, the same program), the way a build does: a new file renamed
// over the old one.
func rebuild(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, append(b, "rebuilt"...), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func connectorKeys(r *running) []string {
	r.t.Helper()
	var l apitypes.ConnectorList
	r.ok(http.StatusOK, "GET", "/v1/connectors", nil, &l)
	var keys []string
	for _, c := range l.Items {
		keys = append(keys, c.ConnectorKey)
	}
	return keys
}

// A rescan (the API's, and SIGHUP's) registers what changed in the plugin
// dir — audited as at boot — and lists what it rejected, while a run in
// flight keeps the binary it started with and ends normally. Not
// parallel: SIGHUP reaches every host of the test process.
func TestRescanRegistersChangesAndLeavesRunsAlone(t *testing.T) {
	cfg := baseConfig(t)
	bad := testManifest("Bad Key")
	plantManifested(t, cfg.PluginDir, "bad", bad)
	r := start(t, cfg)

	// The rejected file is listed with ?all=true, with file, field, reason.
	var all apitypes.ConnectorList
	r.ok(http.StatusOK, "GET", "/v1/connectors?all=true", nil, &all)
	if len(all.Items) != 1 || len(all.Rejected) != 1 {
		t.Fatalf("connectors?all=true = %+v", all)
	}
	if rej := all.Rejected[0]; rej.File != filepath.Join(cfg.PluginDir, "bad") || rej.Field != "connector_key" || rej.Reason == "" {
		t.Errorf("rejected %+v, want the file, field connector_key and a reason", rej)
	}
	if resp := r.call("GET", "/v1/connectors", nil); strings.Contains(string(resp.Body), `"rejected":`) {
		t.Errorf("without all=true the list names rejected files: %s", resp.Body)
	}

	// A run streams from the demo binary as it is now.
	c := createDemo(r, map[string]any{"records": 40, "record_delay_ms": 50})
	r.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "tok-rescan"}}, nil)
	var before apitypes.Connector
	r.ok(http.StatusOK, "GET", "/v1/connectors/demo", nil, &before)
	var run apitypes.Run
	r.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)
	streaming := make(chan struct{})
	followed := make(chan []apitypes.RunEvent, 1)
	go func() { followed <- r.followUntil(run.ID, func(ev apitypes.RunEvent) { once(streaming, ev) }) }()
	select {
	case <-streaming:
	case <-time.After(30 * time.Second):
		t.Fatal("the run never reported progress")
	}

	// Mid-run: demo rebuilt, a connector added, the bad file fixed.
	rebuild(t, filepath.Join(cfg.PluginDir, "demo"))
	plantManifested(t, cfg.PluginDir, "extra", testManifest("extra"))
	plantManifested(t, cfg.PluginDir, "bad", testManifest("fixed"))
	var rep apitypes.RescanReport
	r.ok(http.StatusOK, "POST", "/v1/connectors/rescan", nil, &rep)
	if !slices.Equal(rep.Added, []string{"extra", "fixed"}) || !slices.Equal(rep.Reregistered, []string{"demo"}) ||
		len(rep.Removed) != 0 || len(rep.Rejected) != 0 || rep.Connectors != 3 || rep.PluginDir != cfg.PluginDir {
		t.Errorf("rescan report %+v", rep)
	}
	var audit apitypes.List[apitypes.AuditEvent]
	r.ok(http.StatusOK, "GET", "/v1/audit?operation=connector.reregister", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].TargetID != "demo" || audit.Items[0].Actor != "operator" ||
		audit.Items[0].Detail["previous_sha256"] != before.SHA256 {
		t.Errorf("reregister audit %+v", audit.Items)
	}
	r.ok(http.StatusOK, "GET", "/v1/audit?operation=connector.register&target=extra", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != "operator" {
		t.Errorf("register audit of extra %+v", audit.Items)
	}

	// The run in flight kept its binary and ended as it would have.
	select {
	case evs := <-followed:
		if last := evs[len(evs)-1]; last.Kind != "end" || last.Status != "succeeded" {
			t.Errorf("the run in flight ended %+v", last)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the run in flight did not end")
	}
	if fin := r.waitRun(run.ID); fin.Status != "succeeded" || fin.Records != 40 {
		t.Errorf("the run in flight: %+v", fin)
	}
	// The next run uses the rebuilt binary.
	var after apitypes.Connector
	r.ok(http.StatusOK, "GET", "/v1/connectors/demo", nil, &after)
	if after.SHA256 == before.SHA256 {
		t.Error("the catalog still pins the old demo binary")
	}
	r.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)
	if fin := r.waitRun(run.ID); fin.Status != "succeeded" {
		t.Errorf("a run after the rescan: %+v", fin)
	}

	// SIGHUP rescans too (and does not kill the host).
	plantManifested(t, cfg.PluginDir, "late", testManifest("late"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !slices.Contains(connectorKeys(r), "late") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not rescan:\n%s", r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logs := r.logs.String(); !strings.Contains(logs, "SIGHUP received: rescanning the plugin dir") {
		t.Errorf("no log line for the SIGHUP")
	}
	r.ok(http.StatusOK, "GET", "/v1/audit?operation=connector.register&target=late", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Actor != "host" {
		t.Errorf("register audit of late %+v", audit.Items)
	}

	// A relayed plugin line names the run once (the host's logger and
	// the SDK both tag it with run_id).
	relayed := 0
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if strings.Count(line, "run_id=") > 1 {
			t.Errorf("a log line repeats run_id: %s", line)
		}
		if strings.Contains(line, "demo run") && strings.Contains(line, "run_id=") {
			relayed++
		}
	}
	if relayed == 0 {
		t.Error("no relayed plugin line names its run")
	}

	// A plugin dir gone refuses the rescan and keeps the catalog.
	moved := cfg.PluginDir + ".moved"
	if err := os.Rename(cfg.PluginDir, moved); err != nil {
		t.Fatal(err)
	}
	resp := r.call("POST", "/v1/connectors/rescan", nil)
	if resp.Status != http.StatusConflict || !strings.Contains(string(resp.Body), "plugin_dir_unusable") ||
		!strings.Contains(string(resp.Body), cfg.PluginDir) {
		t.Errorf("rescan of a missing plugin dir: %s", resp)
	}
	if keys := connectorKeys(r); len(keys) != 4 {
		t.Errorf("the refused rescan changed the catalog: %v", keys)
	}
	if err := os.Rename(moved, cfg.PluginDir); err != nil {
		t.Fatal(err)
	}
}

// A connector whose binary leaves the plugin dir and comes back unchanged
// registers nothing new (the store kept its registration), yet its
// connections are enrolled again by the rescan that finds it: enrollment
// follows the catalog.
func TestRescanReenrollsAConnectorPutBack(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	r := start(t, cfg)
	c := createDemo(r, nil)
	r.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "tok-put-back"}}, nil)
	outcome := func() string {
		var got apitypes.Connection
		r.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &got)
		if got.Enrollment == nil {
			return ""
		}
		return got.Enrollment.Outcome
	}
	demo := filepath.Join(cfg.PluginDir, "demo")
	aside := filepath.Join(t.TempDir(), "demo")
	steps := []struct {
		name   string
		move   func() error
		want   string
		report [3][]string // added, reregistered, removed
	}{
		{"enrolled at first", func() error { return nil }, "enrolled", [3][]string{}},
		{"binary taken away", func() error { return os.Rename(demo, aside) }, "skipped_unknown_connector", [3][]string{2: {"demo"}}},
		{"binary put back unchanged", func() error { return os.Rename(aside, demo) }, "enrolled", [3][]string{0: {"demo"}}},
	}
	for _, s := range steps {
		if err := s.move(); err != nil {
			t.Fatal(err)
		}
		var rep apitypes.RescanReport
		r.ok(http.StatusOK, "POST", "/v1/connectors/rescan", nil, &rep)
		if got := outcome(); got != s.want {
			t.Fatalf("%s: enrollment %q, want %q\n%s", s.name, got, s.want, r.logs)
		}
		if diff := cmp.Diff(s.report, [3][]string{rep.Added, rep.Reregistered, rep.Removed}, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: report added/reregistered/removed (-want +got):\n%s", s.name, diff)
		}
	}
	// Each rescan is audited with what it found.
	var audit apitypes.List[apitypes.AuditEvent]
	r.ok(http.StatusOK, "GET", "/v1/audit?operation=connector.rescan", nil, &audit)
	var removed []string
	for _, ev := range audit.Items {
		removed = append(removed, ev.Detail["removed"])
	}
	slices.Sort(removed)
	if diff := cmp.Diff([]string{"", "", "demo"}, removed); diff != "" {
		t.Errorf("rescan audit rows, removed (-want +got):\n%s", diff)
	}
}

// A catalogued binary changed on disk under a running host: a touch (the
// same bytes) still runs; a rebuilt binary fails every run with
// plugin_checksum_mismatch, is audited once (plugin.changed, with the
// path and both sums), and runs again once a rescan pins it.
func TestChangedBinaryIsRefusedAuditedOnceAndRescanned(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	r := start(t, cfg)
	demo := filepath.Join(cfg.PluginDir, "demo")
	c := createDemo(r, map[string]any{"records": 1})
	r.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "tok-changed"}}, nil)
	runOnce := func() apitypes.Run {
		t.Helper()
		var run apitypes.Run
		r.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)
		return r.waitRun(run.ID)
	}
	var before apitypes.Connector
	r.ok(http.StatusOK, "GET", "/v1/connectors/demo", nil, &before)

	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(demo, future, future); err != nil {
		t.Fatal(err)
	}
	if fin := runOnce(); fin.Status != "succeeded" {
		t.Fatalf("a run of a touched binary: %+v", fin)
	}

	rebuild(t, demo)
	b, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	found := fmt.Sprintf("%x", sha256.Sum256(b))
	for range 2 {
		if fin := runOnce(); fin.Status != "failed" || fin.FailureCode != "plugin_checksum_mismatch" ||
			!strings.Contains(fin.FailureMessage, demo) || !strings.Contains(fin.FailureMessage, found) {
			t.Fatalf("a run of the changed binary: %+v, want plugin_checksum_mismatch naming %s and %s", fin, demo, found)
		}
	}
	var audit apitypes.List[apitypes.AuditEvent]
	r.ok(http.StatusOK, "GET", "/v1/audit?operation=plugin.changed", nil, &audit)
	if len(audit.Items) != 1 {
		t.Fatalf("plugin.changed audit %+v, want one event", audit.Items)
	}
	want := map[string]string{"path": demo, "pinned_sha256": before.SHA256, "found_sha256": found}
	if ev := audit.Items[0]; ev.TargetID != "demo" || ev.Outcome != "refused" || !cmp.Equal(ev.Detail, want) {
		t.Errorf("plugin.changed audit %+v, want target demo, refused, detail %v", ev, want)
	}

	var rep apitypes.RescanReport
	r.ok(http.StatusOK, "POST", "/v1/connectors/rescan", nil, &rep)
	if !slices.Equal(rep.Reregistered, []string{"demo"}) {
		t.Errorf("rescan report %+v, want demo re-registered", rep)
	}
	if fin := runOnce(); fin.Status != "succeeded" {
		t.Errorf("a run after the rescan: %+v", fin)
	}
}
