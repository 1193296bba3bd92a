package pluginimage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

var errNoMemfd = errors.New("pluginimage: executable memfd unavailable")

// seals make the memfd immutable: no write, no resize, no unsealing.
const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// copyToMemfd copies src into a sealed memfd and keeps a read-only
// descriptor of it. It returns an error wrapping errNoMemfd when this
// kernel cannot make an executable sealed memfd, before anything is read
// from src or after a failure that a directory copy avoids.
func (im *Image) copyToMemfd(src io.Reader) error {
	label := "connhost:" + im.name
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
		return fmt.Errorf("%w: %v", errNoMemfd, err)
	}
	rw := os.NewFile(uintptr(fd), label)
	defer rw.Close()

	sum, err := copyHashed(rw, src)
	if err != nil {
		return err
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("%w: seal: %v", errNoMemfd, err)
	}
	// Keep (and exec) a read-only descriptor: an open writable one makes
	// execve fail with ETXTBSY on kernels that deny writers of a running
	// image. rw is closed on return.
	ro, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: reopen: %v", errNoMemfd, err)
	}
	im.sum, im.file = sum, ro
	im.exe = "/proc/self/fd/3" // the child's ExtraFiles[0]
	return nil
}
