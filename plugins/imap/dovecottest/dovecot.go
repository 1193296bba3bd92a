package dovecottest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

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
