package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

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
