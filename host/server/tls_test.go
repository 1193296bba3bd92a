package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/client"
	"github.com/connhost/connhost/host/server"
	adminv1 "github.com/connhost/connhost/proto/admin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// (0600) into dir and returns their paths.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "connhost test " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// With --tls-cert and --tls-key the one listener serves the HTTP API and
// gRPC (admin service and reflection) over TLS only; a client trusting the
// certificate works, one that does not is told so.
func TestServeOverTLS(t *testing.T) {
	t.Parallel()
	cfg := baseConfig(t)
	cfg.TLSCert, cfg.TLSKey = selfSigned(t, t.TempDir(), "host")
	r := start(t, cfg)

	// The HTTP API, through the Go client with the CA file.
	hc, err := client.WithCAFile(nil, cfg.TLSCert)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("https://"+r.addr, r.token, hc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("readyz over https: %v", err)
	}
	cs, err := c.ListConnectors(ctx)
	if err != nil || len(cs) != 1 || cs[0].ConnectorKey != "demo" {
		t.Fatalf("connectors over https: %+v %v", cs, err)
	}
	// Without the CA: untrusted, said so. Over http: refused.
	plain, _ := client.New("https://"+r.addr, r.token, client.WithTLSHints(nil))
	if _, err := plain.ListConnectors(ctx); !errors.Is(err, client.ErrUntrusted) || !strings.Contains(err.Error(), "--ca-file") {
		t.Errorf("without the CA: %v", err)
	}
	cleartext, _ := client.New("http://"+r.addr, r.token, client.WithTLSHints(nil))
	if _, err := cleartext.ListConnectors(ctx); !errors.Is(err, client.ErrHTTPSOnly) {
		t.Errorf("http:// to the TLS listener: %v", err)
	}

	// gRPC over TLS: reflection without a token, the admin service with it.
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(cfg.TLSCert)
	pool.AppendCertsFromPEM(pemBytes)
	conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("reflection over TLS: %v", err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "connhost.admin.v1.AdminService") {
		t.Errorf("reflection lists %v", names)
	}
	_ = stream.CloseSend()
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+r.token)
	_, err = adminv1.NewAdminServiceClient(conn).GetRun(actx, &adminv1.GetRunRequest{RunId: "run_nope"})
	if st, _ := status.FromError(err); st.Code() != codes.NotFound {
		t.Errorf("GetRun over TLS: %v, want NotFound", err)
	}

	// A plain HTTP/1.1 request with the standard library works too.
	hreq, _ := http.NewRequest("GET", "https://"+r.addr+"/v1/openapi.json", nil)
	hresp, err := hc.Do(hreq)
	if err != nil || hresp.StatusCode != 200 {
		t.Fatalf("openapi over https: %v %v", hresp, err)
	}
	hresp.Body.Close()
}

// TLS files that cannot work refuse the start, typed, before the data dir
// is created.
func TestTLSRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "a")
	_, otherKey := selfSigned(t, dir, "b")
	openKey := filepath.Join(dir, "open.key")
	b, _ := os.ReadFile(key)
	if err := os.WriteFile(openKey, b, 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.crt")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		cert, key string
		want      error
		says      []string
	}{
		"cert without key":      {cert: cert, want: server.ErrInvalidConfig, says: []string{"--tls-cert and --tls-key"}},
		"key without cert":      {key: key, want: server.ErrInvalidConfig, says: []string{"--tls-cert and --tls-key"}},
		"key readable by group": {cert: cert, key: openKey, want: server.ErrInsecureFile, says: []string{openKey, "0644", "0600"}},
		"missing cert":          {cert: filepath.Join(dir, "nope.crt"), key: key, want: server.ErrTLS, says: []string{"--tls-cert", "nope.crt"}},
		"missing key":           {cert: cert, key: filepath.Join(dir, "nope.key"), want: server.ErrTLS, says: []string{"--tls-key", "nope.key"}},
		"key of another cert":   {cert: cert, key: otherKey, want: server.ErrTLS, says: []string{"does not match"}},
		"not PEM":               {cert: garbage, key: key, want: server.ErrTLS, says: []string{garbage}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := baseConfig(t)
			cfg.TLSCert, cfg.TLSKey = tc.cert, tc.key
			_, err := runOnce(t, cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want %v", err, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused start created the data dir: %v", err)
			}
		})
	}
}
