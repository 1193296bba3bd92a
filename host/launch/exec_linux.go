package launch

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr puts the child in its own process group, so the launcher can
// kill the plugin and everything it spawned, and asks the kernel to SIGKILL
// the child if the host dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// reapGroup waits for cmd's process to exit, kills what is left of its
// process group, and reaps it. The group is killed between exit and reaping:
// waitid(WNOWAIT) leaves the leader a zombie, which keeps its pid (and so the
// group id) reserved, so the signal can never reach a recycled pid.
func reapGroup(cmd *exec.Cmd, killGroup func()) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	killGroup()
	return cmd.Wait()
}
