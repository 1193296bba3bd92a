//go:build !linux

package contain

import (
	"errors"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// New returns a Manager that contains a launch by its process group only:
// this system has neither cgroups nor a subreaper.
func New(cfg Config) (*Manager, error) {
	if cfg.RuntimeDir == "" {
		return nil, ErrNoRuntimeDir
	}
	if cfg.KillTimeout <= 0 {
		cfg.KillTimeout = 5 * time.Second
	}
	return &Manager{cfg: cfg, mode: ModeGroup, why: "not Linux", leaders: map[int]struct{}{}}, nil
}

// Scope is the processes of one launch.
type Scope struct {
	m      *Manager
	mu     sync.Mutex
	leader int
}

// ErrRetryStart is never returned on this system.
var ErrRetryStart = errors.New("contain: retry the start")

// Begin opens the scope of a launch.
func (m *Manager) Begin(dir, marker string) (*Scope, error) { return &Scope{m: m}, nil }

func (s *Scope) start(cmd *exec.Cmd) error { return cmd.Start() }

// Kill does nothing: the launcher kills the process group.
func (s *Scope) Kill() {}

// Close does nothing here.
func (s *Scope) Close() error { return nil }

// Sweep does nothing here.
func Sweep(runtimeDir string, log hclog.Logger) (int, error) { return 0, nil }
