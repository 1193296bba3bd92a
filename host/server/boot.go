package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/version"
)

// Boot refusals decided before anything is created or opened.
var (
	// ErrPluginDir reports a --plugin-dir that does not exist, is not a
	// directory, or cannot be read.
	ErrPluginDir = errors.New("server: the plugin dir is unusable")
	// ErrListen reports a listen address that cannot be bound (in use,
	// not local, not permitted).
	ErrListen = errors.New("server: cannot listen")
	// ErrTLS reports --tls-cert/--tls-key files that are unreadable, not
	// a certificate and its key, not each other's, or a key file group or
	// others may read.
	ErrTLS = errors.New("server: TLS certificate or key unusable")
)

// checkPluginDir returns dir made absolute, refusing one that does not
// exist, is not a directory or cannot be listed: a host without its
// connectors would report ready and refuse every run. An existing empty
// dir is served (empty reports it, for a warning).
func checkPluginDir(dir string) (abs string, empty bool, err error) {
	abs, err = filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("%w: %s: %w", ErrPluginDir, dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("%w: %s does not exist: build the plugins there (make build) or point --plugin-dir at the directory of connector binaries", ErrPluginDir, abs)
	case err != nil:
		return "", false, fmt.Errorf("%w: %s: %w (--plugin-dir)", ErrPluginDir, abs, err)
	case !fi.IsDir():
		return "", false, fmt.Errorf("%w: %s is not a directory (--plugin-dir names the directory of connector binaries)", ErrPluginDir, abs)
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return "", false, fmt.Errorf("%w: %s cannot be read: %w (--plugin-dir)", ErrPluginDir, abs, err)
	}
	return abs, len(ents) == 0, nil
}

// loadTLS returns the listener's TLS config, or nil when neither
// TLSCert nor TLSKey is set (Validate refuses one without the other). The
// key file must be private (0600, as the token file), and the pair must
// match.
func loadTLS(cfg *Config) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		return nil, nil
	}
	fi, err := os.Stat(cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-key %s: %w", ErrTLS, cfg.TLSKey, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: --tls-key %s: %w: mode %04o, want 0600 (chmod 600 %s)",
			ErrTLS, cfg.TLSKey, ErrInsecureFile, fi.Mode().Perm(), cfg.TLSKey)
	}
	if _, err := os.Stat(cfg.TLSCert); err != nil {
		return nil, fmt.Errorf("%w: --tls-cert %s: %w", ErrTLS, cfg.TLSCert, err)
	}
	pair, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		// The error names what is wrong (no PEM data, a key that does
		// not match the certificate), never the key's bytes.
		return nil, fmt.Errorf("%w: --tls-cert %s, --tls-key %s: %w", ErrTLS, cfg.TLSCert, cfg.TLSKey, err)
	}
	if pair.Leaf == nil && len(pair.Certificate) > 0 {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: --tls-cert %s: %w", ErrTLS, cfg.TLSCert, err)
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"}}, nil
}

// listen binds the listener, before anything is created: a busy port
// refuses a start that would otherwise have made a new data dir.
func listen(addr string, tc *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "address already in use") {
			hint = ": another process listens there (another connhost serve?); choose a free address with --listen"
		}
		return nil, fmt.Errorf("%w on %s: %w%s", ErrListen, addr, err, hint)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

// gate is the listener's handler: while the host starts (the store opens,
// the plugins are described) /healthz answers "starting", /readyz 503 and
// every other request 503 unavailable; once the host is assembled it hands
// every request to the real handler.
type gate struct {
	next atomic.Pointer[http.Handler]
}

func (g *gate) open(h http.Handler) { g.next.Store(&h) }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.next.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == "/healthz" {
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "starting", "version": version.Version})
		return
	}
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	_ = json.NewEncoder(w).Encode(apitypes.Error{Error: apitypes.ErrorBody{Code: apitypes.CodeUnavailable,
		Message: "the host is starting (opening the store, describing the plugins): retry shortly"}})
}
