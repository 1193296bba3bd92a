package launch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/sdk/wire"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// autoMTLSNote is the launcher's debug line for a plugin that answered with
// go-plugin's AutoMTLS certificate.
const autoMTLSNote = "plugin answered with go-plugin's AutoMTLS certificate"

// pluginStyles are the two ways a plugin may do TLS: this tree's wire.Serve
// (the identity the host hands over), and go-plugin alone, as a plugin built
// on an older SDK or by a third party (AutoMTLS).
var pluginStyles = map[string]struct {
	env      []string
	autoMTLS bool
}{
	"this SDK":           {},
	"go-plugin AutoMTLS": {env: []string{"TESTCONN_TLS=goplugin"}, autoMTLS: true},
}

func TestMutualTLSHandshake(t *testing.T) {
	t.Parallel()
	for style, p := range pluginStyles {
		for _, disable := range []bool{false, true} {
			name := style + "/mTLS"
			if disable {
				name = style + "/no TLS"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				l, logs := testLauncher(t, Config{DisableAutoMTLS: disable})
				spec, pids := testSpec(t, p.env...)
				msgs, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "records", "n": 3}))
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				n := 0
				for _, m := range msgs {
					n += len(m.Records)
				}
				if n != 3 {
					t.Errorf("%d records, want 3", n)
				}
				if got, want := strings.Contains(logs.String(), autoMTLSNote), p.autoMTLS && !disable; got != want {
					t.Errorf("log notes go-plugin AutoMTLS: %v, want %v", got, want)
				}
				assertNoSurvivors(t, readPIDs(t, pids))
			})
		}
	}
}

// TestChildSocketUselessToOthers dials a running child's socket as someone
// other than the host: in plaintext, with no certificate, with a
// certificate of its own, and with the host's certificate but not its key.
// Each is refused by the child's TLS handshake, for both plugin styles. The
// host's own identity, dialing the same socket the same way, is served: the
// key is all that tells them apart.
func TestChildSocketUselessToOthers(t *testing.T) {
	t.Parallel()
	other, err := newIdentity(tlsKeyAlg, "intruder")
	if err != nil {
		t.Fatal(err)
	}
	for style, p := range pluginStyles {
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			dir, err := os.MkdirTemp("", "mt") // short: socket paths are bounded
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			l, _ := testLauncher(t, Config{TempDir: dir})
			host := l.tls.id.cert
			stolen := tls.Certificate{Certificate: host.Certificate, PrivateKey: other.key}
			dialers := []struct {
				name  string
				creds credentials.TransportCredentials
				ok    bool
			}{
				{"plaintext", insecure.NewCredentials(), false},
				{"TLS without a certificate", clientCreds(nil), false},
				{"a certificate of its own", clientCreds(&other.cert), false},
				{"the host's certificate without its key", clientCreds(&stolen), false},
				{"the host", clientCreds(&host), true},
			}
			spec, pids := testSpec(t, p.env...)
			errDone := errors.New("dialed")
			err = l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "hang"}), func(wire.Message) error {
				socks, _ := filepath.Glob(filepath.Join(dir, "plugin-dir*", "plugin*"))
				if len(socks) != 1 {
					t.Fatalf("sockets %v, want one", socks)
				}
				for _, d := range dialers {
					err := healthCheck(socks[0], d.creds)
					if d.ok && err != nil {
						t.Errorf("%s: refused: %v", d.name, err)
					}
					if !d.ok && err == nil {
						t.Errorf("%s: served; the socket is not the host's alone", d.name)
					}
				}
				return errDone
			})
			if !errors.Is(err, errDone) {
				t.Fatalf("Run: %v", err)
			}
			assertNoSurvivors(t, readPIDs(t, pids))
		})
	}
}

// clientCreds dials with cert (none if nil), trusting any server: the
// refusals tested are the server's.
func clientCreds(cert *tls.Certificate) credentials.TransportCredentials {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return credentials.NewTLS(cfg)
}

// healthCheck calls go-plugin's health service at the unix socket path.
func healthCheck(path string, creds credentials.TransportCredentials) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = grpc_health_v1.NewHealthClient(conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "plugin"})
	return err
}

// A plugin serving any certificate but the one pinned for its launch is
// refused at the handshake, and nothing is left running.
func TestHostRefusesPluginWithAnotherCertificate(t *testing.T) {
	t.Parallel()
	l, logs := testLauncher(t, Config{})
	spec, pids := testSpec(t, "TESTCONN_TLS=impostor")
	_, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "records", "n": 1}))
	if !failure.Has(err, failure.PluginHandshakeFailed) {
		t.Fatalf("Run error %v, want plugin_handshake_failed", err)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %q does not say the certificate was refused", err)
	}
	assertNoSurvivors(t, readPIDs(t, pids))
	assertNoPrivateKey(t, "host log", logs.String())
}

// The key handed to the child reaches no log line and no error, however
// the child leaks it, and never the connector's own environment.
func TestPluginTLSKeyNeverReachesLogsOrErrors(t *testing.T) {
	t.Parallel()
	for _, enc := range []string{"", "base64", "hex"} {
		t.Run("logged "+enc, func(t *testing.T) {
			t.Parallel()
			l, logs := testLauncher(t, Config{})
			spec, _ := testSpec(t)
			msgs, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "log", "secret_env": wire.EnvServerKey, "encode": enc}))
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			leak := leakedValue(t, msgs)
			if len(leak) < 40 {
				t.Fatalf("the plugin leaked %q: it did not get its key", leak)
			}
			out := logs.String()
			if strings.Contains(out, leak) {
				t.Errorf("host log holds the plugin's TLS key:\n%s", out)
			}
			if !strings.Contains(out, "hclog message with [REDACTED]") {
				t.Errorf("host log lacks the redacted line:\n%s", out)
			}
			assertNoPrivateKey(t, "host log", out)
		})
	}
	t.Run("printed before the handshake", func(t *testing.T) {
		t.Parallel()
		l, logs := testLauncher(t, Config{})
		spec, _ := testSpec(t, "TESTCONN_PRE=secret", "TESTCONN_SECRET_ENV="+wire.EnvServerKey)
		_, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{"mode": "records"}))
		if !failure.Has(err, failure.PluginHandshakeFailed) {
			t.Fatalf("Run error %v, want plugin_handshake_failed", err)
		}
		if !strings.Contains(err.Error(), "leaking before the handshake: [REDACTED]") {
			t.Errorf("error %q does not show the redacted key", err)
		}
		assertNoPrivateKey(t, "error", err.Error())
		assertNoPrivateKey(t, "host log", logs.String())
	})
}

func leakedValue(t *testing.T, msgs []wire.Message) string {
	t.Helper()
	for _, m := range msgs {
		for _, r := range m.Records {
			if v := regexp.MustCompile(`"leak":"([^"]*)"`).FindSubmatch(r.Data); v != nil {
				return string(v[1])
			}
		}
	}
	t.Fatal("no record tells what leaked")
	return ""
}

// assertNoPrivateKey fails if s holds a run of base64 that decodes to a
// PKCS #8 private key: whichever launch's key it was.
func assertNoPrivateKey(t *testing.T, what, s string) {
	t.Helper()
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`).FindAllString(s, -1) {
		der, err := base64.StdEncoding.DecodeString(run)
		if err != nil {
			continue
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			t.Errorf("%s holds a private key: %s", what, run)
		}
	}
}

func TestLaunchTLSMaterial(t *testing.T) {
	h, err := newHostTLS(tlsKeyAlg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := h.newLaunch()
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.newLaunch()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range a.childEnv() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	srv, err := wire.ServerTLSConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil || srv == nil {
		t.Fatalf("the child cannot serve what the host handed over: %v", err)
	}
	pinned := srv.Certificates[0].Leaf
	if pinned == nil {
		t.Fatal("served certificate has no leaf")
	}
	for name, tc := range map[string]struct {
		l    *launchTLS
		want bool
	}{"its own launch": {a, true}, "another launch": {b, false}} {
		_, err := pinned.Verify(x509.VerifyOptions{Roots: tc.l.config.RootCAs, DNSName: wire.TLSServerName})
		if (err == nil) != tc.want {
			t.Errorf("%s trusts the plugin certificate: %v, want %v", name, err == nil, tc.want)
		}
	}
	if a.config.Certificates[0].Leaf != b.config.Certificates[0].Leaf {
		t.Error("launches present different host certificates; want the Launcher's one")
	}
	if pinned.IsCA || h.id.cert.Leaf.IsCA {
		t.Error("a certificate is a CA: its key could vouch for others")
	}
	if a.autoMTLS() {
		t.Error("a fresh launch reports go-plugin AutoMTLS")
	}
	var none *launchTLS
	if none.tlsConfig() != nil || none.childEnv() != nil || none.secrets() != nil || none.autoMTLS() {
		t.Error("no TLS (nil) still yields TLS material")
	}
}

// go-plugin loads a certificate the child prints in its handshake line
// into the host's TLS configuration, and dereferences nil when there is
// none: with TLS off, such a child fails its handshake instead of crashing
// the host; with TLS on, the certificate is trusted as go-plugin's AutoMTLS
// does, and the fake address fails the start.
func TestHandshakeLineCertificateCannotCrashTheHost(t *testing.T) {
	t.Parallel()
	id, err := newIdentity(tlsKeyAlg, "printed")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "prints-a-certificate")
	line := "1|1|unix|/nonexistent/plugin.sock|grpc|" + base64.RawStdEncoding.EncodeToString(id.cert.Certificate[0])
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '"+line+"'\nsleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, disable := range map[string]bool{"TLS off": true, "TLS on": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l, _ := testLauncher(t, Config{DisableAutoMTLS: disable})
			spec := Spec{Name: "prints-a-certificate", Path: script, SHA256: fileSum(t, script)}
			_, err := runCollect(context.Background(), l, spec, runConfig(map[string]any{}))
			if !failure.Has(err, failure.PluginHandshakeFailed) {
				t.Fatalf("Run error %v, want plugin_handshake_failed", err)
			}
		})
	}
}
