//go:build unix

package demo

import (
	"fmt"
	"os/exec"
	"syscall"
)

// startHelpers starts n sleep processes that the run leaves behind, every
// other one in a new session. Their parent never waits for them: the host
// kills them, and reaps those it adopts.
func startHelpers(n int) error {
	for i := range n {
		cmd := exec.Command("/bin/sleep", "3600")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: i%2 == 1}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("demo: start helper %d: %w", i, err)
		}
		_ = cmd.Process.Release()
	}
	return nil
}
