package launch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// newPrivateExec returns the verified copy of src. On Linux the copy is a
// sealed memfd: it lives in memory, cannot be written after sealing, needs
// no clean-up if the host dies, and works on hosts whose /tmp is noexec.
// The child execs it as /proc/self/fd/3, which also works for #! scripts.
// Kernels that forbid executable memfds fall back to dirExec.
func newPrivateExec(src string, want []byte, name, tempDir string) (*privateExec, error) {
	pe, err := memfdExec(src, want, name)
	if errors.Is(err, errNoMemfd) {
		return dirExec(src, want, name, tempDir)
	}
	return pe, err
}

var errNoMemfd = errors.New("launch: executable memfd unavailable")

func memfdExec(src string, want []byte, name string) (*privateExec, error) {
	label := "connhost:" + name
	if len(label) > 200 {
		label = label[:200]
	}
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate(label, flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 6.3 do not know MFD_EXEC; their memfds are
		// executable by default.
		fd, err = unix.MemfdCreate(label, flags)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoMemfd, err)
	}
	rw := os.NewFile(uintptr(fd), label)
	defer rw.Close()

	sum, err := copyHashed(rw, src)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(sum, want) {
		return nil, &checksumError{path: src, got: sum, want: want}
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return nil, fmt.Errorf("%w: seal: %v", errNoMemfd, err)
	}
	// Exec a read-only descriptor: an open writable one makes execve fail
	// with ETXTBSY on kernels that deny writers of a running image.
	ro, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: reopen: %v", errNoMemfd, err)
	}
	return &privateExec{
		path:  "/proc/self/fd/3", // ExtraFiles[0] is fd 3 in the child
		files: []*os.File{ro},
		close: func() { ro.Close() },
	}, nil
}

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
