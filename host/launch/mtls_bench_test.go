package launch

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
)

// goPluginCert is what go-plugin's AutoMTLS does on each side of every
// launch (mtls.go generateCert, then tls.X509KeyPair): a P-521 key and a
// self-signed certificate, PEM-encoded and parsed back.
func goPluginCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"HashiCorp"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		SerialNumber:          sn,
		NotBefore:             time.Now().Add(-30 * time.Second),
		NotAfter:              time.Now().Add(262980 * time.Hour),
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	var c, k bytes.Buffer
	_ = pem.Encode(&c, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return tls.X509KeyPair(c.Bytes(), k.Bytes())
}

// tlsSide is one way of doing a launch's TLS: what it costs to make the
// keys (both sides together), and the two configurations that then shake
// hands.
type tlsSide struct {
	name string
	keys func() (client, server *tls.Config, err error)
}

func tlsSides(b *testing.B) []tlsSide {
	var sides []tlsSide
	for _, alg := range []struct {
		name string
		alg  keyAlg
	}{{"Ed25519", keyEd25519}, {"P256", keyP256}} {
		h, err := newHostTLS(alg.alg)
		if err != nil {
			b.Fatal(err)
		}
		sides = append(sides, tlsSide{alg.name, func() (*tls.Config, *tls.Config, error) {
			// The host's per-launch work, then the plugin's (parse what it
			// was handed).
			lt, err := h.newLaunch()
			if err != nil {
				return nil, nil, err
			}
			env := map[string]string{}
			for _, kv := range lt.childEnv() {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			srv, err := wire.ServerTLSConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			return lt.tlsConfig(), srv, err
		}})
	}
	sides = append(sides, tlsSide{"GoPluginP521", func() (*tls.Config, *tls.Config, error) {
		cc, err := goPluginCert()
		if err != nil {
			return nil, nil, err
		}
		sc, err := goPluginCert()
		if err != nil {
			return nil, nil, err
		}
		cl, _ := x509.ParseCertificate(cc.Certificate[0])
		sl, _ := x509.ParseCertificate(sc.Certificate[0])
		clients, servers := x509.NewCertPool(), x509.NewCertPool()
		clients.AddCert(cl)
		servers.AddCert(sl)
		return &tls.Config{Certificates: []tls.Certificate{cc}, RootCAs: servers, ServerName: "localhost", MinVersion: tls.VersionTLS12},
			&tls.Config{Certificates: []tls.Certificate{sc}, ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12},
			nil
	}})
	return sides
}

// BenchmarkTLSIdentity measures a launch's TLS work for this package's
// Ed25519 and P-256 identities beside go-plugin's AutoMTLS (P-521 on both
// sides), interleaved round by round: keys_ is making the keys and
// certificates a launch needs (host and plugin side together), handshake_
// one mutual TLS handshake with them over an in-memory pipe.
func BenchmarkTLSIdentity(b *testing.B) {
	const rounds = 200
	sides := tlsSides(b)
	keys := map[string][]time.Duration{}
	hs := map[string][]time.Duration{}
	for range b.N {
		for i := range rounds {
			for j := range sides {
				s := sides[(i+j)%len(sides)]
				start := time.Now()
				cc, sc, err := s.keys()
				if err != nil {
					b.Fatal(err)
				}
				keys[s.name] = append(keys[s.name], time.Since(start))
				start = time.Now()
				if err := handshake(cc, sc); err != nil {
					b.Fatalf("%s: %v", s.name, err)
				}
				hs[s.name] = append(hs[s.name], time.Since(start))
			}
		}
	}
	med := func(d []time.Duration) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[len(d)/2].Nanoseconds()) / 1e3
	}
	for _, s := range sides {
		b.ReportMetric(med(keys[s.name]), s.name+"_keys_p50_us")
		b.ReportMetric(med(hs[s.name]), s.name+"_handshake_p50_us")
	}
}

func handshake(cc, sc *tls.Config) error {
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	errc := make(chan error, 1)
	go func() { errc <- tls.Server(s, sc).Handshake() }()
	err := tls.Client(c, cc).Handshake()
	if serr := <-errc; err == nil {
		err = serr
	}
	return err
}

// BenchmarkGoPluginTLS isolates what TLS adds to a launch: plugins/demo
// started by a bare go-plugin client (no verified copy, no containment)
// until its first Run message, launch by launch in rotating order, with
// go-plugin's AutoMTLS (P-521 on both sides, as this package did before),
// with the identity this package hands over, and without TLS. It reports
// each mode's p50 and its ratio to the launch without TLS.
func BenchmarkGoPluginTLS(b *testing.B) {
	const roundsPerOp = 100
	spec := demoSpec(b)
	req := wire.RunRequest{RunID: "run-bench", ConnectionID: "conn-bench", Trigger: wire.TriggerManual, Config: json.RawMessage(`{"records":1}`)}
	h, err := newHostTLS(tlsKeyAlg)
	if err != nil {
		b.Fatal(err)
	}
	modes := []string{"AutoMTLS", "HandedOver", "NoTLS"}
	launch := func(mode string) (time.Duration, error) {
		start := time.Now()
		cmd := exec.Command(spec.Path)
		cmd.Env = slices.Clone(spec.Env)
		cfg := &plugin.ClientConfig{
			HandshakeConfig:  wire.Handshake,
			VersionedPlugins: wire.VersionedPlugins(),
			Cmd:              cmd,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			SkipHostEnv:      true,
			Logger:           hclog.NewNullLogger(),
		}
		switch mode {
		case "AutoMTLS":
			cfg.AutoMTLS = true
		case "HandedOver":
			lt, err := h.newLaunch()
			if err != nil {
				return 0, err
			}
			cfg.TLSConfig = lt.tlsConfig()
			cmd.Env = append(cmd.Env, lt.childEnv()...)
		}
		client := plugin.NewClient(cfg)
		defer client.Kill()
		rpc, err := client.Client()
		if err != nil {
			return 0, err
		}
		raw, err := rpc.Dispense(wire.PluginKey)
		if err != nil {
			return 0, err
		}
		var first time.Duration
		errFirst := errors.New("first message")
		err = raw.(wire.Connector).Run(context.Background(), req, func(wire.Message) error {
			first = time.Since(start)
			return errFirst
		})
		if first == 0 {
			return 0, fmt.Errorf("no message: %v", err)
		}
		return first, nil
	}
	d := map[string][]time.Duration{}
	b.ResetTimer()
	for i := range b.N * roundsPerOp {
		for j := range modes {
			mode := modes[(i+j)%len(modes)]
			t, err := launch(mode)
			if err != nil {
				b.Fatalf("%s: %v", mode, err)
			}
			d[mode] = append(d[mode], t)
		}
	}
	b.StopTimer()
	p50 := map[string]float64{}
	for _, mode := range modes {
		s := slices.Clone(d[mode])
		slices.Sort(s)
		p50[mode] = float64(s[len(s)/2].Microseconds()) / 1000
		b.ReportMetric(p50[mode], mode+"_p50_ms")
	}
	b.ReportMetric(p50["AutoMTLS"]/p50["NoTLS"], "AutoMTLS/NoTLS_p50")
	b.ReportMetric(p50["HandedOver"]/p50["NoTLS"], "HandedOver/NoTLS_p50")
}
