package launch

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/connhost/connhost/sdk/wire"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// keyAlg is the kind of key of a TLS identity.
type keyAlg int

const (
	keyEd25519 keyAlg = iota
	keyP256
)

// tlsKeyAlg is the key of both the host's and every plugin's identity.
// BenchmarkTLSIdentity: making a launch's keys and certificates costs
// ≈0.26 ms with P-256 or Ed25519 (go-plugin's two P-521 ones ≈9.8 ms), and
// a mutual handshake ≈1 ms (P-521: ≈8 ms). In a whole launch
// (BenchmarkGoPluginTLS) P-256 came out ahead of Ed25519 (1.25–1.37× the
// launch without TLS, against 1.43–1.50×; AutoMTLS 5–6×), and every TLS
// stack a plugin of another SDK may use verifies it.
const tlsKeyAlg = keyP256

// certLifetime bounds both certificates. Neither is ever stored: the
// host's dies with the Launcher and each plugin's with its launch, so the
// lifetime only has to outlast the longest launch and the host's uptime.
const certLifetime = 30 * 365 * 24 * time.Hour

// identity is a private key and the self-signed certificate for it.
type identity struct {
	key  crypto.Signer
	cert tls.Certificate // Leaf is set
}

// newIdentity makes a key of alg and a self-signed certificate for it, for
// wire.TLSServerName, usable as client and as server. The certificate is
// no CA: a pool holding it trusts that one certificate and nothing its key
// might sign.
func newIdentity(alg keyAlg, cn string) (*identity, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case keyEd25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case keyP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return nil, fmt.Errorf("launch: unknown key algorithm %d", alg)
	}
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              []string{wire.TLSServerName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &identity{key: key, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, nil
}

// hostTLS is the host's side of mutual TLS with its plugins: one identity
// per Launcher, whose private key never leaves the host process.
type hostTLS struct {
	alg     keyAlg // of the host's and every plugin's key
	id      *identity
	certPEM string // the value of wire.EnvClientCert
}

func newHostTLS(alg keyAlg) (*hostTLS, error) {
	id, err := newIdentity(alg, "connhost host")
	if err != nil {
		return nil, fmt.Errorf("launch: making the host's TLS identity: %w", err)
	}
	return &hostTLS{
		alg:     alg,
		id:      id,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.cert.Certificate[0]})),
	}, nil
}

// launchTLS is one launch's TLS material: the plugin's fresh identity, to
// hand over in the child's environment, and the host's client
// configuration, which trusts that one certificate.
type launchTLS struct {
	config *tls.Config
	pinned *x509.CertPool
	env    []string
	key    string // the value of wire.EnvServerKey
}

// newLaunch makes a plugin identity for one launch.
func (h *hostTLS) newLaunch() (*launchTLS, error) {
	id, err := newIdentity(h.alg, "connhost plugin")
	if err != nil {
		return nil, fmt.Errorf("launch: making the plugin's TLS identity: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		return nil, fmt.Errorf("launch: encoding the plugin's TLS key: %w", err)
	}
	pinned := x509.NewCertPool()
	pinned.AddCert(id.cert.Leaf)
	key := base64.StdEncoding.EncodeToString(keyDER)
	return &launchTLS{
		// go-plugin dials with this configuration. A plugin that answers
		// with go-plugin's AutoMTLS prints its own certificate in the
		// handshake line, and go-plugin puts it in place of RootCAs.
		config: &tls.Config{
			Certificates: []tls.Certificate{h.id.cert},
			RootCAs:      pinned,
			ServerName:   wire.TLSServerName,
			// go-plugin's AutoMTLS minimum, for plugins of other SDKs;
			// this SDK's plugins and every Go plugin speak TLS 1.3.
			MinVersion: tls.VersionTLS12,
		},
		pinned: pinned,
		env: []string{
			wire.EnvClientCert + "=" + h.certPEM,
			wire.EnvServerCert + "=" + base64.StdEncoding.EncodeToString(id.cert.Certificate[0]),
			wire.EnvServerKey + "=" + key,
		},
		key: key,
	}, nil
}

// tlsConfig is the launch's go-plugin ClientConfig.TLSConfig: nil without
// TLS.
func (t *launchTLS) tlsConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.config
}

// childEnv is what the launch adds to the child's environment.
func (t *launchTLS) childEnv() []string {
	if t == nil {
		return nil
	}
	return t.env
}

// secrets are the values of the launch to redact: the plugin's key, as
// handed over and as the lines of the PEM body a plugin might print it in
// (the same base64, cut every 64 characters).
func (t *launchTLS) secrets() []string {
	if t == nil {
		return nil
	}
	var lines []string
	for rest := t.key; rest != ""; {
		n := min(64, len(rest))
		lines = append(lines, rest[:n])
		rest = rest[n:]
	}
	return []string{t.key, strings.Join(lines, "\n")}
}

// autoMTLS reports whether the plugin answered with go-plugin's AutoMTLS
// certificate instead of the one handed over: a plugin built on an older
// SDK, or on go-plugin alone.
func (t *launchTLS) autoMTLS() bool {
	return t != nil && t.config.RootCAs != t.pinned
}

// pingPlugin makes one call to go-plugin's health service over the
// launch's connection, bounded by ctx. gRPC connects lazily: without it a
// TLS handshake the host refuses would surface only as the first call's
// broken connection, not as the failed handshake it is.
func pingPlugin(ctx context.Context, rpc plugin.ClientProtocol) error {
	c, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		return nil
	}
	_, err := grpc_health_v1.NewHealthClient(c.Conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	return err
}
