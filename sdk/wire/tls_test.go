package wire

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// testIdentity is a certificate for TLSServerName and its key, as the host
// makes them.
type testIdentity struct {
	cert    tls.Certificate
	certB64 string
	keyB64  string
	certPEM string
}

func newTestIdentity(t *testing.T) testIdentity {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{TLSServerName},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testIdentity{
		cert:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		certB64: base64.StdEncoding.EncodeToString(der),
		keyB64:  base64.StdEncoding.EncodeToString(keyDER),
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
	}
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestServerTLSConfig(t *testing.T) {
	host, plugin, other := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	full := func(edit func(map[string]string)) map[string]string {
		env := map[string]string{EnvClientCert: host.certPEM, EnvServerCert: plugin.certB64, EnvServerKey: plugin.keyB64}
		if edit != nil {
			edit(env)
		}
		return env
	}
	for name, tc := range map[string]struct {
		env     map[string]string
		wantNil bool
		wantErr bool
	}{
		"handed over":                {env: full(nil)},
		"nothing: go-plugin decides": {env: map[string]string{}, wantNil: true},
		"only go-plugin's AutoMTLS":  {env: map[string]string{EnvClientCert: host.certPEM}, wantNil: true},
		"no key":                     {env: full(func(e map[string]string) { delete(e, EnvServerKey) }), wantErr: true},
		"no certificate":             {env: full(func(e map[string]string) { delete(e, EnvServerCert) }), wantErr: true},
		"empty key":                  {env: full(func(e map[string]string) { e[EnvServerKey] = "" }), wantErr: true},
		"key not base64":             {env: full(func(e map[string]string) { e[EnvServerKey] = "%%%" }), wantErr: true},
		"key of another certificate": {env: full(func(e map[string]string) { e[EnvServerKey] = other.keyB64 }), wantErr: true},
		"no host certificate":        {env: full(func(e map[string]string) { delete(e, EnvClientCert) }), wantErr: true},
		"host certificate not PEM":   {env: full(func(e map[string]string) { e[EnvClientCert] = host.certB64 }), wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := ServerTLSConfig(lookupIn(tc.env))
			switch {
			case tc.wantErr:
				if !errors.Is(err, ErrTLSEnv) || cfg != nil {
					t.Fatalf("ServerTLSConfig = %v, %v; want ErrTLSEnv", cfg, err)
				}
				if k := tc.env[EnvServerKey]; len(k) > 8 && strings.Contains(err.Error(), k) {
					t.Errorf("error holds the key: %v", err)
				}
			case tc.wantNil:
				if cfg != nil || err != nil {
					t.Fatalf("ServerTLSConfig = %v, %v; want nil, nil", cfg, err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.MinVersion != tls.VersionTLS13 {
					t.Errorf("ClientAuth %v, MinVersion %x; want RequireAndVerifyClientCert, TLS 1.3", cfg.ClientAuth, cfg.MinVersion)
				}
			}
		})
	}
}

// The configuration serves the host, and only the host.
func TestServerTLSConfigHandshake(t *testing.T) {
	host, plugin, other := newTestIdentity(t), newTestIdentity(t), newTestIdentity(t)
	srv, err := ServerTLSConfig(lookupIn(map[string]string{EnvClientCert: host.certPEM, EnvServerCert: plugin.certB64, EnvServerKey: plugin.keyB64}))
	if err != nil {
		t.Fatal(err)
	}
	pluginLeaf, _ := x509.ParseCertificate(plugin.cert.Certificate[0])
	pinned := x509.NewCertPool()
	pinned.AddCert(pluginLeaf)
	for name, tc := range map[string]struct {
		certs []tls.Certificate
		ok    bool
	}{
		"the host":                    {certs: []tls.Certificate{host.cert}, ok: true},
		"no certificate":              {},
		"another certificate":         {certs: []tls.Certificate{other.cert}},
		"host certificate, other key": {certs: []tls.Certificate{{Certificate: host.cert.Certificate, PrivateKey: other.cert.PrivateKey}}},
	} {
		t.Run(name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			defer s.Close()
			srvErr := make(chan error, 1)
			go func() { srvErr <- tls.Server(s, srv).Handshake() }()
			cli := tls.Client(c, &tls.Config{Certificates: tc.certs, RootCAs: pinned, ServerName: TLSServerName})
			cliErr := cli.Handshake()
			if cliErr == nil {
				// TLS 1.3: the client learns of a refusal on its first read.
				_ = cli.SetReadDeadline(time.Now().Add(time.Second))
				_, cliErr = cli.Read(make([]byte, 1))
				if ne, ok := cliErr.(net.Error); ok && ne.Timeout() {
					cliErr = nil
				}
			}
			err := <-srvErr
			if tc.ok && (err != nil || cliErr != nil) {
				t.Fatalf("refused: server %v, client %v", err, cliErr)
			}
			if !tc.ok && err == nil {
				t.Fatal("served")
			}
		})
	}
}
