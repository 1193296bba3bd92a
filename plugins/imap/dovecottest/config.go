package dovecottest

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"text/template"
)

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
