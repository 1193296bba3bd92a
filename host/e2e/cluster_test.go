package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	adminv1 "github.com/connhost/connhost/proto/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/apicall"
	"github.com/connhost/connhost/host/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// The cluster tests run real `connhost serve` processes on one PostgreSQL
// schema, each with its own port and data dir, one KEK file, one keyset
// and one operator token between them.

const (
	clusterTTL  = 6 * time.Second
	clusterSkew = 2 * time.Second
)

type cluster struct {
	t       *testing.T
	bin     binaries
	root    string
	store   string
	kekFile string
	keyset  string
	token   string
	marker  string
	hosts   []*clusterHost

	mu      sync.Mutex
	outputs []captured
}

type clusterHost struct {
	name   string
	dir    string
	offset time.Duration
	srv    *serverProc
	logs   []string // logs of earlier processes of this host
	ids    []string // the host id of each of its processes
}

func newCluster(t *testing.T, offsets ...time.Duration) *cluster {
	t.Helper()
	root := t.TempDir()
	c := &cluster{
		t:       t,
		bin:     build(t),
		root:    root,
		store:   pgtest.Schema(t),
		kekFile: filepath.Join(root, "shared", "kek"),
		keyset:  filepath.Join(root, "shared", "keyset.json"),
	}
	// The plugins' sockets live in TMPDIR: keep it short (a Unix socket
	// path holds at most 107 bytes; t.TempDir's carries the test name).
	marker, err := os.MkdirTemp("", "chc")
	if err != nil {
		t.Fatal(err)
	}
	c.marker = marker
	t.Cleanup(func() { _ = os.RemoveAll(marker) })
	if err := os.MkdirAll(filepath.Dir(c.kekFile), 0o700); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	if err := os.WriteFile(c.kekFile, []byte(base64.StdEncoding.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(c.bin.connhost, "keyset", "init", "--data-dir", filepath.Dir(c.keyset), "--kek-file", c.kekFile).CombinedOutput()
	if err != nil {
		t.Fatalf("keyset init: %v\n%s", err, out)
	}
	// The hosts' data dirs hold their plugins' sockets: keep them short
	// too.
	hostsRoot, err := os.MkdirTemp("", "chh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostsRoot) })
	for i, off := range offsets {
		c.hosts = append(c.hosts, &clusterHost{name: fmt.Sprintf("h%d", i+1), dir: filepath.Join(hostsRoot, fmt.Sprintf("h%d", i+1)), offset: off})
	}
	t.Cleanup(c.cleanup)
	return c
}

func (c *cluster) record(what, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.outputs = append(c.outputs, captured{what, text})
}

// start starts host h and waits until it serves.
func (c *cluster) start(h *clusterHost) {
	c.t.Helper()
	s := &serverProc{done: make(chan struct{})}
	s.cmd = exec.Command(c.bin.connhost, "serve",
		"--data-dir", h.dir, "--plugin-dir", c.bin.pluginDir, "--listen", "127.0.0.1:0",
		"--store", c.store, "--kek-file", c.kekFile, "--keyset-file", c.keyset,
		"--token-file", filepath.Join(filepath.Dir(c.keyset), "operator.token"),
		"--host-ttl", clusterTTL.String(), "--max-clock-skew", clusterSkew.String(),
		"--clock-offset", h.offset.String(), "--log-level", "debug")
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.marker, "TMPDIR=" + c.marker}
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	h.srv = s
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	deadline := time.After(readyTimeout)
	for {
		if m := readyRE.FindStringSubmatch(s.stdout.String()); m != nil {
			s.addr = m[1]
			break
		}
		select {
		case <-s.done:
			c.t.Fatalf("%s exited before ready: %v\n%s", h.name, s.err, tail(s.stderr.String(), 40))
		case <-deadline:
			c.t.Fatalf("%s not ready after %v\n%s", h.name, readyTimeout, tail(s.stderr.String(), 40))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if c.token == "" {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(c.keyset), "operator.token"))
		if err != nil {
			c.t.Fatal(err)
		}
		c.token = strings.TrimSpace(string(b))
	}
	h.ids = append(h.ids, c.hostID(h))
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(h *clusterHost) {
	c.t.Helper()
	_ = h.srv.cmd.Process.Kill()
	<-h.srv.done
	h.logs = append(h.logs, h.srv.stderr.String())
	c.record(h.name+" log (killed)", h.srv.stderr.String())
	h.srv = nil
}

// stop sends SIGTERM and requires a clean exit.
func (c *cluster) stop(h *clusterHost) {
	c.t.Helper()
	s := h.srv
	if s == nil {
		return
	}
	h.srv = nil
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		c.t.Errorf("%s did not stop within %v of SIGTERM", h.name, stopTimeout)
	}
	h.logs = append(h.logs, s.stderr.String())
	c.record(h.name+" log", s.stderr.String())
	c.record(h.name+" stdout", s.stdout.String())
	if s.err != nil {
		c.t.Errorf("%s exit after SIGTERM: %v\n%s", h.name, s.err, tail(s.stderr.String(), 30))
	}
}

func (c *cluster) cleanup() {
	for _, h := range c.hosts {
		if h.srv != nil {
			_ = h.srv.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-h.srv.done:
			case <-time.After(stopTimeout):
				_ = h.srv.cmd.Process.Kill()
				<-h.srv.done
			}
			if c.t.Failed() {
				c.t.Logf("%s log tail:\n%s", h.name, tail(h.srv.stderr.String(), 40))
			}
			h.srv = nil
		}
	}
	var left []string
	for range 50 {
		if left = leftovers(c.marker); len(left) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Errorf("processes left behind: %v", left)
}

// api is a caller of host h's API; every body it reads is captured.
func (c *cluster) api(h *clusterHost) apicall.Caller {
	return apicall.Caller{T: c.t, Base: h.srv.addr, Auth: "Bearer " + c.token}
}

// get decodes a GET on host h into v.
func (c *cluster) get(h *clusterHost, path string, v any) {
	c.t.Helper()
	r := c.api(h).OK(http.StatusOK, http.MethodGet, path, nil, nil)
	c.record("GET "+path+" on "+h.name, string(r.Body))
	if err := json.Unmarshal(r.Body, v); err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
}

// do sends a request and decodes the answer into v (when not nil).
func (c *cluster) do(h *clusterHost, want int, method, path string, body, v any) {
	c.t.Helper()
	r := c.api(h).OK(want, method, path, body, nil)
	c.record(method+" "+path+" on "+h.name, string(r.Body))
	if v != nil {
		if err := json.Unmarshal(r.Body, v); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// allRuns reads every run through host h's API.
func (c *cluster) allRuns(h *clusterHost) []apitypes.Run {
	c.t.Helper()
	var out []apitypes.Run
	cursor := ""
	for {
		var page apitypes.List[apitypes.Run]
		c.get(h, "/v1/runs?limit=1000&cursor="+url.QueryEscape(cursor), &page)
		out = append(out, page.Items...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
}

func (c *cluster) hostsList(h *clusterHost) []apitypes.Host {
	c.t.Helper()
	var l apitypes.HostList
	c.get(h, "/v1/hosts", &l)
	return l.Hosts
}

func (c *cluster) live(except *clusterHost) *clusterHost {
	for _, h := range c.hosts {
		if h != except && h.srv != nil {
			return h
		}
	}
	c.t.Fatal("no live host")
	return nil
}

// hostOf maps a host id to the cluster host listening at its address.
func (c *cluster) hostID(h *clusterHost) string {
	c.t.Helper()
	for _, row := range c.hostsList(h) {
		if row.Status == "live" && "http://"+row.Addr == h.srv.addr {
			return row.ID
		}
	}
	c.t.Fatalf("%s is not in its own hosts list", h.name)
	return ""
}

func (c *cluster) waitFor(d time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s; last: %s", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkCanary greps every captured output, every host's log and data
// dir, and every row of the shared database for the secret in any of its
// encodings, and for the operator token in logs and outputs.
func (c *cluster) checkCanary(canary string) {
	c.t.Helper()
	forms := map[string][]byte{
		"raw":       []byte(canary),
		"hex":       []byte(hex.EncodeToString([]byte(canary))),
		"base64":    []byte(base64.StdEncoding.EncodeToString([]byte(canary))),
		"base64url": []byte(base64.RawURLEncoding.EncodeToString([]byte(canary))),
	}
	c.mu.Lock()
	texts := slices.Clone(c.outputs)
	c.mu.Unlock()
	for _, h := range c.hosts {
		for i, l := range h.logs {
			texts = append(texts, captured{fmt.Sprintf("%s log %d", h.name, i), l})
		}
		_ = filepath.WalkDir(h.dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if b, err := os.ReadFile(p); err == nil {
					texts = append(texts, captured{p, string(b)})
				}
			}
			return nil
		})
	}
	texts = append(texts, captured{"the database", c.dumpDatabase()})
	var hits []string
	size := 0
	for _, tx := range texts {
		size += len(tx.text)
		for form, b := range forms {
			if bytes.Contains([]byte(tx.text), b) {
				hits = append(hits, tx.what+" ("+form+")")
			}
		}
		if tx.what != "the database" && strings.Contains(tx.text, c.token) {
			hits = append(hits, tx.what+" (operator token)")
		}
	}
	if len(hits) > 0 {
		c.t.Fatalf("the secret leaked: %v", hits)
	}
	c.t.Logf("canary: %d surfaces, %d bytes, no trace", len(texts), size)
}

// dumpDatabase renders every row of every table of the cluster's schema.
func (c *cluster) dumpDatabase() string {
	c.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.store)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`)
	if err != nil {
		c.t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		c.t.Fatal(err)
	}
	var b strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			c.t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			c.t.Fatal(err)
		}
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// TestClusterRunsEachOccurrenceOnce: three hosts, 50 connections every
// 2 s for a minute; one host is killed -9 at ~20 s and restarted at
// ~40 s. Each (connection, scheduled_for) runs at most once, every
// instant runs or is counted as coalesced, no connection ever runs twice
// at once, the killed host's runs are host_crashed within TTL + 5 s, no
// process is left, and the canary secret is on no surface. Then again
// with the hosts' clocks 2 s apart each way.
func TestClusterRunsEachOccurrenceOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offsets []time.Duration
	}{
		{"clocks in step", []time.Duration{0, 0, 0}},
		{"clocks skewed -2s 0 +2s", []time.Duration{-clusterSkew, 0, clusterSkew}},
	} {
		t.Run(tc.name, func(t *testing.T) { clusterScenario(t, tc.offsets) })
	}
}

func clusterScenario(t *testing.T, offsets []time.Duration) {
	const (
		conns    = 50
		interval = 2 * time.Second
	)
	c := newCluster(t, offsets...)
	for _, h := range c.hosts {
		c.start(h)
	}
	a := c.hosts[0]
	canary := newCanary(t)
	echo := `{"records":2,"echo_env":["DEMO_TOKEN"]}`
	var cfg map[string]any
	_ = json.Unmarshal([]byte(echo), &cfg)
	var ids []string
	for i := range conns {
		var conn apitypes.Connection
		c.do(a, http.StatusCreated, http.MethodPost, "/v1/connections", apitypes.ConnectionCreateRequest{
			ConnectorKey: "demo", Label: fmt.Sprint("cluster-", i), Config: cfg, Schedule: "@every 2s"}, &conn)
		c.do(c.hosts[i%len(c.hosts)], http.StatusOK, http.MethodPut, "/v1/connections/"+conn.ID+"/credential",
			apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": canary}}, nil)
		ids = append(ids, conn.ID)
	}
	// Slow manual runs, so that the host about to be killed has runs in
	// flight whichever it is.
	slowCfg := map[string]any{"records": 400, "record_delay_ms": 100}
	var slow []string
	for i := range 6 {
		var conn apitypes.Connection
		c.do(a, http.StatusCreated, http.MethodPost, "/v1/connections", apitypes.ConnectionCreateRequest{
			ConnectorKey: "demo", Label: fmt.Sprint("slow-", i), Config: slowCfg}, &conn)
		c.do(a, http.StatusOK, http.MethodPut, "/v1/connections/"+conn.ID+"/credential",
			apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": canary}}, nil)
		slow = append(slow, conn.ID)
	}
	start := time.Now()
	time.Sleep(15 * time.Second)
	for _, id := range slow {
		c.do(c.hosts[1], http.StatusAccepted, http.MethodPost, "/v1/connections/"+id+"/runs", nil, nil)
	}

	// ~20 s: kill -9 a host with a slow run in flight.
	var victim *clusterHost
	var victimID string
	c.waitFor(20*time.Second, "a slow run on some host", func() (bool, string) {
		running := map[string]bool{}
		for _, r := range c.allRuns(a) {
			if r.Status == "running" && slices.Contains(slow, r.ConnectionID) {
				running[r.HostID] = true
			}
		}
		for _, h := range c.hosts {
			if id := c.hostID(h); running[id] {
				victim, victimID = h, id
				return true, ""
			}
		}
		return false, fmt.Sprint(running)
	})
	survivor := c.live(victim)
	var inFlight []string
	for _, r := range c.allRuns(survivor) {
		if r.Status == "running" && r.HostID == victimID {
			inFlight = append(inFlight, r.ID)
		}
	}
	c.kill(victim)
	killedAt := time.Now()
	t.Logf("killed %s (%s) at %s with %d runs in flight", victim.name, victimID, killedAt.Sub(start).Round(time.Second), len(inFlight))

	// Its runs are host_crashed within TTL + 5 s; nothing waits for it.
	c.waitFor(clusterTTL+clusterSkew+5*time.Second, "the killed host's runs marked host_crashed", func() (bool, string) {
		var pending []string
		for _, r := range c.allRuns(survivor) {
			if r.HostID == victimID && !terminal(r.Status) {
				pending = append(pending, r.ID+" "+r.Status)
			}
		}
		return len(pending) == 0, strings.Join(pending, ", ")
	})
	crashedAt := time.Since(killedAt)
	// A short run listed as running may have ended between the listing
	// and the kill (on a loaded machine that window is long); it must
	// then have ended before the kill, by the victim's own clock. The slow
	// runs cannot have: each takes 40 s.
	crashed := 0
	for _, id := range inFlight {
		var r apitypes.Run
		c.get(survivor, "/v1/runs/"+id, &r)
		if r.Status == "failed" && r.FailureCode == "host_crashed" {
			crashed++
			continue
		}
		ended, err := time.Parse(time.RFC3339Nano, r.EndedAt)
		switch {
		case slices.Contains(slow, r.ConnectionID):
			t.Errorf("slow run %s of the killed host = %s %s, want failed host_crashed", id, r.Status, r.FailureCode)
		case err != nil || ended.Add(-victim.offset).After(killedAt.Add(time.Second)):
			t.Errorf("run %s of the killed host = %s %s, ended %s after the kill", id, r.Status, r.FailureCode, r.EndedAt)
		}
	}
	t.Logf("%d of the %d runs in flight marked host_crashed", crashed, len(inFlight))
	if crashed == 0 {
		t.Errorf("none of the killed host's %d runs in flight was marked host_crashed", len(inFlight))
	}
	if limit := clusterTTL + 5*time.Second; crashedAt > limit+clusterSkew {
		t.Errorf("the killed host's runs took %s to be marked, beyond TTL + 5 s", crashedAt)
	}
	for _, h := range c.hostsList(survivor) {
		if h.ID == victimID && h.Status != "crashed" {
			t.Errorf("killed host listed %s", h.Status)
		}
	}

	// ~40 s: it comes back (a new host id, same dir and flags).
	time.Sleep(time.Until(start.Add(40 * time.Second)))
	c.start(victim)
	time.Sleep(time.Until(start.Add(60 * time.Second)))

	// Stop the schedules and let what runs end.
	stopAt := time.Now()
	for _, id := range append(slices.Clone(ids), slow...) {
		c.do(c.hosts[2], http.StatusOK, http.MethodPost, "/v1/connections/"+id+"/pause", nil, nil)
	}
	c.waitFor(60*time.Second, "every run ended", func() (bool, string) {
		var open []string
		for _, r := range c.allRuns(a) {
			if !terminal(r.Status) {
				open = append(open, r.ID+" "+r.Status)
			}
		}
		if len(open) > 0 {
			// The slow ones would take 40 s: cancel them from any host.
			for _, r := range c.allRuns(a) {
				if !terminal(r.Status) && slices.Contains(slow, r.ConnectionID) {
					c.api(c.hosts[1]).Call(http.MethodPost, "/v1/runs/"+r.ID+"/cancel", nil)
				}
			}
		}
		return len(open) == 0, strings.Join(open, ", ")
	})

	runs := c.allRuns(a)
	checkExactlyOnce(t, c, a, runs, ids, interval, stopAt)
	checkNoOverlap(t, c)
	spread := map[string]int{}
	for _, r := range runs {
		if r.Trigger == "scheduled" {
			spread[r.HostID]++
		}
	}
	t.Logf("scheduled runs by host: %v", spread)
	// In step, every host gets a share. With skewed clocks the host
	// whose clock is ahead finds each occurrence due first and takes what
	// its workers can hold; the others take the rest.
	want := len(c.hosts)
	if slices.ContainsFunc(offsets, func(d time.Duration) bool { return d != 0 }) {
		want = 2
	}
	if len(spread) < want {
		t.Errorf("the work spread over %d hosts, want at least %d: %v", len(spread), want, spread)
	}

	for _, h := range c.hosts {
		c.stop(h)
	}
	c.checkRuntimeFiles()
	c.checkCanary(canary)
}

// checkRuntimeFiles: every plugin socket dir lived in its host's runtime
// dir, none in TMPDIR, and the ones the killed host left were swept when
// it started again — after a clean stop every runtime dir is empty.
func (c *cluster) checkRuntimeFiles() {
	c.t.Helper()
	if ents, _ := os.ReadDir(c.marker); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		c.t.Errorf("files left in TMPDIR: %v", names)
	}
	for _, h := range c.hosts {
		dir := filepath.Join(h.dir, "run")
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			c.t.Errorf("%s's runtime dir: %v, %v", h.name, fi, err)
			continue
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			c.t.Errorf("%s's runtime dir holds %v after a clean stop", h.name, names)
		}
	}
}

// checkExactlyOnce: no (connection, scheduled_for) ran twice, and every
// instant of a connection between its first and its last run either ran
// or is among its coalesced ticks.
func checkExactlyOnce(t *testing.T, c *cluster, h *clusterHost, runs []apitypes.Run, ids []string, interval time.Duration, stopAt time.Time) {
	t.Helper()
	byConn := map[string][]time.Time{}
	seen := map[string]string{}
	for _, r := range runs {
		if r.Trigger != "scheduled" {
			continue
		}
		key := r.ConnectionID + " " + r.ScheduledFor
		if prev, dup := seen[key]; dup {
			t.Errorf("occurrence %s ran twice: runs %s and %s", key, prev, r.ID)
		}
		seen[key] = r.ID
		at, err := time.Parse(time.RFC3339Nano, r.ScheduledFor)
		if err != nil {
			t.Fatalf("run %s scheduled_for %q: %v", r.ID, r.ScheduledFor, err)
		}
		byConn[r.ConnectionID] = append(byConn[r.ConnectionID], at)
	}
	totalMissing, totalCoalesced := 0, int64(0)
	for _, id := range ids {
		ats := byConn[id]
		if len(ats) < 10 {
			t.Errorf("connection %s ran %d scheduled runs in a minute", id, len(ats))
			continue
		}
		sort.Slice(ats, func(i, j int) bool { return ats[i].Before(ats[j]) })
		missing := 0
		for i := 1; i < len(ats); i++ {
			gap := ats[i].Sub(ats[i-1])
			if gap%interval != 0 {
				t.Errorf("connection %s: instants %s and %s are off its 2 s grid", id, ats[i-1], ats[i])
			}
			missing += int(gap/interval) - 1
		}
		var conn apitypes.Connection
		c.get(h, "/v1/connections/"+id, &conn)
		// The last instants before the pause may have been pending when
		// it removed them: those are neither run nor coalesced.
		if tailGap := stopAt.Sub(ats[len(ats)-1]); tailGap > 10*time.Second {
			t.Errorf("connection %s: no scheduled run in the last %s before the pause", id, tailGap.Round(time.Second))
		}
		if int64(missing) > conn.CoalescedTicks {
			t.Errorf("connection %s: %d instants missing between its first and last run, %d coalesced", id, missing, conn.CoalescedTicks)
			var line []string
			for _, r := range runs {
				if r.ConnectionID == id && r.Trigger == "scheduled" {
					line = append(line, r.ScheduledFor[11:19]+"/"+r.HostID[len(r.HostID)-4:]+"/"+r.Status)
				}
			}
			sort.Strings(line)
			t.Logf("connection %s runs: %s", id, strings.Join(line, " "))
			for _, ch := range c.hosts {
				logs := ch.logs
				if ch.srv != nil {
					logs = append(slices.Clone(logs), ch.srv.stderr.String())
				}
				for _, l := range logs {
					for _, ln := range strings.Split(l, "\n") {
						if strings.Contains(ln, id) && !strings.Contains(ln, "plugin") {
							t.Logf("%s: %s", ch.name, ln)
						}
					}
				}
			}
		}
		totalMissing += missing
		totalCoalesced += conn.CoalescedTicks
	}
	t.Logf("%d scheduled runs of %d connections, all distinct; %d instants not run, %d ticks coalesced", len(seen), len(ids), totalMissing, totalCoalesced)
}

// checkNoOverlap: no connection ever had two runs running at once. The
// stamps are read from the store at full precision and put back on one
// timeline by taking off the clock offset of the host that wrote them (a
// run's host stamps its start and end, inside its lease). A run that a
// survivor reaped was ended by the survivor's clock, whose offset is not
// known here: its end gets the cluster's skew as slack.
func checkNoOverlap(t *testing.T, c *cluster) {
	t.Helper()
	offsets := map[string]time.Duration{}
	for _, h := range c.hosts {
		for _, id := range h.ids {
			offsets[id] = h.offset
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.store)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, connection_id, host_id, failure_code, started_at, ended_at FROM runs
		WHERE started_at IS NOT NULL AND ended_at IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		id       string
		from, to time.Time
	}
	byConn := map[string][]span{}
	n := 0
	for rows.Next() {
		var id, connID, hostID, code string
		var from, to time.Time
		if err := rows.Scan(&id, &connID, &hostID, &code, &from, &to); err != nil {
			t.Fatal(err)
		}
		off, ok := offsets[hostID]
		if !ok {
			t.Fatalf("run %s ran on host %q, which is none of the cluster's", id, hostID)
		}
		to = to.Add(-off)
		if code == "host_crashed" {
			to = to.Add(-2 * clusterSkew)
		}
		byConn[connID] = append(byConn[connID], span{id, from.Add(-off), to})
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for connID, spans := range byConn {
		sort.Slice(spans, func(i, j int) bool { return spans[i].from.Before(spans[j].from) })
		for i := 1; i < len(spans); i++ {
			if spans[i].from.Before(spans[i-1].to) {
				t.Errorf("connection %s: run %s started at %s while run %s ran until %s", connID,
					spans[i].id, spans[i].from.Format(time.RFC3339Nano), spans[i-1].id, spans[i-1].to.Format(time.RFC3339Nano))
			}
		}
	}
	t.Logf("no overlap among %d runs of %d connections", n, len(byConn))
}

// TestClusterCancelAndFollowAcrossHosts: a manual run triggered on one
// host is followed live (SSE) on every host, and cancelled from a host
// that does not run it.
func TestClusterCancelAndFollowAcrossHosts(t *testing.T) {
	c := newCluster(t, 0, 0)
	for _, h := range c.hosts {
		c.start(h)
	}
	a, b := c.hosts[0], c.hosts[1]
	canary := newCanary(t)
	var conn apitypes.Connection
	c.do(a, http.StatusCreated, http.MethodPost, "/v1/connections", apitypes.ConnectionCreateRequest{
		ConnectorKey: "demo", Label: "followed", Config: map[string]any{"records": 2000, "record_delay_ms": 10}}, &conn)
	c.do(b, http.StatusOK, http.MethodPut, "/v1/connections/"+conn.ID+"/credential",
		apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": canary}}, nil)
	var run apitypes.Run
	c.do(a, http.StatusAccepted, http.MethodPost, "/v1/connections/"+conn.ID+"/runs", nil, &run)

	// Follow from both hosts: one of them does not run it.
	type follow struct {
		events []apitypes.RunEvent
		err    error
	}
	results := make([]follow, len(c.hosts))
	watched := make([]follow, len(c.hosts))
	var wg sync.WaitGroup
	for i, h := range c.hosts {
		wg.Add(2)
		go func() {
			defer wg.Done()
			results[i].events, results[i].err = sse(h.srv.addr, c.token, run.ID)
		}()
		go func() {
			defer wg.Done()
			watched[i].events, watched[i].err = watch(h.srv.addr, c.token, run.ID)
		}()
	}
	var running apitypes.Run
	c.waitFor(30*time.Second, "the run running", func() (bool, string) {
		c.get(a, "/v1/runs/"+run.ID, &running)
		return running.Status == "running" && running.Records > 0, running.Status
	})
	runner := a
	if c.hostID(b) == running.HostID {
		runner = b
	}
	other := c.live(runner)
	if c.hostID(other) == running.HostID {
		t.Fatalf("the run's host %s is both", running.HostID)
	}
	var cancelled apitypes.Run
	c.do(other, http.StatusOK, http.MethodPost, "/v1/runs/"+run.ID+"/cancel", nil, &cancelled)
	if cancelled.Status != "cancelled" || cancelled.FailureCode != "cancelled" || cancelled.HostID != running.HostID {
		t.Fatalf("cancel from the other host = %+v", cancelled)
	}
	wg.Wait()
	for i, r := range append(results, watched...) {
		h := c.hosts[i%len(c.hosts)]
		if r.err != nil {
			t.Fatalf("follow %d on %s: %v", i, h.name, r.err)
		}
		kinds := map[string]int{}
		for _, ev := range r.events {
			kinds[ev.Kind]++
		}
		last := r.events[len(r.events)-1]
		if last.Kind != "end" || last.Status != "cancelled" || kinds["records"]+kinds["progress"] == 0 {
			t.Errorf("follow on %s (runs it: %v): %v, last %+v", h.name, h == runner, kinds, last)
		}
	}

	// SIGTERM on the host running a run hands it back at once: the run
	// ends cancelled/host_shutdown and its retry runs on the other host
	// well within the TTL, which the others never had to wait out.
	c.do(b, http.StatusAccepted, http.MethodPost, "/v1/connections/"+conn.ID+"/runs", nil, &run)
	c.waitFor(30*time.Second, "the second run running", func() (bool, string) {
		c.get(a, "/v1/runs/"+run.ID, &running)
		return running.Status == "running", running.Status
	})
	runner = a
	if c.hostID(b) == running.HostID {
		runner = b
	}
	other = c.live(runner)
	c.stop(runner)
	stoppedAt := time.Now()
	var interrupted apitypes.Run
	c.get(other, "/v1/runs/"+run.ID, &interrupted)
	if interrupted.Status != "cancelled" || interrupted.FailureCode != "host_shutdown" {
		t.Fatalf("run of the stopped host = %s %s, want cancelled host_shutdown", interrupted.Status, interrupted.FailureCode)
	}
	c.waitFor(clusterTTL/2, "the interrupted run's retry running on the other host", func() (bool, string) {
		for _, r := range c.allRuns(other) {
			if r.RetryOf == run.ID {
				return r.Status == "running" && r.HostID == c.hostID(other), r.Status + " on " + r.HostID
			}
		}
		return false, "no retry yet"
	})
	t.Logf("the retry ran on the other host %s after the stop", time.Since(stoppedAt).Round(time.Millisecond))
	for _, h := range c.hostsList(other) {
		if h.ID == running.HostID && h.Status != "stopped" {
			t.Errorf("the stopped host is listed %s", h.Status)
		}
	}
	for _, h := range c.hosts {
		c.stop(h)
	}
	c.checkRuntimeFiles()
	c.checkCanary(canary)
}

// watch follows a run with the gRPC WatchRun until its end.
func watch(addr, token, runID string) ([]apitypes.RunEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(strings.TrimPrefix(addr, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	stream, err := adminv1.NewAdminServiceClient(conn).WatchRun(ctx, &adminv1.WatchRunRequest{RunId: runID})
	if err != nil {
		return nil, err
	}
	var out []apitypes.RunEvent
	for {
		m, err := stream.Recv()
		if err != nil {
			return out, fmt.Errorf("watch ended without an end: %w", err)
		}
		out = append(out, apitypes.RunEvent{RunID: m.GetRun().GetId(), Kind: m.GetKind(), Status: m.GetRun().GetStatus(),
			Records: m.GetRun().GetRecords()})
		if m.GetKind() == "end" {
			return out, nil
		}
	}
}

// sse follows a run's event stream until its end.
func sse(addr, token, runID string) ([]apitypes.RunEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/v1/runs/"+runID+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var out []apitypes.RunEvent
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev apitypes.RunEvent
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return out, err
		}
		out = append(out, ev)
		if ev.Kind == "end" {
			return out, nil
		}
	}
	return out, fmt.Errorf("stream ended without an end event: %v", sc.Err())
}
