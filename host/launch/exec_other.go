//go:build unix && !linux

package launch

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts the child in its own process group. Pdeathsig is
// Linux-only: here a child outlives a host that dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// reapGroup reaps cmd's process, then kills what is left of its group.
// Without waitid(WNOWAIT) the group is signalled just after the leader is
// reaped, a window in which its pid could in theory be recycled.
func reapGroup(cmd *exec.Cmd, killGroup func()) error {
	err := cmd.Wait()
	killGroup()
	return err
}
