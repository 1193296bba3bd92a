package sdktest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/internal/testconn"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const probePkg = "github.com/connhost/connhost/sdk/internal/testconn/cmd/probe"

var probeEnv = map[string]string{testconn.TokenEnv: "tok-en", testconn.UserEnv: "ada"}

// rawConn emits its raw config and the run metadata, for tests of how
// Options become a request.
type rawConn struct{}

func (rawConn) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: "raw",
		Version:      "1",
		Auth:         manifest.Auth{Kind: manifest.AuthNone},
		Streams:      []manifest.Stream{{Name: "raw", KeyFields: []string{"k"}}},
	}
}

func (rawConn) Run(_ context.Context, r *sdk.Run) error {
	meta, _ := json.Marshal([]string{r.RunID(), r.ConnectionID(), r.Trigger(), string(r.State())})
	if err := r.Emit("raw", "config", r.RawConfig()); err != nil {
		return err
	}
	return r.Emit("raw", "meta", json.RawMessage(meta))
}

func TestOptionsBecomeTheRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		o          sdktest.Options
		wantConfig string
		wantMeta   string
	}{
		{"defaults", sdktest.Options{}, `{}`, `["run-sdktest","conn-sdktest","manual",""]`},
		{"struct config", sdktest.Options{Config: struct {
			N int `json:"n"`
		}{2}}, `{"n":2}`, `["run-sdktest","conn-sdktest","manual",""]`},
		{"raw config passes through", sdktest.Options{Config: json.RawMessage(`{"a": 1}`)}, `{"a": 1}`, `["run-sdktest","conn-sdktest","manual",""]`},
		{"bytes config passes through", sdktest.Options{Config: []byte(`{"b":2}`)}, `{"b":2}`, `["run-sdktest","conn-sdktest","manual",""]`},
		{"ids, trigger and checkpoint", sdktest.Options{RunID: "r9", ConnectionID: "c9", Trigger: wire.TriggerRetry, Checkpoint: []byte("7")},
			`{}`, `["r9","c9","retry","7"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := sdktest.Run(t, rawConn{}, tt.o)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			want := []wire.Record{
				{Stream: "raw", Key: "config", Data: json.RawMessage(tt.wantConfig)},
				{Stream: "raw", Key: "meta", Data: json.RawMessage(tt.wantMeta)},
			}
			if diff := cmp.Diff(want, res.Records); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunContextRefusesWhatServeRefuses(t *testing.T) {
	t.Parallel()
	_, err := sdktest.RunContext(t.Context(), badManifest{}, sdktest.Options{})
	if !errors.Is(err, manifest.ErrInvalid) {
		t.Errorf("RunContext = %v, want manifest.ErrInvalid", err)
	}
	_, err = sdktest.RunContext(t.Context(), rawConn{}, sdktest.Options{Config: make(chan int)})
	var ute *json.UnsupportedTypeError
	if !errors.As(err, &ute) {
		t.Errorf("RunContext = %v, want a marshal error", err)
	}
}

type badManifest struct{ rawConn }

func (badManifest) Manifest() manifest.Manifest { return manifest.Manifest{ConnectorKey: "x"} }

func TestResultHelpers(t *testing.T) {
	t.Parallel()
	res := &sdktest.Result{
		Records: []wire.Record{{Stream: "a", Key: "1"}, {Stream: "b", Key: "2"}, {Stream: "a", Key: "3"}},
		Err:     errors.New("plain"),
	}
	if diff := cmp.Diff([]wire.Record{{Stream: "a", Key: "1"}, {Stream: "a", Key: "3"}}, res.RecordsOf("a")); diff != "" {
		t.Errorf("RecordsOf (-want +got):\n%s", diff)
	}
	if res.LastCheckpoint() != nil || res.Failure() != nil {
		t.Errorf("LastCheckpoint, Failure = %q, %v; want nil, nil", res.LastCheckpoint(), res.Failure())
	}
	res.Checkpoints = [][]byte{[]byte("1"), []byte("2")}
	res.Err = &wire.Failure{Code: "c"}
	if string(res.LastCheckpoint()) != "2" || res.Failure().Code != "c" {
		t.Errorf("LastCheckpoint, Failure = %q, %v; want 2, c", res.LastCheckpoint(), res.Failure())
	}
}

// TestResultSent: Sent holds every part of what a run sent, so a canary
// check over it covers records, checkpoints, progress, interactions and
// the failure.
func TestResultSent(t *testing.T) {
	t.Parallel()
	res := &sdktest.Result{
		Records:      []wire.Record{{Stream: "s", Key: "key-part", Data: []byte(`{"d":"data-part"}`)}},
		Checkpoints:  [][]byte{[]byte(`{"c":"checkpoint-part"}`)},
		Progress:     []wire.Progress{{Stream: "s", Message: "progress-part"}},
		Interactions: []wire.Interaction{{Kind: "credentials_required", Missing: []string{"MISSING_PART"}}},
		Err:          &wire.Failure{Code: "connector_failed", Message: "failure-part"},
	}
	sent := res.Sent()
	for _, part := range []string{"key-part", "data-part", "checkpoint-part", "progress-part", "MISSING_PART", "failure-part"} {
		if !strings.Contains(sent, part) {
			t.Errorf("Sent() = %q lacks %q", sent, part)
		}
	}
	if got := (&sdktest.Result{}).Sent(); got != "" {
		t.Errorf("Sent() of an empty result = %q", got)
	}
}

// TestLogBufferConcurrentWrites: the buffer takes writes from several
// goroutines (run with -race) and keeps every one.
func TestLogBufferConcurrentWrites(t *testing.T) {
	t.Parallel()
	var b sdktest.LogBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Errorf("%d bytes written, want 800", n)
	}
}

// equateErrors compares failures by value and other errors with errors.Is.
var equateErrors = cmp.Comparer(func(a, b error) bool {
	var fa, fb *wire.Failure
	if errors.As(a, &fa) && errors.As(b, &fb) {
		return *fa == *fb
	}
	return errors.Is(a, b) || errors.Is(b, a)
})

// withoutMessages drops what differs between runs by design.
func withoutMessages(r *sdktest.Result) *sdktest.Result {
	c := *r
	c.Messages = nil
	return &c
}

// TestInProcessMatchesPlugin runs the probe both ways: results must be
// identical, which also proves the wire conversions over real gRPC.
func TestInProcessMatchesPlugin(t *testing.T) {
	t.Parallel()
	bin := sdktest.Build(t, probePkg)
	tests := []struct {
		name string
		o    sdktest.Options
		want *sdktest.Result
	}{
		{"records and checkpoint", sdktest.Options{Config: testconn.Config{Records: 2, Checkpoint: true}, Env: probeEnv},
			&sdktest.Result{
				Records: []wire.Record{
					{Stream: "items", Key: "0", Data: json.RawMessage(`{"n":0}`)},
					{Stream: "items", Key: "1", Data: json.RawMessage(`{"n":1}`)},
				},
				Checkpoints: [][]byte{[]byte(`{"n":2}`)},
			}},
		{"credentials required", sdktest.Options{Env: map[string]string{testconn.UserEnv: "ada"}},
			&sdktest.Result{
				Interactions: []wire.Interaction{{Kind: wire.InteractionCredentialsRequired, Missing: []string{testconn.TokenEnv}}},
				Err:          &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "missing or empty credentials: PROBE_TOKEN"},
			}},
		{"retryable failure", sdktest.Options{Config: testconn.Config{Fail: "retryable"}, Env: probeEnv},
			&sdktest.Result{Err: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "try again", Retryable: true}}},
		{"rejected", sdktest.Options{Config: testconn.Config{Records: 1, Fail: "rejected"}, Env: probeEnv},
			&sdktest.Result{
				Records: []wire.Record{{Stream: "items", Key: "0", Data: json.RawMessage(`{"n":0}`)}},
				Err:     &wire.Failure{Code: wire.CodeCredentialRejected, Message: "provider said 401"},
			}},
		{"leaked secret redacted", sdktest.Options{Config: testconn.Config{Fail: "leak"}, Env: probeEnv},
			&sdktest.Result{Err: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "request with token [REDACTED] failed"}}},
		{"panic", sdktest.Options{Config: testconn.Config{Fail: "panic"}, Env: probeEnv},
			&sdktest.Result{Err: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "panic: probe panicked"}}},
		{"deadline", sdktest.Options{Config: testconn.Config{Block: true}, Env: probeEnv, Timeout: 300 * time.Millisecond},
			&sdktest.Result{Err: context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := []cmp.Option{cmpopts.EquateEmpty(), equateErrors}
			in := sdktest.Run(t, testconn.Probe{}, tt.o)
			if diff := cmp.Diff(tt.want, withoutMessages(in), opts...); diff != "" {
				t.Errorf("in-process (-want +got):\n%s", diff)
			}
			out := sdktest.RunPlugin(t, bin, tt.o)
			if diff := cmp.Diff(tt.want, withoutMessages(out), opts...); diff != "" {
				t.Errorf("plugin (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEnvironmentIsOptionsEnv: neither harness leaks the test process's
// environment to the connector; the subprocess gets PATH besides.
func TestEnvironmentIsOptionsEnv(t *testing.T) {
	t.Setenv("SDKTEST_HOST_ONLY", "leak")
	bin := sdktest.Build(t, probePkg)
	env := map[string]string{testconn.TokenEnv: "t", testconn.UserEnv: "u", testconn.BaseEnv: ""}
	o := sdktest.Options{
		Config: testconn.Config{Env: []string{"SDKTEST_HOST_ONLY", testconn.BaseEnv, sdktest.EnvRunID, "PATH"}},
		Env:    env,
	}
	present := func(res *sdktest.Result) map[string]bool {
		t.Helper()
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		got := map[string]bool{}
		for _, r := range res.RecordsOf(testconn.StreamEnv) {
			var v struct {
				Present bool `json:"present"`
			}
			if err := json.Unmarshal(r.Data, &v); err != nil {
				t.Fatal(err)
			}
			got[r.Key] = v.Present
		}
		return got
	}
	want := map[string]bool{"SDKTEST_HOST_ONLY": false, testconn.BaseEnv: true, sdktest.EnvRunID: true, "PATH": false}
	if diff := cmp.Diff(want, present(sdktest.Run(t, testconn.Probe{}, o))); diff != "" {
		t.Errorf("in-process env (-want +got):\n%s", diff)
	}
	want["PATH"] = true
	if diff := cmp.Diff(want, present(sdktest.RunPlugin(t, bin, o))); diff != "" {
		t.Errorf("subprocess env (-want +got):\n%s", diff)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	bin := sdktest.Build(t, probePkg)
	tests := []struct {
		name string
		env  map[string]string
		want wire.CheckResult
	}{
		{"valid", probeEnv, wire.CheckResult{Valid: true, Identity: "ada"}},
		{"rejected", map[string]string{testconn.TokenEnv: "t", testconn.UserEnv: "nobody"},
			wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialRejected, Message: "unknown user"}}},
		{"missing", map[string]string{testconn.TokenEnv: "t"},
			wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "missing or empty credentials: PROBE_USER"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := sdktest.Options{Env: tt.env}
			for name, check := range map[string]func() (wire.CheckResult, error){
				"in-process": func() (wire.CheckResult, error) { return sdktest.Check(t, testconn.Probe{}, o) },
				"plugin":     func() (wire.CheckResult, error) { return sdktest.CheckPlugin(t, bin, o) },
			} {
				got, err := check()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	got := sdktest.Describe(t, sdktest.Build(t, probePkg))
	if diff := cmp.Diff(testconn.Probe{}.Manifest(), got); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}

func TestBuildCopiesOneBuild(t *testing.T) {
	t.Parallel()
	a, b := sdktest.Build(t, probePkg), sdktest.Build(t, probePkg)
	if a == b {
		t.Fatalf("Build returned %s twice; each call gets its own copy", a)
	}
	ba, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ba, bb) {
		t.Error("the two copies differ")
	}
}

func TestAcceptance(t *testing.T) {
	t.Parallel()
	res := sdktest.Acceptance(t, sdktest.Build(t, probePkg), sdktest.Options{
		Config: testconn.Config{Records: 3, Checkpoint: true},
		Env:    probeEnv,
	})
	if got := len(res.RecordsOf(testconn.StreamItems)); got != 3 {
		t.Errorf("Acceptance's run sent %d items, want 3", got)
	}
}
