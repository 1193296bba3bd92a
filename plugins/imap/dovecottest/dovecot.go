package dovecottest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const (
	// startAttempts bounds the retries when another process takes a
	// listener port between picking it and Dovecot binding it.
	startAttempts = 3
	// readyTimeout bounds the wait for the first successful logins.
	readyTimeout = 20 * time.Second
	// probeTimeout bounds one readiness or password probe connection.
	probeTimeout = 5 * time.Second
	// stopTimeout bounds the wait for the master (and then its process
	// group) to exit after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// logTailLines is how much of dovecot.log failure messages quote.
	logTailLines = 40
	// nobodyID is the uid and gid mail is stored as when running as root.
	nobodyID = 65534
)

var (
	// errPortInUse means Dovecot could not bind a listener port; Start
	// retries with new ports.
	errPortInUse = errors.New("dovecottest: listener port already in use")
	// errStartFailed means Dovecot exited or logged a fatal error before
	// it was ready.
	errStartFailed = errors.New("dovecottest: dovecot failed to start")
	// errLoginRejected means Dovecot answered LOGIN with NO or BAD.
	errLoginRejected = errors.New("dovecottest: login rejected")
)

// Server is a Dovecot started for one test.
type Server struct {
	Host     string // "127.0.0.1"
	Port     int    // plaintext + STARTTLS listener
	TLSPort  int    // implicit TLS listener
	CAFile   string // PEM file of the CA that signed the server certificate (for the connector's ca_file)
	CertPool *x509.CertPool
	User     string
	// Password is the user's current password. SetPassword changes it;
	// do not call SetPassword concurrently with methods that log in.
	Password string

	dir     string // temp dir holding config, certificates, sockets, mail and logs
	conf    string // dovecot.conf path
	doveadm string // doveadm binary
	id      identity
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait has returned
	// passwdMtime is the mtime last given to the passwd file.
	passwdMtime time.Time
}

// Start starts Dovecot with one user (user, password) and returns when it
// accepts logins on both ports; t.Cleanup stops it (SIGTERM to the master,
// wait, kill leftovers of its process group, remove the directory).
//
// When dovecot is not installed the test is skipped, except under CI=true,
// where it fails: CI must install the dovecot-imapd package.
func Start(t testing.TB, user, password string) *Server {
	t.Helper()
	if err := checkCredentials(user, password); err != nil {
		t.Fatal(err)
	}
	dovecot, errDovecot := findBinary("dovecot")
	doveadm, errDoveadm := findBinary("doveadm")
	if err := errors.Join(errDovecot, errDoveadm); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dovecottest: %v; CI must install the dovecot-imapd package (apt-get install dovecot-imapd)", err)
		}
		t.Skipf("dovecottest: %v; install dovecot-imapd to run this test", err)
	}
	for attempt := 1; ; attempt++ {
		s, err := start(dovecot, doveadm, user, password)
		if err == nil {
			t.Cleanup(func() { s.stop(t) })
			return s
		}
		if errors.Is(err, errPortInUse) && attempt < startAttempts {
			t.Logf("dovecottest: attempt %d: %v; retrying with other ports", attempt, err)
			continue
		}
		t.Fatalf("dovecottest: start dovecot (attempt %d): %v", attempt, err)
	}
}

// Addr returns host:Port, the plaintext and STARTTLS listener.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// TLSAddr returns host:TLSPort, the implicit TLS listener.
func (s *Server) TLSAddr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.TLSPort)) }

// TLSConfig returns a client TLS configuration that trusts only the
// server's CA.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CertPool, MinVersion: tls.VersionTLS12}
}

// Dial returns a client logged in as User over implicit TLS, closed at
// cleanup.
func (s *Server) Dial(t testing.TB) *imapclient.Client {
	t.Helper()
	c, err := s.login()
	if err != nil {
		t.Fatalf("dovecottest: log in as %s at %s: %v", s.User, s.TLSAddr(), err)
	}
	t.Cleanup(func() { closeClient(c) })
	return c
}

// Log returns the contents of dovecot.log, for failure output and for
// checking that a canary never reached the server's log.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "dovecot.log"))
	if err != nil {
		return ""
	}
	return string(b)
}

// start makes one attempt: fresh directory, certificates, ports, config,
// then the master process and the readiness probes. On failure nothing of
// it is left behind.
func start(dovecot, doveadm, user, password string) (_ *Server, err error) {
	// os.MkdirTemp rather than t.TempDir: Dovecot's unix sockets live
	// under base_dir and their paths must stay short.
	dir, err := os.MkdirTemp("", "dovecot")
	if err != nil {
		return nil, err
	}
	s := &Server{
		Host:     "127.0.0.1",
		User:     user,
		Password: password,
		dir:      dir,
		conf:     filepath.Join(dir, "dovecot.conf"),
		doveadm:  doveadm,
	}
	defer func() {
		if err != nil {
			s.terminate()
			_ = os.RemoveAll(dir)
		}
	}()
	if err := s.prepare(); err != nil {
		return nil, err
	}
	if err := s.launch(dovecot); err != nil {
		return nil, err
	}
	if err := s.waitReady(); err != nil {
		return nil, err
	}
	return s, nil
}

// identity says which users Dovecot runs as. As root these are the
// distribution's users and mail belongs to nobody; otherwise everything
// runs as the current user (Dovecot's non-root mode).
type identity struct {
	LoginUser, InternalUser, InternalGroup string
	UID, GID                               int
	// Unprivileged: the login processes cannot chroot.
	Unprivileged bool
}

func currentIdentity() (identity, error) {
	if os.Geteuid() == 0 {
		return identity{LoginUser: "dovenull", InternalUser: "dovecot", InternalGroup: "dovecot", UID: nobodyID, GID: nobodyID}, nil
	}
	u, err := user.Current()
	if err != nil {
		return identity{}, fmt.Errorf("dovecottest: current user: %w", err)
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getegid()))
	if err != nil {
		return identity{}, fmt.Errorf("dovecottest: current group: %w", err)
	}
	return identity{LoginUser: u.Username, InternalUser: u.Username, InternalGroup: g.Name,
		UID: os.Geteuid(), GID: os.Getegid(), Unprivileged: true}, nil
}

// prepare writes everything Dovecot reads: certificates, passwd file,
// mail home and dovecot.conf.
func (s *Server) prepare() error {
	var err error
	if s.id, err = currentIdentity(); err != nil {
		return err
	}
	id := s.id
	// Dovecot's unprivileged processes must traverse the directory.
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return err
	}
	if s.CertPool, err = writeCertificates(s.dir); err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.dir, "ca.pem")
	if err := s.writePasswd(s.Password); err != nil {
		return err
	}
	home := filepath.Join(s.dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(home, id.UID, id.GID); err != nil {
			return err
		}
	}
	if s.Port, s.TLSPort, err = freePorts(); err != nil {
		return err
	}
	var conf bytes.Buffer
	if err := confTemplate.Execute(&conf, struct {
		identity
		Dir           string
		Port, TLSPort int
	}{id, s.dir, s.Port, s.TLSPort}); err != nil {
		return err
	}
	return os.WriteFile(s.conf, conf.Bytes(), 0o644)
}

// confTemplate is the throwaway configuration. The anvil-auth-penalty
// listener is made unusable (mode 0) so that the auth process runs without
// its per-IP penalty: otherwise each failed login from 127.0.0.1 would
// delay the following ones by seconds.
var confTemplate = template.Must(template.New("dovecot.conf").Parse(`# Written by dovecottest for one test; removed when the test ends.
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{{.Dir}}/cert.pem
ssl_key = <{{.Dir}}/key.pem
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
first_valid_uid = 1
mail_location = maildir:{{.Dir}}/home/%u/Maildir
default_login_user = {{.LoginUser}}
default_internal_user = {{.InternalUser}}
default_internal_group = {{.InternalGroup}}
passdb {
  driver = passwd-file
  args = scheme=PLAIN {{.Dir}}/passwd
}
userdb {
  driver = static
  args = uid={{.UID}} gid={{.GID}} home={{.Dir}}/home/%u
}
service imap-login {
{{- if .Unprivileged}}
  chroot =
{{- end}}
  inet_listener imap {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = {{.TLSPort}}
    ssl = yes
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`))

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

// login opens an implicit TLS client and logs in as User.
func (s *Server) login() (*imapclient.Client, error) {
	c, err := imapclient.DialTLS(s.TLSAddr(), &imapclient.Options{
		TLSConfig: s.TLSConfig(),
		Dialer:    &net.Dialer{Timeout: probeTimeout},
	})
	if err != nil {
		return nil, err
	}
	if err := c.Login(s.User, s.Password).Wait(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// closeClient logs out politely, then closes.
func closeClient(c *imapclient.Client) {
	_ = c.Logout().Wait()
	_ = c.Close()
}

// session runs fn on a fresh logged-in client, failing t on any error.
func (s *Server) session(t testing.TB, what string, fn func(c *imapclient.Client) error) {
	t.Helper()
	c, err := s.login()
	if err != nil {
		t.Fatalf("dovecottest: %s: log in as %s: %v", what, s.User, err)
	}
	defer closeClient(c)
	if err := fn(c); err != nil {
		t.Fatalf("dovecottest: %s: %v", what, err)
	}
}

// CreateMailbox creates mailbox name.
func (s *Server) CreateMailbox(t testing.TB, name string) {
	t.Helper()
	s.session(t, "create mailbox "+name, func(c *imapclient.Client) error {
		return c.Create(name, nil).Wait()
	})
}

// Append appends msg to mailbox with flags and returns its UID (from the
// UIDPLUS APPENDUID response code).
func (s *Server) Append(t testing.TB, mailbox string, msg []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	var uid imap.UID
	s.session(t, "append to "+mailbox, func(c *imapclient.Client) error {
		cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{Flags: flags})
		if _, err := cmd.Write(msg); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		data, err := cmd.Wait()
		if err != nil {
			return err
		}
		if data.UID == 0 {
			return errors.New("no APPENDUID in the response")
		}
		uid = data.UID
		return nil
	})
	return uid
}

// SetFlags replaces the flags of message uid in mailbox (STORE FLAGS).
func (s *Server) SetFlags(t testing.TB, mailbox string, uid imap.UID, flags ...imap.Flag) {
	t.Helper()
	s.session(t, fmt.Sprintf("set flags of %s UID %d", mailbox, uid), func(c *imapclient.Client) error {
		if _, err := c.Select(mailbox, nil).Wait(); err != nil {
			return err
		}
		store := &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: flags}
		msgs, err := c.Store(imap.UIDSetNum(uid), store, nil).Collect()
		if err != nil {
			return err
		}
		// STORE on a missing UID is not an error in IMAP; its empty
		// answer is the only sign.
		if len(msgs) == 0 {
			return errors.New("no such message")
		}
		return nil
	})
}

// UIDValidity returns mailbox's UIDVALIDITY (from STATUS).
func (s *Server) UIDValidity(t testing.TB, mailbox string) uint32 {
	t.Helper()
	var v uint32
	s.session(t, "status of "+mailbox, func(c *imapclient.Client) error {
		data, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			return err
		}
		v = data.UIDValidity
		return nil
	})
	return v
}

// SetUIDValidity sets mailbox's UIDVALIDITY with doveadm mailbox update,
// as an administrator rebuilding a mailbox would change it.
func (s *Server) SetUIDValidity(t testing.TB, mailbox string, v uint32) {
	t.Helper()
	cmd := exec.Command(s.doveadm, "-c", s.conf, "mailbox", "update", "-u", s.User,
		"--uid-validity", strconv.FormatUint(uint64(v), 10), mailbox)
	cmd.Dir = s.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dovecottest: doveadm mailbox update %s: %v\n%s", mailbox, err, bytes.TrimSpace(out))
	}
}

// SetPassword rewrites the passwd file with a new password for User and
// returns once Dovecot accepts it, without a restart: passwd-file re-reads
// the file when its mtime (in seconds) or size changes, so the mtime is
// moved forward past the previous one.
func (s *Server) SetPassword(t testing.TB, password string) {
	t.Helper()
	if err := checkCredentials(s.User, password); err != nil {
		t.Fatal(err)
	}
	if err := s.writePasswd(password); err != nil {
		t.Fatalf("dovecottest: rewrite passwd file: %v", err)
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.probe(true, password)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecottest: the new password is not accepted after %v: %v\n%s", readyTimeout, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Password = password
}

// writePasswd replaces the passwd file atomically. Its mtime is moved to a
// second later than the last one so passwd-file notices even two writes of
// equal size within one second.
func (s *Server) writePasswd(password string) error {
	path := filepath.Join(s.dir, "passwd")
	tmp := path + ".new"
	line := s.User + ":{PLAIN}" + password + "\n"
	if err := os.WriteFile(tmp, []byte(line), 0o600); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// The auth process reads the file as the internal user.
		u, err := user.Lookup(s.id.InternalUser)
		if err != nil {
			return err
		}
		gid, err := strconv.Atoi(u.Gid)
		if err != nil {
			return err
		}
		if err := os.Chown(tmp, 0, gid); err != nil {
			return err
		}
		if err := os.Chmod(tmp, 0o640); err != nil {
			return err
		}
	}
	mtime := time.Now().Truncate(time.Second)
	if !mtime.After(s.passwdMtime) {
		mtime = s.passwdMtime.Add(time.Second)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	s.passwdMtime = mtime
	return nil
}

// checkCredentials rejects what the passwd-file format or the mail
// location cannot hold. The password never appears in the error.
func checkCredentials(user, password string) error {
	if user == "" || strings.ContainsAny(user, ":/\\\"% \t\r\n") {
		return fmt.Errorf("dovecottest: user %q must be non-empty and free of ':', '/', '\\', '\"', '%%' and white space", user)
	}
	if password == "" || strings.ContainsAny(password, ":\r\n\x00") {
		return errors.New("dovecottest: the password must be non-empty and free of ':', NUL and line breaks")
	}
	return nil
}

// findBinary looks for name in PATH, then in the sbin directories a
// non-root PATH often lacks.
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or sbin", name)
}

// freePorts returns two distinct loopback ports that were free a moment
// ago; Start retries if one is taken before Dovecot binds it.
func freePorts() (int, int, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}

// writeCertificates writes ca.pem, cert.pem and key.pem (0600) into dir:
// a fresh ECDSA P-256 CA and a leaf for 127.0.0.1 and localhost, valid
// from an hour ago for a day. It returns a pool holding the CA.
func writeCertificates(dir string) (*x509.CertPool, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dovecottest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return nil, err
	}
	files := []struct {
		name  string
		block *pem.Block
		mode  os.FileMode
	}{
		{"ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: caDER}, 0o644},
		{"cert.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leafDER}, 0o644},
		{"key.pem", &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}, 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), pem.EncodeToMemory(f.block), f.mode); err != nil {
			return nil, err
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(err)
	}
	return n
}
