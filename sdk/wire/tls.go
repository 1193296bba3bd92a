package wire

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Mutual TLS between host and plugin.
//
// go-plugin's AutoMTLS makes a fresh P-521 key and certificate on both
// sides of every launch. The connhost host instead hands the plugin its
// whole TLS identity in the environment: a cheap key (P-256 or Ed25519)
// and a certificate it made for this one launch, and pins exactly that
// certificate. Serve builds the plugin's server configuration from them
// (ServerTLSConfig), so the plugin spends nothing on keys, and the
// handshake line carries no certificate.
//
// The host's own certificate arrives, as under AutoMTLS, in
// EnvClientCert: the plugin requires every client to present it and prove
// it holds its key. A plugin built on an SDK without this (or any plain
// go-plugin plugin) ignores the two CONNHOST_ variables and answers the
// host's EnvClientCert with go-plugin's AutoMTLS, which the host accepts;
// and a plugin of this SDK started by a plain go-plugin host (no
// CONNHOST_ variables) falls back to AutoMTLS the same way.
const (
	// EnvClientCert is go-plugin's AutoMTLS variable: the host's
	// certificate, PEM. Public.
	EnvClientCert = "PLUGIN_CLIENT_CERT"
	// EnvServerCert is the plugin's certificate for this launch, base64
	// (standard, padded) of its DER. Public.
	EnvServerCert = "CONNHOST_PLUGIN_TLS_CERT"
	// EnvServerKey is the plugin's private key for this launch, base64
	// (standard, padded) of its PKCS #8 DER. Secret: the host redacts it
	// like a credential, and Serve removes it (and EnvServerCert) from the
	// process environment once read, so the connector's own children never
	// inherit it.
	EnvServerKey = "CONNHOST_PLUGIN_TLS_KEY"
	// TLSServerName is the DNS name in both certificates and the name the
	// host verifies, as go-plugin's AutoMTLS does.
	TLSServerName = "localhost"
)

// ErrTLSEnv is wrapped by ServerTLSConfig's errors: the host set the
// plugin's TLS variables but they do not make a usable identity.
var ErrTLSEnv = errors.New("wire: bad plugin TLS environment")

// ServerTLSConfig returns the plugin's server TLS configuration built from
// the environment read through lookup: the certificate and key of
// EnvServerCert and EnvServerKey, TLS 1.3, and every client required to
// present the certificate of EnvClientCert and to prove it holds its key.
//
// It returns nil and no error when neither EnvServerCert nor EnvServerKey
// is set: the host did not hand out an identity, and go-plugin's own
// AutoMTLS (or no TLS) applies. When either is set, a missing or malformed
// value is an error wrapping ErrTLSEnv, never a weaker configuration. The
// key never appears in an error.
func ServerTLSConfig(lookup func(string) (string, bool)) (*tls.Config, error) {
	certB64, hasCert := lookup(EnvServerCert)
	keyB64, hasKey := lookup(EnvServerKey)
	if !hasCert && !hasKey {
		return nil, nil
	}
	certDER, err := base64.StdEncoding.DecodeString(certB64)
	if err != nil || !hasCert {
		return nil, fmt.Errorf("%w: %s is not base64 DER", ErrTLSEnv, EnvServerCert)
	}
	keyDER, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil || !hasKey {
		return nil, fmt.Errorf("%w: %s is not base64 DER", ErrTLSEnv, EnvServerKey)
	}
	cert, err := tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	)
	if err != nil {
		// X509KeyPair's errors name no key material.
		return nil, fmt.Errorf("%w: %s and %s: %v", ErrTLSEnv, EnvServerCert, EnvServerKey, err)
	}
	hostPEM, _ := lookup(EnvClientCert)
	clients := x509.NewCertPool()
	if !clients.AppendCertsFromPEM([]byte(hostPEM)) {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrTLSEnv, EnvClientCert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		// go-plugin's broker dials the host with this configuration.
		RootCAs:    clients,
		ServerName: TLSServerName,
		MinVersion: tls.VersionTLS13,
	}, nil
}

// serverTLS is Serve's go-plugin TLSProvider: ServerTLSConfig from the
// process environment, which then forgets the plugin's identity.
func serverTLS() (*tls.Config, error) {
	cfg, err := ServerTLSConfig(os.LookupEnv)
	_ = os.Unsetenv(EnvServerKey)
	_ = os.Unsetenv(EnvServerCert)
	return cfg, err
}
