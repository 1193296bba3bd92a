package contain

import (
	"errors"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Mode is how a Manager contains a launch.
type Mode string

const (
	// ModeCgroup: one cgroup v2 group per launch, killed with cgroup.kill.
	ModeCgroup Mode = "cgroup"
	// ModeProc: the launch's processes are found by walking /proc.
	ModeProc Mode = "proc"
	// ModeGroup: only the plugin's process group is killed (systems
	// without /proc).
	ModeGroup Mode = "process-group"
)

// recordSuffix names the runtime-dir files that record a live cgroup.
const recordSuffix = ".cgroup"

// cgroupPrefix starts the name of every cgroup connhost makes; Sweep
// refuses to touch a recorded path that does not.
const cgroupPrefix = "connhost-"

// Config configures a Manager.
type Config struct {
	// RuntimeDir is the host's runtime dir. Cgroup records are kept in it,
	// and processes working inside it belong to a launch. Required.
	RuntimeDir string
	// Subreaper makes the host a child subreaper and reaps adopted
	// processes (see the package doc). For the host process only.
	Subreaper bool
	// DisableCgroup forces ModeProc even where cgroups are usable.
	DisableCgroup bool
	// KillTimeout bounds the wait for a killed scope to empty (default 5s).
	KillTimeout time.Duration
	Logger      hclog.Logger
}

// ErrNoRuntimeDir is returned by New without Config.RuntimeDir.
var ErrNoRuntimeDir = errors.New("contain: a runtime dir is required")

// Manager makes Scopes. Safe for concurrent use.
type Manager struct {
	cfg      Config
	mode     Mode
	why      string // why the cgroup mode is not used, if it is not
	cgParent string // directory of the per-launch cgroups (ModeCgroup)

	// forkMu is read-held while a leader is spawned and registered, and
	// write-held while the reaper scans, so a just-forked leader is never
	// taken for an adopted process.
	forkMu  sync.RWMutex
	mu      sync.Mutex
	leaders map[int]struct{}

	stop chan struct{}
	done chan struct{}
}

// Mode reports how launches are contained, and why the cgroup mode is not
// used when it is not.
func (m *Manager) Mode() (Mode, string) { return m.mode, m.why }

// Close stops the reaper. Scopes still open keep working.
func (m *Manager) Close() error {
	if m.stop != nil {
		close(m.stop)
		<-m.done
		m.stop = nil
	}
	return nil
}

// Start spawns cmd as a launch's leader: inside the scope's cgroup where
// there is one, and registered so the reaper leaves it to the caller's
// cmd.Wait. Call Exited once cmd.Wait has returned.
func (s *Scope) Start(cmd *exec.Cmd) error {
	m := s.m
	m.forkMu.RLock()
	defer m.forkMu.RUnlock()
	if err := s.start(cmd); err != nil {
		return err
	}
	m.mu.Lock()
	m.leaders[cmd.Process.Pid] = struct{}{}
	m.mu.Unlock()
	s.mu.Lock()
	s.leader = cmd.Process.Pid
	s.mu.Unlock()
	return nil
}

// Exited unregisters the leader once the caller has reaped it.
func (s *Scope) Exited() {
	s.mu.Lock()
	pid := s.leader
	s.mu.Unlock()
	s.m.mu.Lock()
	delete(s.m.leaders, pid)
	s.m.mu.Unlock()
}

func (m *Manager) isLeader(pid int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.leaders[pid]
	return ok
}

func (m *Manager) logger() hclog.Logger {
	if m.cfg.Logger == nil {
		return hclog.NewNullLogger()
	}
	return m.cfg.Logger
}
