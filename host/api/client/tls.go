package client

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
)

// TLS errors.
var (
	// ErrInvalidCA reports a CA file that cannot be read or holds no PEM
	// certificate.
	ErrInvalidCA = errors.New("client: invalid CA file")
	// ErrUntrusted reports an https host whose certificate does not
	// verify against the trusted CAs (the system's, plus a CA file).
	ErrUntrusted = errors.New("client: the host's TLS certificate is not trusted")
	// ErrHTTPSOnly reports an http:// address of a host that serves
	// https.
	ErrHTTPSOnly = errors.New("client: the host serves https")
)

// maxCAFile bounds what WithCAFile reads.
const maxCAFile = 1 << 20

// WithCAFile returns an HTTP client that trusts, besides the system's
// CAs, the PEM certificates in caFile (the CA that signed the host's
// certificate, or a self-signed certificate itself). hc's transport is
// cloned when it is an *http.Transport; hc nil means a default client.
// The result reports TLS failures as WithTLSHints does.
func WithCAFile(hc *http.Client, caFile string) (*http.Client, error) {
	f, err := os.Open(caFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCA, err)
	}
	defer f.Close()
	pem, err := io.ReadAll(io.LimitReader(f, maxCAFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidCA, caFile, err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrInvalidCA, caFile)
	}
	var t *http.Transport
	if hc != nil {
		if ht, ok := hc.Transport.(*http.Transport); ok {
			t = ht.Clone()
		}
	}
	if t == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.RootCAs = pool
	t.TLSClientConfig.MinVersion = tls.VersionTLS12
	out := &http.Client{Transport: t}
	if hc != nil {
		out.Timeout, out.Jar, out.CheckRedirect = hc.Timeout, hc.Jar, hc.CheckRedirect
	}
	return WithTLSHints(out), nil
}

// WithTLSHints returns a client (hc, nil for a default one, with its
// transport wrapped) whose errors say what to do about TLS: an untrusted
// host certificate wraps ErrUntrusted (give its CA: the CLI's --ca-file or
// CONNHOST_CA_FILE), and an http:// request answered by a TLS listener
// wraps ErrHTTPSOnly (use https://).
func WithTLSHints(hc *http.Client) *http.Client {
	out := &http.Client{}
	if hc != nil {
		*out = *hc
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	if _, done := base.(tlsHints); !done {
		out.Transport = tlsHints{base: base}
	}
	return out
}

// tlsHints is WithTLSHints's transport.
type tlsHints struct{ base http.RoundTripper }

// httpsReply is what Go's TLS server answers a cleartext HTTP request.
var httpsReply = []byte("Client sent an HTTP request to an HTTPS server")

func (h tlsHints) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.base.RoundTrip(req)
	if err != nil {
		var (
			ua  x509.UnknownAuthorityError
			ci  x509.CertificateInvalidError
			hn  x509.HostnameError
			cve *tls.CertificateVerificationError
		)
		if errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &cve) {
			return nil, fmt.Errorf("%w (%w): pass the CA certificate that signed it with --ca-file or %s", ErrUntrusted, err, EnvCAFile)
		}
		return nil, err
	}
	if req.URL.Scheme == "http" && resp.StatusCode == http.StatusBadRequest {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if bytes.Contains(body, httpsReply) {
			resp.Body.Close()
			return nil, fmt.Errorf("%w: use https://%s in --addr (and --ca-file for its CA)", ErrHTTPSOnly, req.URL.Host)
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
	}
	return resp, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// EnvCAFile is the environment variable the CLI reads its CA file from
// (flag --ca-file).
const EnvCAFile = "CONNHOST_CA_FILE"
