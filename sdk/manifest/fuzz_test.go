package manifest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// FuzzManifestValidate: a manifest comes from a plugin binary, so it is
// untrusted. Validate must never panic, and a manifest it accepts must
// cross the real wire (wire's gRPC server and client, protobuf encoding
// included) unchanged and still valid. extra, when set, replaces the
// description with arbitrary bytes, which JSON decoding cannot produce
// (it replaces invalid UTF-8) but a Go-declared manifest can.
func FuzzManifestValidate(f *testing.F) {
	good, err := json.Marshal(valid())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "")
	f.Add(good, "caf\xe9")
	f.Add([]byte(`{"connector_key":"demo","version":"1","auth":{"kind":"none"},"streams":[{"name":"s","key_fields":["id"]}]}`), "")
	f.Add([]byte(`{"connector_key":"x://y","version":"1"}`), "")
	f.Add([]byte(`{"connector_key":"demo","version":"1","auth":{"kind":"static_secret","required":["A","A"]}}`), "")
	f.Add([]byte(`{"connector_key":"demo","version":"1","auth":{"kind":"none"},"streams":[{"name":"s","key_fields":["id"]}],"default_schedule":{"spec":"0 0 30 2 *"}}`), "")
	f.Add([]byte(`{"connector_key":"demo","version":"1","auth":{"kind":"none"},"streams":[{"name":"s","key_fields":["id"]}],"config_schema":"null"}`), "")
	f.Add([]byte(`null`), "")
	f.Fuzz(func(t *testing.T, data []byte, extra string) {
		var m manifest.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		if extra != "" {
			m.Description = extra
		}
		if err := m.Validate(manifest.CheckSchedule); err != nil {
			if !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("Validate = %v, which does not wrap ErrInvalid", err)
			}
			return
		}
		got, err := acrossTheWire(t, m)
		if err != nil {
			t.Fatalf("a valid manifest failed to cross the wire: %v", err)
		}
		if diff := cmp.Diff(m, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("manifest changed on the wire (-sent +received):\n%s", diff)
		}
		if err := got.Validate(manifest.CheckSchedule); err != nil {
			t.Fatalf("received manifest is invalid: %v", err)
		}
	})
}

// describer serves whatever manifest it holds.
type describer struct {
	mu sync.Mutex
	m  manifest.Manifest
}

func (d *describer) Describe(context.Context) (manifest.Manifest, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m, nil
}

func (d *describer) Check(context.Context, wire.CheckRequest) (wire.CheckResult, error) {
	return wire.CheckResult{}, errors.New("unused")
}

func (d *describer) Run(context.Context, wire.RunRequest, func(wire.Message) error) error {
	return errors.New("unused")
}

var _ wire.Connector = (*describer)(nil)

// One in-memory gRPC connection per process: a fuzz worker makes many
// calls, one at a time.
var (
	wireOnce   sync.Once
	wireServed *describer
	wireClient wire.Connector
	wireErr    error
	wireMu     sync.Mutex
)

// acrossTheWire sends m through wire.Plugin's gRPC server and client.
func acrossTheWire(t *testing.T, m manifest.Manifest) (manifest.Manifest, error) {
	wireOnce.Do(func() {
		wireServed = &describer{}
		lis := bufconn.Listen(1 << 20)
		srv := grpc.NewServer()
		if wireErr = (&wire.Plugin{Impl: wireServed}).GRPCServer(nil, srv); wireErr != nil {
			return
		}
		go srv.Serve(lis) //nolint:errcheck // ends with the process
		conn, err := grpc.NewClient("passthrough:///bufconn",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			wireErr = err
			return
		}
		c, err := (&wire.Plugin{}).GRPCClient(context.Background(), nil, conn)
		if err != nil {
			wireErr = err
			return
		}
		wireClient = c.(wire.Connector)
	})
	if wireErr != nil {
		t.Fatalf("in-memory wire: %v", wireErr)
	}
	wireMu.Lock()
	defer wireMu.Unlock()
	wireServed.mu.Lock()
	wireServed.m = m
	wireServed.mu.Unlock()
	return wireClient.Describe(t.Context())
}
