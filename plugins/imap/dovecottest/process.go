package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// launch starts the master in the foreground, in its own process group so
// that stop can find any child it leaves behind.
func (s *Server) launch(dovecot string) error {
	out, err := os.Create(filepath.Join(s.dir, "dovecot.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(dovecot, "-F", "-c", s.conf)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

// waitReady returns once User can log in on both listeners, or an error
// carrying the tail of Dovecot's logs.
func (s *Server) waitReady() error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for {
		err := s.probe(false, s.Password)
		if err == nil {
			err = s.probe(true, s.Password)
		}
		if err == nil {
			return nil
		}
		if strings.Contains(s.Log(), " Fatal: ") {
			return s.startError("it logged a fatal error")
		}
		select {
		case <-s.exited:
			return s.startError(fmt.Sprintf("the master exited (%v)", s.cmd.ProcessState))
		case <-deadline.C:
			return fmt.Errorf("no successful login within %v: %w\n%s", readyTimeout, err, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startError explains why Dovecot did not start, telling a lost port
// (worth a retry) from anything else.
func (s *Server) startError(what string) error {
	tail := s.logTail()
	if strings.Contains(tail, "Address already in use") {
		return fmt.Errorf("%w (ports %d, %d)", errPortInUse, s.Port, s.TLSPort)
	}
	return fmt.Errorf("%w: %s\n%s", errStartFailed, what, tail)
}

// logTail returns the last lines of dovecot.log and of the master's own
// output (where errors before logging is set up go).
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"dovecot.out", "dovecot.log"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > logTailLines {
			lines = lines[len(lines)-logTailLines:]
		}
		fmt.Fprintf(&b, "--- %s (last %d lines) ---\n%s\n", name, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// probe logs in as User with password on the TLS or plaintext listener,
// speaking just enough IMAP to read the greeting and the LOGIN result.
// Its errors never contain the password.
func (s *Server) probe(useTLS bool, password string) error {
	d := &net.Dialer{Timeout: probeTimeout}
	var conn net.Conn
	var err error
	if useTLS {
		conn, err = tls.DialWithDialer(d, "tcp", s.TLSAddr(), s.TLSConfig())
	} else {
		conn, err = d.Dial("tcp", s.Addr())
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	greeting, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return fmt.Errorf("unexpected greeting %q", strings.TrimSpace(greeting))
	}
	if _, err := fmt.Fprintf(conn, "a LOGIN %s %s\r\n", quote(s.User), quote(password)); err != nil {
		return err
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read LOGIN result: %w", err)
		}
		result, tagged := strings.CutPrefix(line, "a ")
		if !tagged {
			continue
		}
		if !strings.HasPrefix(result, "OK") {
			return fmt.Errorf("%w: %s", errLoginRejected, strings.TrimSpace(result))
		}
		_, _ = fmt.Fprint(conn, "b LOGOUT\r\n")
		return nil
	}
}

// quote returns s as an IMAP quoted string; checkCredentials has ruled out
// line breaks.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// stop ends Dovecot and removes its directory; it reports processes that
// outlived the master as a test error.
func (s *Server) stop(t testing.TB) {
	if t.Failed() {
		t.Logf("dovecottest: Dovecot logs at the end of the test:\n%s", s.logTail())
	}
	if leftovers := s.terminate(); leftovers {
		t.Errorf("dovecottest: processes of Dovecot's group %d outlived the master and were killed", s.cmd.Process.Pid)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Errorf("dovecottest: remove %s: %v", s.dir, err)
	}
}

// terminate sends SIGTERM to the master, waits for it (SIGKILL after
// stopTimeout), then makes sure its process group is empty. It reports
// whether any other member of the group had to be killed.
func (s *Server) terminate() (leftovers bool) {
	if s.cmd == nil {
		return false
	}
	pgid := s.cmd.Process.Pid
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
	if groupGone(pgid, stopTimeout) {
		return false
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	groupGone(pgid, stopTimeout)
	return true
}

// groupGone waits up to d for process group pgid to have no members
// other than zombies. Dovecot's log process can outlive the master by a
// moment and is then reaped by init, which in some containers never
// happens; a zombie holds no port, file or CPU, so it does not count.
func groupGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if n, ok := liveMembers(pgid); ok && n == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveMembers counts the processes of group pgid that are not zombies,
// from /proc; ok is false where there is no /proc.
func liveMembers(pgid int) (n int, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	want := strconv.Itoa(pgid)
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ..."; comm may hold spaces and ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			n++
		}
	}
	return n, true
}
