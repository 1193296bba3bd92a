package main

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/connhost/connhost/plugins/demo/demo"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const token = "demo-plugin-t0ken"

func ptr(n int64) *int64 { return &n }

// TestPluginAcceptance runs the built binary through the SDK's acceptance
// checks: manifest, check, a run, a resumed run, credentials_required.
func TestPluginAcceptance(t *testing.T) {
	t.Parallel()
	res := sdktest.Acceptance(t, sdktest.Build(t, "."), sdktest.Options{
		Config: demo.Config{Records: ptr(1500), TokenSHA256: demo.HashHex(token)},
		Env:    map[string]string{demo.TokenEnv: token},
	})
	if got := len(res.RecordsOf(demo.StreamEvents)); got != 1500 {
		t.Errorf("%d events, want 1500", got)
	}
	want := [][]byte{[]byte(`{"next":1000}`), []byte(`{"next":1500}`)}
	if diff := cmp.Diff(want, res.Checkpoints); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
}

// TestPluginReceivesItsEnvironment: the subprocess sees exactly the token
// it was given (compared by hash), and a wrong token is rejected.
func TestPluginReceivesItsEnvironment(t *testing.T) {
	t.Parallel()
	bin := sdktest.Build(t, ".")
	res := sdktest.RunPlugin(t, bin, sdktest.Options{
		Config: demo.Config{Records: ptr(0), EchoEnv: []string{demo.TokenEnv, "HOME_ONLY_IN_HOST"}},
		Env:    map[string]string{demo.TokenEnv: token},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var got []demo.EnvRecord
	for _, r := range res.RecordsOf(demo.StreamEnv) {
		var e demo.EnvRecord
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []demo.EnvRecord{{Name: demo.TokenEnv, Present: true, SHA256: demo.HashHex(token)}, {Name: "HOME_ONLY_IN_HOST"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env records (-want +got):\n%s", diff)
	}

	res = sdktest.RunPlugin(t, bin, sdktest.Options{
		Config: demo.Config{TokenSHA256: demo.HashHex("the right token")},
		Env:    map[string]string{demo.TokenEnv: token},
	})
	wantErr := &wire.Failure{Code: wire.CodeCredentialRejected, Message: "token rejected"}
	if diff := cmp.Diff(wantErr, res.Failure()); diff != "" {
		t.Errorf("wrong token (-want +got):\n%s", diff)
	}
}

// TestPluginCrashAt: the process dies between records and checkpoint. The
// host sees an untyped transport error (a crash, not a failure), and no
// checkpoint beyond the records it received.
func TestPluginCrashAt(t *testing.T) {
	t.Parallel()
	res := sdktest.RunPlugin(t, sdktest.Build(t, "."), sdktest.Options{
		Config: demo.Config{Records: ptr(1500), CrashAt: ptr(1200)},
		Env:    map[string]string{demo.TokenEnv: token},
	})
	if res.Err == nil || res.Failure() != nil {
		t.Fatalf("err = %v, want an untyped crash", res.Err)
	}
	if c := status.Code(res.Err); c != codes.Unavailable && c != codes.Internal && c != codes.Unknown {
		t.Errorf("status code %v (%v), want a transport error", c, res.Err)
	}
	if diff := cmp.Diff([][]byte{[]byte(`{"next":1000}`)}, res.Checkpoints); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	// The grace period lets the last batch out; records can only be the
	// prefix the crash allowed, never beyond crash_at.
	if n := len(res.Records); n < 1000 || n > 1200 {
		t.Errorf("%d records, want between the checkpoint (1000) and crash_at (1200)", n)
	}
	for i, r := range res.Records {
		if r.Key != fmt.Sprint(i) {
			t.Fatalf("record %d has key %s; records arrive in order", i, r.Key)
		}
	}
	t.Logf("crash after %d records: %v", len(res.Records), res.Err)
}

func BenchmarkRunPlugin(b *testing.B) {
	const n = 100_000
	bin := sdktest.Build(b, ".")
	o := sdktest.Options{Config: demo.Config{Records: ptr(n)}, Env: map[string]string{demo.TokenEnv: token}}
	for b.Loop() {
		res := sdktest.RunPlugin(b, bin, o)
		if res.Err != nil || len(res.Records) != n {
			b.Fatalf("run: %v, %d records", res.Err, len(res.Records))
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
