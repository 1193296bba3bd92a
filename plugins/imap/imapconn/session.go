package imapconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/charset"
)

// session is one logged-in IMAP connection.
type session struct {
	c    *imapclient.Client
	conn *idleConn
	addr string
	// stop ends the watch that closes the connection when ctx ends.
	stop func() bool
}

// dial connects to the server cfg names, secures the connection as cfg
// says, waits for the greeting and logs in. Every failure is typed: a
// network or TLS failure is retryable and says which, a refused login is
// a rejected credential.
func (c *Connector) dial(ctx context.Context, cfg *Config, username, password string) (*session, error) {
	if strings.ContainsFunc(username+password, isControl) {
		return nil, &sdk.Error{Code: codeCredentialRejected, Message: ErrInvalidCredential.Error(), Err: ErrInvalidCredential}
	}
	var tlsConf *tls.Config
	if !cfg.InsecurePlaintext {
		var err error
		if tlsConf, err = tlsConfig(cfg); err != nil {
			return nil, err
		}
	}
	addr := cfg.Addr()
	// Connecting, the TLS handshake, the greeting, STARTTLS and the login
	// share one deadline: a server that answers a byte at a time cannot
	// stretch it.
	start := time.Now()
	d := net.Dialer{Timeout: c.dialTimeout()}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, netFailure(ctx, addr, "connect", err)
	}
	// Until the login is done, the server answers within the dial
	// timeout; then within the idle timeout.
	ic := newIdleConn(raw, c.dialTimeout())
	ic.armFixed(start)
	conn := net.Conn(ic)
	// Subjects and names in RFC 2047 words of any charset (windows-1252,
	// ISO-2022-JP, KOI8-R…), not only the three mime knows.
	opts := &imapclient.Options{TLSConfig: tlsConf, Dialer: &d, WordDecoder: &mime.WordDecoder{CharsetReader: charset.Reader}}
	var cl *imapclient.Client
	switch {
	case cfg.InsecurePlaintext:
		cl = imapclient.New(conn, opts)
	case cfg.TLS == TLSImplicit:
		tc := tls.Client(conn, tlsConf)
		hctx, cancel := context.WithDeadline(ctx, start.Add(c.dialTimeout()))
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, netFailure(ctx, addr, "TLS handshake", err)
		}
		cl = imapclient.New(tc, opts)
	default:
		// NewStartTLS reads the greeting, sends STARTTLS and shakes hands;
		// it closes conn when any of that fails.
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		cl, err = imapclient.NewStartTLS(conn, opts)
		stop()
		if err != nil {
			return nil, netFailure(ctx, addr, "STARTTLS", ic.explain(err))
		}
	}
	s := &session{c: cl, conn: ic, addr: addr}
	s.stop = context.AfterFunc(ctx, func() { cl.Close() })
	if err := cl.WaitGreeting(); err != nil {
		s.close()
		return nil, netFailure(ctx, addr, "greeting", ic.explain(err))
	}
	if cl.Caps().Has(imap.CapLoginDisabled) {
		s.close()
		return nil, &sdk.Error{Code: codeInvalidConfig, Err: ErrInvalidConfig,
			Message: fmt.Sprintf("%s refuses LOGIN on this connection (LOGINDISABLED): use tls implicit or starttls", addr)}
	}
	if err := cl.Login(username, password).Wait(); err != nil {
		s.close()
		return nil, loginFailure(ctx, addr, ic.explain(err))
	}
	ic.disarm()
	ic.setIdle(c.idleTimeout())
	return s, nil
}

// do runs one command (fn sends it and waits for its answer) with the
// idle clock running.
func (s *session) do(fn func() error) error {
	s.conn.arm()
	defer s.conn.disarm()
	return s.conn.explain(fn())
}

// capabilities returns the server's capabilities, asking for them (with
// the idle clock running) when the login's answer did not carry them.
func (s *session) capabilities() imap.CapSet {
	var caps imap.CapSet
	_ = s.do(func() error { caps = s.c.Caps(); return nil })
	return caps
}

// close logs out, bounded, and closes the connection.
func (s *session) close() {
	if s.stop != nil {
		s.stop()
	}
	if s.c.State() == imap.ConnStateAuthenticated || s.c.State() == imap.ConnStateSelected {
		done := make(chan struct{})
		go func() { _ = s.c.Logout().Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	_ = s.c.Close()
}

// tlsConfig returns the TLS settings: the system's roots, or CAFile's.
func tlsConfig(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("%w: ca_file: %v", ErrInvalidConfig, unwrapPath(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: ca_file: %s holds no PEM certificate", ErrInvalidConfig, cfg.CAFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

// netFailure types a failure to reach or secure the server. It is
// retryable: the network and the server's certificate can change without
// the connection's config changing. A cancelled run returns ctx's error.
func netFailure(ctx context.Context, addr, step string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if tlsErr := tlsCause(err); tlsErr != "" {
		return sdk.Retryable(&sdk.Error{Code: codeConnectorFailed, Err: fmt.Errorf("%w: %s: %v", ErrTLS, addr, err),
			Message: fmt.Sprintf("TLS failure with %s (%s): %s", addr, step, tlsErr)})
	}
	if ie := imapError(err); ie != nil {
		return commandFailure(ctx, addr, step, err)
	}
	cause := netCause(err)
	if step == "STARTTLS" && cause == causeClosed {
		cause += ": is the port right for starttls (143), or does it speak implicit TLS (993)?"
	}
	return sdk.Retryable(&sdk.Error{Code: codeConnectorFailed, Err: fmt.Errorf("%w: %s: %v", ErrNetwork, addr, err),
		Message: fmt.Sprintf("network failure with %s (%s): %s", addr, step, cause)})
}

// loginFailure types a failed LOGIN: NO is a rejected credential unless
// the server says it is unavailable or needs TLS.
func loginFailure(ctx context.Context, addr string, err error) error {
	ie := imapError(err)
	if ie == nil || ie.Type != imap.StatusResponseTypeNo {
		return netFailure(ctx, addr, "login", err)
	}
	switch ie.Code {
	case imap.ResponseCodeUnavailable:
		return sdk.Retryable(&sdk.Error{Code: codeConnectorFailed, Err: fmt.Errorf("%w: %s", ErrUnavailable, addr),
			Message: fmt.Sprintf("%s is unavailable: %s", addr, serverText(ie))})
	case imap.ResponseCodePrivacyRequired:
		return &sdk.Error{Code: codeInvalidConfig, Err: ErrInvalidConfig,
			Message: fmt.Sprintf("%s refuses a login without TLS: %s", addr, serverText(ie))}
	}
	return &sdk.Error{Code: codeCredentialRejected, Err: fmt.Errorf("%w: %s", ErrLoginRefused, addr),
		Message: fmt.Sprintf("%s refused the login: %s", addr, serverText(ie))}
}

// commandFailure types a failed command after login.
func commandFailure(ctx context.Context, addr, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	ie := imapError(err)
	if ie == nil {
		return netFailure(ctx, addr, what, err)
	}
	if ie.Type == imap.StatusResponseTypeBye || ie.Code == imap.ResponseCodeUnavailable || ie.Code == imap.ResponseCodeInUse {
		return sdk.Retryable(&sdk.Error{Code: codeConnectorFailed, Err: fmt.Errorf("%w: %s", ErrUnavailable, addr),
			Message: fmt.Sprintf("%s is unavailable (%s): %s", addr, what, serverText(ie))})
	}
	return &sdk.Error{Code: codeConnectorFailed, Err: fmt.Errorf("%w: %s: %s", ErrProtocol, what, ie.Text),
		Message: fmt.Sprintf("%s: %s refused: %s", addr, what, serverText(ie))}
}

// imapError returns the server's status response in err's chain.
func imapError(err error) *imap.Error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie
	}
	return nil
}

// serverText is the status response's code and text, bounded: servers
// word them for people, and some echo the login.
func serverText(ie *imap.Error) string {
	t := strings.TrimSpace(ie.Text)
	if len(t) > 200 {
		t = t[:200] + "…"
	}
	t = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, t)
	if ie.Code != "" {
		return fmt.Sprintf("%s [%s] %s", ie.Type, ie.Code, t)
	}
	return fmt.Sprintf("%s %s", ie.Type, t)
}

// tlsCause describes a TLS failure in err's chain, or returns "".
func tlsCause(err error) string {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		alert    tls.AlertError
	)
	switch {
	case errors.As(err, &unknown):
		return "the server's certificate is signed by an authority this host does not trust (set ca_file for a private CA)"
	case errors.As(err, &hostname):
		return fmt.Sprintf("the server's certificate is not for this host: %v", hostname)
	case errors.As(err, &invalid):
		return fmt.Sprintf("the server's certificate is not valid: %v", invalid)
	case errors.As(err, &verify):
		return fmt.Sprintf("the server's certificate was refused: %v", verify.Err)
	case errors.As(err, &header):
		return "the server did not answer in TLS: is the port right for tls implicit (993), or does it need starttls (143)?"
	case errors.As(err, &alert):
		return fmt.Sprintf("the server ended the handshake: %v", alert)
	case strings.Contains(err.Error(), "tls: "):
		return err.Error()
	case strings.Contains(err.Error(), "STARTTLS"):
		return "the server does not offer STARTTLS: " + err.Error()
	}
	return ""
}

// causeClosed is netCause's words for a connection the server closed.
const causeClosed = "the server closed the connection"

// netCause describes a network failure for an operator.
func netCause(err error) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot resolve %s: %s", dns.Name, dns.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return causeClosed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	return err.Error()
}

// unwrapPath drops the *PathError's op from err: "open /x: no such
// file" becomes "/x: no such file".
func unwrapPath(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// idleConn is a net.Conn whose reads fail when the server stays silent
// for the idle limit while a command waits for its answer: a server that
// stops answering fails the run with a timeout instead of holding it
// until its deadline. The limit runs from the last byte received, not
// from each Read, so the retries of a reader after a timeout do not start
// it over. Between commands (while records wait for the host) the
// client's reader may wait forever; arm and disarm bracket each command.
type idleConn struct {
	net.Conn
	// idle is the limit in nanoseconds: the dial timeout until the login
	// is done, then the idle timeout.
	idle atomic.Int64
	// last is when the last byte arrived or the last command started,
	// in UnixNano.
	last atomic.Int64
	// readErr is the first error a Read returned. go-imap reports a
	// failed read with the error's text only (not wrapped), so a timeout
	// or a hang-up is recognized from here.
	readErr atomic.Pointer[error]

	// mu orders arm, disarm and a Read's deadline, so a Read that starts
	// as a command ends cannot leave a deadline set between commands.
	mu   sync.Mutex
	busy bool
	// fixed keeps the deadline where arm put it: bytes received do not
	// move it (the dial phase).
	fixed bool
}

func newIdleConn(c net.Conn, idle time.Duration) *idleConn {
	ic := &idleConn{Conn: c}
	ic.idle.Store(int64(idle))
	return ic
}

// setIdle changes the limit for the commands that follow.
func (c *idleConn) setIdle(d time.Duration) { c.idle.Store(int64(d)) }

// explain adds the transport's own error to err, a failure of the client
// that is not the server's answer, so errors.Is sees a timeout or an EOF.
func (c *idleConn) explain(err error) error {
	if err == nil || imapError(err) != nil {
		return err
	}
	if p := c.readErr.Load(); p != nil && !errors.Is(err, *p) {
		return fmt.Errorf("%w (%w)", err, *p)
	}
	return err
}

// deadline is when the server's silence ends the wait.
func (c *idleConn) deadline() time.Time {
	return time.Unix(0, c.last.Load()).Add(time.Duration(c.idle.Load()))
}

// arm starts the idle clock, for a Read already waiting too.
func (c *idleConn) arm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last.Store(time.Now().UnixNano())
	c.busy = true
	_ = c.Conn.SetReadDeadline(c.deadline())
}

// armFixed starts a clock that runs from start and that bytes received
// do not restart, until disarm.
func (c *idleConn) armFixed(start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last.Store(start.UnixNano())
	c.busy, c.fixed = true, true
	_ = c.Conn.SetReadDeadline(c.deadline())
}

// disarm stops it, for a Read already waiting too.
func (c *idleConn) disarm() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy, c.fixed = false, false
	_ = c.Conn.SetReadDeadline(time.Time{})
}

// Read reads with the idle deadline while a command waits. Otherwise the
// deadline is go-imap's own: none while it waits for a response to start,
// 30 s for the rest of a response, 5 minutes for a literal.
func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if c.busy {
		_ = c.Conn.SetReadDeadline(c.deadline())
	}
	fixed := c.fixed
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if n > 0 && !fixed {
		c.last.Store(time.Now().UnixNano())
	}
	if err != nil {
		c.readErr.CompareAndSwap(nil, &err)
	}
	return n, err
}
