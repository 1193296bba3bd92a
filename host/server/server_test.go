package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/host/store"
	"github.com/connhost/connhost/host/store/sqlite"
	"github.com/connhost/connhost/keysets"
	adminv1 "github.com/connhost/connhost/proto/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestFirstStartCreatesPrivateStateAndRestartReusesIt: the first start
// creates the data dir 0700 with the store, the keyset and the operator
// token 0600 each, logs the dev-mode warning and one enrollment line; a
// second start reuses all of it (same token, same keyset, no second
// connector registration) and recovers nothing.
func TestFirstStartCreatesPrivateStateAndRestartReusesIt(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	r := start(t, cfg)
	for path, want := range map[string]os.FileMode{
		cfg.DataDir: 0o700,
		filepath.Join(cfg.DataDir, server.KeysetFile): 0o600,
		filepath.Join(cfg.DataDir, server.TokenFile):  0o600,
		filepath.Join(cfg.DataDir, sqlite.FileName):   0o600,
	} {
		if got := fileMode(t, path); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(r.token) {
		t.Errorf("token is not 32 random bytes in hex (%d chars)", len(r.token))
	}
	var h struct{ Status string }
	r.ok(http.StatusOK, "GET", "/readyz", nil, &h)
	var ks1 apitypes.KeysetInfo
	r.ok(http.StatusOK, "GET", "/v1/keyset", nil, &ks1)
	if ks1.KEK != "cleartext" || ks1.Encrypted {
		t.Errorf("dev-mode keyset %+v", ks1)
	}
	c := createDemo(r, map[string]any{"records": 3})

	// A second host on the same data dir is refused before it touches
	// anything (it would otherwise reclaim the first one's leases).
	second := cfg
	second.LogOutput = &hosttest.SyncBuffer{}
	second.OnReady = func(string) { t.Error("a second host listened on the same data dir") }
	if err := server.Run(context.Background(), second); !errors.Is(err, server.ErrDataDirInUse) {
		t.Errorf("second host on the data dir: %v", err)
	}
	r.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, nil)

	if err := r.shutdown(); err != nil {
		t.Fatalf("first shutdown: %v", err)
	}
	logs := r.logs.String()
	for _, want := range []string{"INSECURE DEV MODE", "enrollment done: connections=0", "operator token ready", "connector registered"} {
		if !strings.Contains(logs, want) {
			t.Errorf("first start log lacks %q", want)
		}
	}
	if strings.Contains(logs, r.token) {
		t.Error("the operator token was logged")
	}

	r2 := start(t, cfg)
	if r2.token != r.token {
		t.Error("the token changed across restarts")
	}
	var ks2 apitypes.KeysetInfo
	r2.ok(http.StatusOK, "GET", "/v1/keyset", nil, &ks2)
	if ks2.PrimaryKeyID != ks1.PrimaryKeyID {
		t.Errorf("keyset changed across restarts: %d then %d", ks1.PrimaryKeyID, ks2.PrimaryKeyID)
	}
	var got apitypes.Connection
	r2.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &got)
	var audit apitypes.List[apitypes.AuditEvent]
	r2.ok(http.StatusOK, "GET", "/v1/audit?target_kind=connector", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].Operation != "connector.register" || audit.Items[0].TargetID != "demo" {
		t.Errorf("connector audit after a restart with the same binary: %+v", audit.Items)
	}
	if err := r2.shutdown(); err != nil {
		t.Fatal(err)
	}
	logs = r2.logs.String()
	if !strings.Contains(logs, "enrollment done: connections=1 skipped_env=1") || !strings.Contains(logs, "INSECURE DEV MODE") {
		t.Errorf("second start log lacks the enrollment line or the dev-mode warning:\n%s", logs)
	}
	if strings.Count(logs, "enrollment done: connections=") != 1 {
		t.Error("more than one enrollment summary line")
	}
}

func createDemo(r *running, config map[string]any) apitypes.Connection {
	r.t.Helper()
	var c apitypes.Connection
	r.ok(http.StatusCreated, "POST", "/v1/connections", apitypes.ConnectionCreateRequest{ConnectorKey: "demo", Label: "demo", Config: config}, &c)
	return c
}

// TestServeEndToEnd drives a real host over its one listener: HTTP and
// gRPC triggers of the demo plugin, a followed run, metrics, keyset
// rotation and rewrap — and a canary credential value that never shows
// up in any response, in the log, or in any byte of the data dir.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-e2e-4b7d2e90c1"
	cfg := baseConfig(t)
	r := start(t, cfg)
	var bodies [][]byte
	keep := func(resp response) response { bodies = append(bodies, resp.Body); return resp }

	c := createDemo(r, map[string]any{"records": 20, "echo_env": []string{"DEMO_TOKEN"}})
	keep(r.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": canary}}, nil))

	// HTTP trigger, followed to its end.
	var run apitypes.Run
	keep(r.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run))
	events := r.follow(run.ID)
	if len(events) == 0 || events[len(events)-1].Kind != "end" || events[len(events)-1].Status != "succeeded" || events[len(events)-1].Records != 21 {
		t.Fatalf("followed events %+v", events)
	}

	// gRPC on the same listener, same token.
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := adminv1.NewAdminServiceClient(conn)
	if _, err := admin.TriggerRun(context.Background(), &adminv1.TriggerRunRequest{ConnectionId: c.ID}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+r.token)
	tr, err := admin.TriggerRun(ctx, &adminv1.TriggerRunRequest{ConnectionId: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := admin.WatchRun(ctx, &adminv1.WatchRunRequest{RunId: tr.GetRun().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var end *adminv1.WatchRunResponse
	for {
		m, err := watch.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		end = m
	}
	if end.GetKind() != "end" || end.GetRun().GetStatus() != "succeeded" {
		t.Fatalf("gRPC watch end %v", end)
	}
	got, err := admin.GetRun(ctx, &adminv1.GetRunRequest{RunId: tr.GetRun().GetId()})
	if err != nil || got.GetRun().GetTrigger() != "manual" || got.GetRun().GetStatus() != "succeeded" {
		t.Fatalf("gRPC get %v %v", got, err)
	}

	// Metrics after the runs.
	m := keep(r.ok(http.StatusOK, "GET", "/metrics", nil, nil))
	for _, want := range []string{
		`connhost_runs_total{status="succeeded",trigger="manual"} 2`,
		`connhost_records_ingested_total{connector="demo"} 22`,
		`connhost_runs_active 0`,
		`connhost_run_duration_seconds_count{status="succeeded",trigger="manual"} 2`,
		`connhost_launch_duration_seconds_count{connector="demo"} `, // boot Describe, the runs, any Check
		`connhost_grpc_requests_total{code="OK",method="/connhost.admin.v1.AdminService/GetRun"} 1`,
	} {
		if !bytes.Contains(m.Body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if resp := r.call("GET", "/metrics", nil); resp.Status != http.StatusOK {
		t.Fatal(resp)
	}
	if resp, err := http.Get("http://" + r.addr + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("metrics without token: %v %v", resp, err)
	}

	// Rotate the keyset, rewrap, and run again under the new key.
	var before, after apitypes.KeysetInfo
	keep(r.ok(http.StatusOK, "GET", "/v1/keyset", nil, &before))
	keep(r.ok(http.StatusOK, "POST", "/v1/keyset/rotate", nil, &after))
	if after.PrimaryKeyID == before.PrimaryKeyID || len(after.Keys) != 2 {
		t.Fatalf("rotated keyset %+v (was %+v)", after, before)
	}
	var rep apitypes.RewrapReport
	keep(r.ok(http.StatusOK, "POST", "/v1/keyset/rewrap", nil, &rep))
	if rep.PrimaryKeyID != after.PrimaryKeyID || rep.Rewrapped != 1 || len(rep.Failed) != 0 || len(rep.Quarantined) != 0 {
		t.Fatalf("rewrap %+v", rep)
	}
	var cred apitypes.Credential
	keep(r.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID+"/credential", nil, &cred))
	if cred.KeyID != after.PrimaryKeyID {
		t.Errorf("credential under key %d, want the new primary %d", cred.KeyID, after.PrimaryKeyID)
	}
	keep(r.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run))
	if fin := r.waitRun(run.ID); fin.Status != "succeeded" {
		t.Fatalf("run after rotation %+v", fin)
	}
	var audit apitypes.List[apitypes.AuditEvent]
	keep(r.ok(http.StatusOK, "GET", "/v1/audit?target_kind=keyset", nil, &audit))
	var ops []string
	for _, ev := range audit.Items {
		ops = append(ops, ev.Operation)
	}
	if strings.Join(ops, ",") != "keyset.rewrap,keyset.rotate" {
		t.Errorf("keyset audit %v", ops)
	}
	for _, p := range []string{"/v1/connections", "/v1/connections/" + c.ID + "/records?limit=1000", "/v1/runs",
		"/v1/audit?limit=1000", "/v1/enrollment", "/v1/connectors", "/v1/runs/" + run.ID} {
		keep(r.ok(http.StatusOK, "GET", p, nil, nil))
	}

	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("a response holds the canary: %.200s", b)
		}
	}
	if strings.Contains(r.logs.String(), canary) {
		t.Error("the log holds the canary")
	}
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Errorf("%s holds the canary in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestShutdownEndsRunsKillsChildrenReleasesLeases (not parallel: it
// counts the test process's children): cancelling Run's context while a
// run streams ends the run cancelled with host_shutdown — its follower
// receives that end — kills the plugin child and releases the lease, and
// Run returns nil.
func TestShutdownEndsRunsKillsChildrenReleasesLeases(t *testing.T) {
	cfg := baseConfig(t)
	r := start(t, cfg)
	c := createDemo(r, map[string]any{"records": 100000, "record_delay_ms": 20})
	r.ok(http.StatusOK, "PUT", "/v1/connections/"+c.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": "tok-shutdown"}}, nil)
	before := children()
	var run apitypes.Run
	r.ok(http.StatusAccepted, "POST", "/v1/connections/"+c.ID+"/runs", nil, &run)

	// Follow the run; the first progress event means the child is up
	// and streaming.
	streaming := make(chan struct{})
	followed := make(chan []apitypes.RunEvent, 1)
	go func() { followed <- r.followUntil(run.ID, func(ev apitypes.RunEvent) { once(streaming, ev) }) }()
	select {
	case <-streaming:
	case <-time.After(30 * time.Second):
		t.Fatal("the run never reported progress")
	}
	var plugin []int
	for pid, live := range children() {
		if live && !before[pid] {
			plugin = append(plugin, pid)
		}
	}
	if len(plugin) == 0 {
		t.Fatal("no plugin child while the run streams")
	}

	if err := r.shutdown(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, r.logs)
	}

	for _, pid := range plugin {
		if live, ok := children()[pid]; ok {
			t.Errorf("plugin pid %d survived the shutdown (live %v)", pid, live)
		}
	}
	select {
	case evs := <-followed:
		if len(evs) == 0 || evs[len(evs)-1].Kind != "end" || evs[len(evs)-1].FailureCode != "host_shutdown" {
			t.Errorf("follower's last events %+v", evs[max(0, len(evs)-2):])
		}
	case <-time.After(10 * time.Second):
		t.Error("the follower's stream did not end with the shutdown")
	}

	st, err := sqlite.Open(context.Background(), sqlite.Config{DataDir: cfg.DataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leases, err := st.ListLeases(context.Background())
	if err != nil || len(leases) != 0 {
		t.Errorf("leases after shutdown: %+v %v", leases, err)
	}
	fin, err := st.GetRun(context.Background(), run.ID)
	if err != nil || fin.Status != store.RunCancelled || fin.FailureCode != "host_shutdown" {
		t.Errorf("run after shutdown: %+v %v", fin, err)
	}
}

// TestConnectorReregistrationIsAudited: a plugin binary that changed
// between two starts is re-registered with an audit event naming what
// changed.
func TestConnectorReregistrationIsAudited(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	r := start(t, cfg)
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}
	// Appended bytes change the checksum; the ELF still runs.
	f, err := os.OpenFile(filepath.Join(cfg.PluginDir, "demo"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("rebuilt")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	var audit apitypes.List[apitypes.AuditEvent]
	r.ok(http.StatusOK, "GET", "/v1/audit?operation=connector.reregister", nil, &audit)
	if len(audit.Items) != 1 || audit.Items[0].TargetID != "demo" || audit.Items[0].Detail["changed"] != "sha256" ||
		audit.Items[0].Detail["previous_sha256"] == audit.Items[0].Detail["sha256"] {
		t.Fatalf("reregister audit %+v", audit.Items)
	}
	var conn apitypes.Connector
	r.ok(http.StatusOK, "GET", "/v1/connectors/demo", nil, &conn)
	if conn.SHA256 != audit.Items[0].Detail["sha256"] {
		t.Errorf("catalog pins %s, audit says %s", conn.SHA256, audit.Items[0].Detail["sha256"])
	}
}

// TestStartRefusesAWrongKEK: a keyset made under one KEK file does not
// start under another; Run fails before listening.
func TestStartRefusesAWrongKEK(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	dir := t.TempDir()
	cfg.KEKFile = filepath.Join(dir, "kek-a")
	if err := keysets.WriteKEKFile(cfg.KEKFile, keysets.GenerateKEK()); err != nil {
		t.Fatal(err)
	}
	if _, err := server.InitKeyset(context.Background(), cfg.DataDir, keysets.KEKFromFile(cfg.KEKFile), nil); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	var info apitypes.KeysetInfo
	r.ok(http.StatusOK, "GET", "/v1/keyset", nil, &info)
	if !info.Encrypted || info.KEK != "file" {
		t.Errorf("keyset %+v", info)
	}
	if err := r.shutdown(); err != nil {
		t.Fatal(err)
	}

	cfg.KEKFile = filepath.Join(dir, "kek-b")
	if err := keysets.WriteKEKFile(cfg.KEKFile, keysets.GenerateKEK()); err != nil {
		t.Fatal(err)
	}
	cfg.OnReady = func(string) { t.Error("listened with a wrong KEK") }
	cfg.LogOutput = &hosttest.SyncBuffer{}
	err := server.Run(context.Background(), cfg)
	if !errors.Is(err, keysets.ErrWrongKEK) {
		t.Fatalf("Run with a wrong KEK: %v", err)
	}
}
