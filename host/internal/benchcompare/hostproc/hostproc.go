// Package hostproc runs a real `connhost serve` for make bench-compare:
// it starts the built binary on a fresh data dir (SQLite by default, or
// the store URL given), waits until it is ready, and talks to it over its
// HTTP API with the operator token the host wrote. It reads the serve
// process's memory from /proc and stops it with SIGTERM.
package hostproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/connhost/connhost/host/api/client"
)

// Bounds of the waits: guards against a hang, not timings.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
)

// ServeError is a serve process that failed: it did not start, did not
// become ready, or exited badly. LogTail is the end of its log.
type ServeError struct {
	Op      string
	Err     error
	LogPath string
	LogTail string
}

func (e *ServeError) Error() string {
	return fmt.Sprintf("connhost serve: %s: %v (log %s)\n--- log tail ---\n%s", e.Op, e.Err, e.LogPath, e.LogTail)
}

func (e *ServeError) Unwrap() error { return e.Err }

// Config says how to start one host.
type Config struct {
	// Bin is the connhost binary; PluginDir holds the demo plugin.
	Bin, PluginDir string
	// DataDir is created (0700); the host's SQLite store, keyset, KEK and
	// token live there.
	DataDir string
	// Store is the --store URL; empty for SQLite in DataDir.
	Store string
	// MaxConcurrentRuns is --max-concurrent-runs; 0 keeps the default.
	MaxConcurrentRuns int
	// LogPath receives the host's stdout and stderr.
	LogPath string
	// RunWait bounds the wait for one run's end. Default DefaultRunWait.
	RunWait time.Duration
}

// DefaultRunWait is Config.RunWait's default: a guard against a run that
// never ends (a store refusing connections), far above any measured run.
const DefaultRunWait = 10 * time.Minute

// Host is one running `connhost serve`.
type Host struct {
	cfg    Config
	cmd    *exec.Cmd
	log    *os.File
	done   chan struct{}
	err    error
	Addr   string
	Client *client.Client

	stampsDB stampReader
}

var readyRE = regexp.MustCompile(`serving on (http://\S+)`)

// Start starts the host and returns once it answers /readyz.
func Start(ctx context.Context, cfg Config) (*Host, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	tmp := filepath.Join(cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	kek := filepath.Join(cfg.DataDir, "kek")
	if err := writeKEK(kek); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--data-dir", cfg.DataDir, "--plugin-dir", cfg.PluginDir,
		"--listen", "127.0.0.1:0", "--kek-file", kek}
	if cfg.Store != "" {
		args = append(args, "--store", cfg.Store)
	}
	if cfg.MaxConcurrentRuns > 0 {
		args = append(args, "--max-concurrent-runs", strconv.Itoa(cfg.MaxConcurrentRuns))
	}
	cmd := exec.Command(cfg.Bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, &ServeError{Op: "start", Err: err, LogPath: cfg.LogPath}
	}
	h := &Host{cfg: cfg, cmd: cmd, log: logf, done: make(chan struct{})}
	addr := make(chan string, 1)
	var copyDone sync.WaitGroup
	copyDone.Go(func() {
		// Copy stdout into the log, catching the ready line on the way.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := readyRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(logf, stdout)
	})
	go func() {
		copyDone.Wait()
		h.err = cmd.Wait()
		close(h.done)
	}()
	fail := func(op string, err error) (*Host, error) {
		h.kill()
		return nil, h.serveError(op, err)
	}
	select {
	case h.Addr = <-addr:
	case <-h.done:
		return fail("exited before ready", h.err)
	case <-time.After(readyTimeout):
		return fail("not ready", fmt.Errorf("no %q line after %v", "serving on", readyTimeout))
	case <-ctx.Done():
		return fail("start", ctx.Err())
	}
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, "operator.token"))
	if err != nil {
		return fail("read operator token", err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}
	h.Client, err = client.New(h.Addr, strings.TrimSpace(string(tok)), hc)
	if err != nil {
		return fail("client", err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		err := h.Client.Ready(ctx)
		if err == nil {
			return h, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail("readyz", err)
		}
		select {
		case <-h.done:
			return fail("exited before ready", h.err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func writeKEK(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	key := make([]byte, 32)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.ReadFull(f, key); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(encodeBase64(key)+"\n"), 0o600)
}

// Pid is the serve process's id.
func (h *Host) Pid() int { return h.cmd.Process.Pid }

// Memory is a process's resident memory from /proc/<pid>/status.
type Memory struct {
	RSSKiB, HWMKiB int64
}

// Memory reads the serve process's VmRSS and VmHWM.
func (h *Host) Memory() (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.Pid()))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	for _, line := range strings.Split(string(b), "\n") {
		for name, dst := range map[string]*int64{"VmRSS:": &m.RSSKiB, "VmHWM:": &m.HWMKiB} {
			if rest, ok := strings.CutPrefix(line, name); ok {
				*dst, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			}
		}
	}
	if m.RSSKiB == 0 {
		return m, fmt.Errorf("hostproc: no VmRSS in /proc/%d/status", h.Pid())
	}
	return m, nil
}

// ResetPeak resets the serve process's VmHWM to its current RSS (writing
// 5 to /proc/<pid>/clear_refs), so a later VmHWM is the peak since now.
func (h *Host) ResetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", h.Pid()), []byte("5"), 0)
}

// Stop sends SIGTERM and waits for a clean exit.
func (h *Host) Stop() error {
	defer h.log.Close()
	h.stampsDB.close()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return h.serveError("SIGTERM", err)
	}
	select {
	case <-h.done:
	case <-time.After(stopTimeout):
		h.kill()
		return h.serveError("stop", fmt.Errorf("still running %v after SIGTERM", stopTimeout))
	}
	if h.err != nil {
		return h.serveError("exit after SIGTERM", h.err)
	}
	return nil
}

// Fail wraps err with the host's log tail.
func (h *Host) Fail(op string, err error) error { return h.serveError(op, err) }

func (h *Host) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
}

func (h *Host) serveError(op string, err error) error {
	return &ServeError{Op: op, Err: err, LogPath: h.cfg.LogPath, LogTail: tail(h.cfg.LogPath, 25)}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
