package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/internal/apicall"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/server"
)

// pluginDir returns a directory holding the demo plugin binary.
func pluginDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(hosttest.PluginBinary(t, hosttest.DemoPackage))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hostEnv is the environment every test host gives its connectors.
func hostEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
}

// running is a started server.Run.
type running struct {
	t     *testing.T
	addr  string
	token string
	logs  *hosttest.SyncBuffer
	stop  context.CancelFunc
	done  chan error
	cfg   server.Config
}

// baseConfig is a test config: a fresh data dir, the demo plugin, an
// ephemeral port, captured debug logs.
func baseConfig(t *testing.T) server.Config {
	t.Helper()
	return server.Config{
		DataDir:                 filepath.Join(t.TempDir(), "data"),
		Listen:                  "127.0.0.1:0",
		PluginDir:               pluginDir(t),
		LogLevel:                "debug",
		AllowHostEnvCredentials: true,
		ShutdownTimeout:         20 * time.Second,
		Environ:                 hostEnv,
	}
}

// start runs server.Run with cfg and waits until it listens.
func start(t *testing.T, cfg server.Config) *running {
	t.Helper()
	logs := &hosttest.SyncBuffer{}
	if cfg.LogOutput == nil {
		cfg.LogOutput = logs
	}
	ready := make(chan string, 1)
	cfg.OnReady = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, logs: logs, stop: cancel, done: make(chan error, 1), cfg: cfg}
	go func() { r.done <- server.Run(ctx, cfg) }()
	select {
	case r.addr = <-ready:
	case err := <-r.done:
		cancel()
		t.Fatalf("server.Run returned before listening: %v\n%s", err, logs)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("server did not listen within 60s\n%s", logs)
	}
	tok, err := server.ReadToken(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	r.token = tok
	t.Cleanup(func() { r.shutdown() })
	return r
}

// shutdown cancels Run's context and returns its result (once).
func (r *running) shutdown() error {
	r.stop()
	select {
	case err, ok := <-r.done:
		if !ok {
			return nil
		}
		close(r.done)
		return err
	case <-time.After(60 * time.Second):
		r.t.Fatalf("server.Run did not return within 60s of cancellation")
		return nil
	}
}

type response = apicall.Response

// call sends an authenticated request.
func (r *running) call(method, path string, body any) response {
	r.t.Helper()
	return r.caller().Call(method, path, body)
}

// ok calls, requires the status and decodes into out (zeroed first).
func (r *running) ok(want int, method, path string, body, out any) response {
	r.t.Helper()
	return r.caller().OK(want, method, path, body, out)
}

func (r *running) caller() apicall.Caller {
	return apicall.Caller{T: r.t, Base: "http://" + r.addr, Auth: "Bearer " + r.token}
}

// waitRun polls a run until it is terminal.
func (r *running) waitRun(id string) apitypes.Run {
	r.t.Helper()
	var run apitypes.Run
	deadline := time.Now().Add(60 * time.Second)
	for {
		r.ok(http.StatusOK, "GET", "/v1/runs/"+id, nil, &run)
		switch run.Status {
		case "succeeded", "failed", "refused", "cancelled":
			return run
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("run %s still %s", id, run.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// follow reads the run's event stream to its end and returns the events.
func (r *running) follow(id string) []apitypes.RunEvent {
	r.t.Helper()
	return r.followUntil(id, func(apitypes.RunEvent) {})
}

// once closes ch at the first progress event.
func once(ch chan struct{}, ev apitypes.RunEvent) {
	if ev.Kind == "progress" {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

// followUntil reads the run's event stream to its end, calling seen for
// each event as it arrives. It may run on another goroutine: it reports
// problems with Errorf only.
func (r *running) followUntil(id string, seen func(apitypes.RunEvent)) []apitypes.RunEvent {
	req, err := http.NewRequest("GET", "http://"+r.addr+"/v1/runs/"+id+"/events", nil)
	if err != nil {
		r.t.Errorf("events: %v", err)
		return nil
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Errorf("events: %v", err)
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.t.Errorf("events: %d", resp.StatusCode)
		return nil
	}
	var out []apitypes.RunEvent
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var ev apitypes.RunEvent
			if err := json.Unmarshal([]byte(data), &ev); err != nil {
				r.t.Errorf("event %q: %v", data, err)
				return out
			}
			out = append(out, ev)
			seen(ev)
		}
	}
	return out
}

// children returns the live child processes of the test process.
func children() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if ppid == self {
			out[pid] = f[0] != "Z"
		}
	}
	return out
}

// fileMode returns a path's permission bits.
func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}
