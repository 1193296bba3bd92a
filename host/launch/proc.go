package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/connhost/connhost/host/contain"
	"github.com/hashicorp/go-plugin/runner"
)

// errKilledBeforeStart is returned by Start when the launch was cancelled
// before the process was spawned.
var errKilledBeforeStart = errors.New("launch: cancelled before the plugin started")

// procRunner is the go-plugin runner.Runner the launcher uses instead of
// go-plugin's own cmd runner, which would hand the child the host's stdin,
// SIGKILL only the leader, and tie reaping to the child's pipes. procRunner:
//
//   - execs the verified private copy with no stdin (/dev/null), in its own
//     process group, with Pdeathsig SIGKILL where the OS has it;
//   - reaps the child on its own goroutine as soon as it exits, killing
//     whatever is left of its group first, so no zombie or orphan outlives
//     the leader even if a grandchild still holds the pipes;
//   - kills the whole group on Kill;
//   - with a contain.Scope, spawns the child in it, and kills everything
//     left in it — grandchildren that left the group or the session too —
//     once the child has exited, before reaping it.
type procRunner struct {
	name   string
	path   string           // the plugin's real path, for messages
	newCmd func() *exec.Cmd // a fresh, unstarted command per attempt
	cmd    *exec.Cmd        // the started command
	scope  *contain.Scope   // nil: the process group is the only container

	outW, errW *os.File // the child's ends, closed once it holds copies

	stdout, stderr *lineReader
	outR, errR     *os.File

	mu      sync.Mutex
	pid     int  // 0 until started
	reaped  bool // the leader has been waited for
	stopped bool // Kill was called; a later Start must not spawn
	// byHost is set once the host asks the child to die (Kill, or the
	// launcher's abort): its SIGKILL death is then the host's doing.
	byHost atomic.Bool

	done    chan struct{} // closed once reaped
	waitErr error
}

func newProcRunner(name, path string, newCmd func() *exec.Cmd, scope *contain.Scope, red *redactor) (*procRunner, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	return &procRunner{
		name:   name,
		path:   path,
		newCmd: newCmd,
		scope:  scope,
		outW:   outW,
		errW:   errW,
		outR:   outR,
		errR:   errR,
		stdout: newLineReader(outR, red, false), // the handshake line must pass verbatim
		stderr: newLineReader(errR, red, true),
		done:   make(chan struct{}),
	}, nil
}

// Start spawns the child. A concurrent execve elsewhere in the host can
// briefly hold a copy of a freshly written executable's descriptor
// (golang/go#22315), so ETXTBSY is retried a few times.
func (p *procRunner) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.outW.Close() // the child holds its own copies
	defer p.errW.Close()
	if p.stopped {
		p.closePipes()
		return errKilledBeforeStart
	}
	for attempt := 0; ; attempt++ {
		cmd := p.newCmd() // a failed Start leaves an exec.Cmd unusable
		cmd.Stdin = nil   // the child reads /dev/null, never the host's stdin
		cmd.Stdout = p.outW
		cmd.Stderr = p.errW
		err := p.start(cmd)
		if err == nil {
			p.cmd = cmd
			break
		}
		if errors.Is(err, contain.ErrRetryStart) {
			continue
		}
		if !errors.Is(err, syscall.ETXTBSY) || attempt == 4 {
			p.closePipes()
			// Name the plugin, not the private copy exec'd in its place.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				return fmt.Errorf("exec %s: %w", p.path, pe.Err)
			}
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	p.pid = p.cmd.Process.Pid
	go p.reap()
	return nil
}

func (p *procRunner) start(cmd *exec.Cmd) error {
	if p.scope == nil {
		return cmd.Start()
	}
	return p.scope.Start(cmd)
}

func (p *procRunner) reap() {
	err := reapGroup(p.cmd, func() {
		p.killGroup()
		if p.scope != nil {
			// Everything the child left, whatever group or session it
			// moved to. An error (a process that would not die) is
			// logged by the launcher's caller through the run's end.
			_ = p.scope.Close()
		}
	})
	if p.scope != nil {
		p.scope.Exited()
	}
	p.mu.Lock()
	p.reaped = true
	p.waitErr = err
	p.mu.Unlock()
	close(p.done)
}

// killGroup SIGKILLs the child's process group, unless the leader has
// already been reaped (its pid, and so the group id, may then be reused).
func (p *procRunner) killGroup() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.killGroupLocked()
}

func (p *procRunner) killGroupLocked() {
	p.stopped = true
	if p.pid > 0 && !p.reaped {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	}
	if p.scope != nil {
		p.scope.Kill()
	}
}

// Wait blocks until the child has been reaped.
func (p *procRunner) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exited reports whether the child has been reaped, and how it ended.
func (p *procRunner) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// started reports whether the child was spawned.
func (p *procRunner) started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid > 0
}

// Kill SIGKILLs the child's whole process group.
func (p *procRunner) Kill(context.Context) error {
	p.stop()
	return nil
}

// stop is the host killing the child (Kill, a cancel, the end of a call).
func (p *procRunner) stop() {
	p.byHost.Store(true)
	p.killGroup()
}

// killedByHost reports whether the child has been reaped after dying of
// the SIGKILL the host sent it. A child that exited on its own, or was
// killed before the host asked (the OOM killer), was not.
func (p *procRunner) killedByHost() bool {
	if !p.byHost.Load() {
		return false
	}
	done, err := p.exited()
	var ee *exec.ExitError
	if !done || !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// release closes every pipe end the host holds. Safe to call more than
// once and before Start.
func (p *procRunner) release() {
	p.outW.Close()
	p.errW.Close()
	p.closePipes()
	if p.scope != nil && !p.started() {
		_ = p.scope.Close() // never spawned: only the cgroup to remove
	}
}

// closePipes closes the read ends, which unblocks go-plugin's readers if a
// process that escaped the group still holds the write ends.
func (p *procRunner) closePipes() {
	p.outR.Close()
	p.errR.Close()
}

func (p *procRunner) Stdout() io.ReadCloser { return p.stdout }
func (p *procRunner) Stderr() io.ReadCloser { return p.stderr }
func (p *procRunner) Name() string          { return p.name }

// ID is the pid, or "" before the child is spawned (go-plugin's Kill does
// nothing for a runner without an ID).
func (p *procRunner) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

// Diagnose adds nothing: go-plugin copies it into handshake errors, and the
// launcher's own error already names the plugin.
func (p *procRunner) Diagnose(context.Context) string { return "" }

// The child runs beside the host: addresses need no translation.
func (p *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (p *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

var _ runner.Runner = (*procRunner)(nil)
