package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const secret = "tok-3xample-S3CRET"

// fake is a Connector whose Run is a func field.
type fake struct {
	m   manifest.Manifest
	run func(ctx context.Context, r *sdk.Run) error
}

func (f *fake) Manifest() manifest.Manifest               { return f.m }
func (f *fake) Run(ctx context.Context, r *sdk.Run) error { return f.run(ctx, r) }

// fakeCheck adds Check.
type fakeCheck struct {
	fake
	check func(ctx context.Context, c *sdk.Check) (string, error)
}

func (f *fakeCheck) Check(ctx context.Context, c *sdk.Check) (string, error) { return f.check(ctx, c) }

var (
	_ sdk.Connector          = (*fake)(nil)
	_ sdk.ConnectorWithCheck = (*fakeCheck)(nil)
)

func testManifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: "fake",
		Version:      "1.0.0",
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"TOKEN", "USER"}},
		Streams: []manifest.Stream{
			{Name: "s", KeyFields: []string{"id"}},
			{Name: "t", KeyFields: []string{"id"}},
		},
	}
}

func newFake(run func(ctx context.Context, r *sdk.Run) error) *fake {
	return &fake{m: testManifest(), run: run}
}

var goodEnv = map[string]string{"TOKEN": secret, "USER": "ada"}

// outcome is everything one adapter run produced.
type outcome struct {
	msgs []wire.Message
	err  error
	logs string
}

func (o outcome) records() []wire.Record {
	var recs []wire.Record
	for _, m := range o.msgs {
		recs = append(recs, m.Records...)
	}
	return recs
}

func (o outcome) kinds() []string {
	var ks []string
	for _, m := range o.msgs {
		k := m.Kind.String()
		if m.Kind == wire.KindRecords {
			k += ":" + strconv.Itoa(len(m.Records))
		}
		ks = append(ks, k)
	}
	return ks
}

func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(n string) (string, bool) {
		v, ok := env[n]
		return v, ok
	}
}

// runAdapter runs c through sdk.AdaptWith with env and req.
func runAdapter(ctx context.Context, c sdk.Connector, env map[string]string, req wire.RunRequest) outcome {
	logs := &sdktest.LogBuffer{}
	a := sdk.AdaptWith(c, sdk.AdaptOptions{LookupEnv: mapEnv(env), LogOutput: logs})
	var o outcome
	o.err = a.Run(ctx, req, func(m wire.Message) error {
		o.msgs = append(o.msgs, m)
		return nil
	})
	o.logs = logs.String()
	return o
}

func baseReq() wire.RunRequest {
	return wire.RunRequest{RunID: "run-1", ConnectionID: "conn-1", Trigger: wire.TriggerScheduled}
}

func TestDescribeReturnsManifest(t *testing.T) {
	t.Parallel()
	c := newFake(nil)
	got, err := sdk.Adapt(c, mapEnv(nil)).Describe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testManifest(), got); diff != "" {
		t.Errorf("Describe (-want +got):\n%s", diff)
	}
}

func TestRunRequestAccessors(t *testing.T) {
	t.Parallel()
	var got []string
	c := newFake(func(_ context.Context, r *sdk.Run) error {
		v, _ := r.LookupEnv("BASE")
		got = []string{r.RunID(), r.ConnectionID(), r.Trigger(), string(r.RawConfig()), string(r.State()),
			r.Credential("TOKEN"), r.Credential("USER"), v}
		return nil
	})
	env := map[string]string{"TOKEN": secret, "USER": "ada", "BASE": "https://api.example"}
	req := baseReq()
	req.Config = json.RawMessage(`{"a":1}`)
	req.Checkpoint = []byte(`{"n":2}`)
	if o := runAdapter(t.Context(), c, env, req); o.err != nil {
		t.Fatal(o.err)
	}
	want := []string{"run-1", "conn-1", "scheduled", `{"a":1}`, `{"n":2}`, secret, "ada", "https://api.example"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("accessors (-want +got):\n%s", diff)
	}
}

func TestCredentialsRequired(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		missing []string
	}{
		{"all absent", nil, []string{"TOKEN", "USER"}},
		{"empty token", map[string]string{"TOKEN": "", "USER": "ada"}, []string{"TOKEN"}},
		{"absent user", map[string]string{"TOKEN": secret}, []string{"USER"}},
		{"both empty", map[string]string{"TOKEN": "", "USER": ""}, []string{"TOKEN", "USER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			called := false
			c := &fakeCheck{
				fake: *newFake(func(context.Context, *sdk.Run) error { called = true; return nil }),
				check: func(context.Context, *sdk.Check) (string, error) {
					called = true
					return "x", nil
				},
			}
			o := runAdapter(t.Context(), c, tt.env, baseReq())
			wantMsgs := []wire.Message{{Kind: wire.KindInteraction, Interaction: wire.Interaction{
				Kind: wire.InteractionCredentialsRequired, Missing: tt.missing}}}
			if diff := cmp.Diff(wantMsgs, o.msgs); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			wantErr := &wire.Failure{Code: wire.CodeCredentialsRequired,
				Message: "missing or empty credentials: " + strings.Join(tt.missing, ", ")}
			if diff := cmp.Diff(wantErr, o.err); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !errors.Is(sdk.ErrCredentialsRequired, o.err) {
				t.Errorf("errors.Is(ErrCredentialsRequired, %v) = false", o.err)
			}
			res, err := sdk.Adapt(c, mapEnv(tt.env)).Check(t.Context(), wire.CheckRequest{ConnectionID: "conn-1"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wire.CheckResult{Failure: wantErr}, res); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			if called {
				t.Error("connector code ran without its credentials")
			}
		})
	}
}

func TestBatching(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 300<<10) // four make a batch of more than 1 MiB
	tests := []struct {
		name string
		run  func(r *sdk.Run) error
		want []string
	}{
		{"nothing", func(*sdk.Run) error { return nil }, nil},
		{"under a batch, flushed at the end", emitN("s", 3, nil), []string{"records:3"}},
		{"batches of MaxBatchRecords", emitN("s", 1234, nil), []string{"records:500", "records:500", "records:234"}},
		{"batches by size", emitN("s", 5, big), []string{"records:4", "records:1"}},
		{"checkpoint flushes first", func(r *sdk.Run) error {
			if err := emitN("s", 3, nil)(r); err != nil {
				return err
			}
			if err := r.Checkpoint("a"); err != nil {
				return err
			}
			return r.Checkpoint("b")
		}, []string{"records:3", "checkpoint", "checkpoint"}},
		{"progress flushes first", func(r *sdk.Run) error {
			if err := emitN("t", 2, nil)(r); err != nil {
				return err
			}
			return r.Progress("t", 2, 10, "")
		}, []string{"records:2", "progress"}},
		{"flush", func(r *sdk.Run) error {
			if err := emitN("s", 2, nil)(r); err != nil {
				return err
			}
			if err := r.Flush(); err != nil {
				return err
			}
			if err := r.Flush(); err != nil { // nothing pending: sends nothing
				return err
			}
			return emitN("s", 1, nil)(r)
		}, []string{"records:2", "records:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error { return tt.run(r) }), goodEnv, baseReq())
			if o.err != nil {
				t.Fatal(o.err)
			}
			if diff := cmp.Diff(tt.want, o.kinds()); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

// emitN emits n records keyed 0..n-1 with value v (or {"id":i}).
func emitN(stream string, n int, v any) func(r *sdk.Run) error {
	return func(r *sdk.Run) error {
		for i := range n {
			val := v
			if val == nil {
				val = map[string]int{"id": i}
			}
			if err := r.Emit(stream, strconv.Itoa(i), val); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestEmitEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"struct", struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		}{7, "x"}, `{"id":7,"name":"x"}`},
		{"map", map[string]any{"b": 1, "a": true}, `{"a":true,"b":1}`},
		{"raw message passes through", json.RawMessage(`{"z": [1, 2]}`), `{"z": [1, 2]}`},
		{"string", "hello", `"hello"`},
		{"no HTML escaping", map[string]string{"q": "> fortune & <b>"}, `{"q":"> fortune & <b>"}`},
		{"bytes marshal as base64", []byte("hi"), `"aGk="`},
		{"nil", nil, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
				return r.Emit("s", "k", tt.value)
			}), goodEnv, baseReq())
			if o.err != nil {
				t.Fatal(o.err)
			}
			want := []wire.Record{{Stream: "s", Key: "k", Data: json.RawMessage(tt.want)}}
			if diff := cmp.Diff(want, o.records()); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmitRawMessageIsCopied(t *testing.T) {
	t.Parallel()
	o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
		buf := json.RawMessage(`{"n":1}`)
		if err := r.Emit("s", "a", buf); err != nil {
			return err
		}
		copy(buf, `{"n":2}`) // a connector reusing its buffer
		return r.Emit("s", "b", buf)
	}), goodEnv, baseReq())
	if o.err != nil {
		t.Fatal(o.err)
	}
	var got []string
	for _, r := range o.records() {
		got = append(got, string(r.Data))
	}
	if diff := cmp.Diff([]string{`{"n":1}`, `{"n":2}`}, got); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

func TestEmitErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stream string
		key    string
		value  any
		want   error
	}{
		{"undeclared stream", "nope", "k", 1, sdk.ErrUndeclaredStream},
		{"empty stream", "", "k", 1, sdk.ErrUndeclaredStream},
		{"empty key", "s", "", 1, sdk.ErrInvalidKey},
		{"key not UTF-8", "s", "\xff\xfe", 1, sdk.ErrInvalidKey},
		{"invalid raw JSON", "s", "k", json.RawMessage(`{"a":`), sdk.ErrInvalidJSON},
		{"too large", "s", "k", json.RawMessage(`"` + strings.Repeat("x", sdk.MaxRecordBytes) + `"`), sdk.ErrRecordTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var emitErr error
			o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
				emitErr = r.Emit(tt.stream, tt.key, tt.value)
				return nil
			}), goodEnv, baseReq())
			if !errors.Is(emitErr, tt.want) {
				t.Errorf("Emit = %v, want %v", emitErr, tt.want)
			}
			if len(o.msgs) != 0 {
				t.Errorf("sent %v after a refused Emit", o.kinds())
			}
		})
	}
	t.Run("unmarshalable", func(t *testing.T) {
		t.Parallel()
		var emitErr error
		runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
			emitErr = r.Emit("s", "k", make(chan int))
			return nil
		}), goodEnv, baseReq())
		var ute *json.UnsupportedTypeError
		if !errors.As(emitErr, &ute) {
			t.Errorf("Emit = %v, want a *json.UnsupportedTypeError", emitErr)
		}
	})
	t.Run("progress on undeclared stream", func(t *testing.T) {
		t.Parallel()
		var errs []error
		runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
			errs = append(errs, r.Progress("nope", 1, 2, ""), r.Progress("", 1, 2, "whole run"))
			return nil
		}), goodEnv, baseReq())
		if !errors.Is(errs[0], sdk.ErrUndeclaredStream) || errs[1] != nil {
			t.Errorf("Progress errors = %v, want [ErrUndeclaredStream <nil>]", errs)
		}
	})
}

func TestCheckpointEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		state   any
		want    []byte
		wantErr error
	}{
		{"struct", struct {
			Next int `json:"next"`
		}{3}, []byte(`{"next":3}`), nil},
		{"bytes pass through", []byte("opaque\x00state"), []byte("opaque\x00state"), nil},
		{"raw message passes through", json.RawMessage(`{"a": 1}`), []byte(`{"a": 1}`), nil},
		{"empty bytes", []byte{}, []byte{}, nil},
		{"nil bytes", []byte(nil), []byte{}, nil},
		{"too large", make([]byte, sdk.MaxCheckpointBytes+1), nil, sdk.ErrCheckpointTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cpErr error
			o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
				cpErr = r.Checkpoint(tt.state)
				return nil
			}), goodEnv, baseReq())
			if !errors.Is(cpErr, tt.wantErr) {
				t.Fatalf("Checkpoint = %v, want %v", cpErr, tt.wantErr)
			}
			var want []wire.Message
			if tt.wantErr == nil {
				want = []wire.Message{{Kind: wire.KindCheckpoint, Checkpoint: tt.want}}
			}
			if diff := cmp.Diff(want, o.msgs); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigAndState(t *testing.T) {
	t.Parallel()
	type cfg struct {
		Org   string `json:"org"`
		Limit int    `json:"limit"`
	}
	tests := []struct {
		name       string
		config     string
		checkpoint string
		wantCfg    cfg
		wantCfgErr error
		wantState  bool
		wantN      int
		wantRaw    string
	}{
		{name: "empty config decodes as {}", wantRaw: "{}"},
		{name: "whitespace config", config: "  \n", wantRaw: "{}"},
		{name: "fields", config: `{"org":"acme","limit":5}`, wantCfg: cfg{"acme", 5}, wantRaw: `{"org":"acme","limit":5}`},
		{name: "unknown field", config: `{"org":"acme","orgg":1}`, wantCfg: cfg{Org: "acme"}, wantCfgErr: sdk.ErrInvalidConfig, wantRaw: `{"org":"acme","orgg":1}`},
		{name: "trailing data", config: `{"org":"a"} {}`, wantCfg: cfg{Org: "a"}, wantCfgErr: sdk.ErrInvalidConfig, wantRaw: `{"org":"a"} {}`},
		{name: "wrong type", config: `{"limit":"five"}`, wantCfgErr: sdk.ErrInvalidConfig, wantRaw: `{"limit":"five"}`},
		{name: "state", checkpoint: `{"n":9}`, wantState: true, wantN: 9, wantRaw: "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				got    cfg
				cfgErr error
				ok     bool
				st     struct{ N int }
				raw    string
			)
			o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
				cfgErr = r.Config(&got)
				raw = string(r.RawConfig())
				var err error
				ok, err = r.DecodeState(&st)
				return err
			}), goodEnv, wire.RunRequest{Config: []byte(tt.config), Checkpoint: []byte(tt.checkpoint)})
			if o.err != nil {
				t.Fatal(o.err)
			}
			if !errors.Is(cfgErr, tt.wantCfgErr) || (tt.wantCfgErr == nil) != (cfgErr == nil) {
				t.Errorf("Config = %v, want %v", cfgErr, tt.wantCfgErr)
			}
			if got != tt.wantCfg {
				t.Errorf("config = %+v, want %+v", got, tt.wantCfg)
			}
			if ok != tt.wantState || st.N != tt.wantN {
				t.Errorf("DecodeState = %v, %+v; want %v, {N:%d}", ok, st, tt.wantState, tt.wantN)
			}
			if raw != tt.wantRaw {
				t.Errorf("RawConfig = %q, want %q", raw, tt.wantRaw)
			}
		})
	}
	t.Run("bad state", func(t *testing.T) {
		t.Parallel()
		var ok bool
		var err error
		runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
			var v struct{}
			ok, err = r.DecodeState(&v)
			return nil
		}), goodEnv, wire.RunRequest{Checkpoint: []byte("not json")})
		if !ok || err == nil {
			t.Errorf("DecodeState = %v, %v; want true and an error", ok, err)
		}
	})
}

func TestRunOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"success", nil, nil},
		{"plain error", errors.New("boom"), &wire.Failure{Code: wire.CodeConnectorFailed, Message: "boom"}},
		{"wrapped plain error", fmt.Errorf("list: %w", io.ErrUnexpectedEOF), &wire.Failure{Code: wire.CodeConnectorFailed, Message: "list: unexpected EOF"}},
		{"fail", sdk.Fail("quota_exceeded", "daily quota"), &wire.Failure{Code: "quota_exceeded", Message: "daily quota"}},
		{"fail without code", sdk.Fail("", "x"), &wire.Failure{Code: wire.CodeConnectorFailed, Message: "x"}},
		{"retryable plain", sdk.Retryable(errors.New("503")), &wire.Failure{Code: wire.CodeConnectorFailed, Message: "503", Retryable: true}},
		{"retryable typed", sdk.Retryable(sdk.Fail("quota_exceeded", "q")), &wire.Failure{Code: "quota_exceeded", Message: "q", Retryable: true}},
		{"retryable wire failure", sdk.Retryable(&wire.Failure{Code: "c", Message: "m"}), &wire.Failure{Code: "c", Message: "m", Retryable: true}},
		{"typed inside a wrap", fmt.Errorf("ctx: %w", sdk.CredentialRejected("401")), &wire.Failure{Code: wire.CodeCredentialRejected, Message: "401"}},
		{"wire failure", &wire.Failure{Code: "c", Message: "m", Retryable: true}, &wire.Failure{Code: "c", Message: "m", Retryable: true}},
		{"credentials required", sdk.ErrCredentialsRequired, &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "declared credentials are absent or empty"}},
		{"secret redacted", fmt.Errorf("GET /?token=%s: 500", secret), &wire.Failure{Code: wire.CodeConnectorFailed, Message: "GET /?token=[REDACTED]: 500"}},
		{"not UTF-8", errors.New("bad \xff byte"), &wire.Failure{Code: wire.CodeConnectorFailed, Message: "bad \uFFFD byte"}},
		{"long message truncated", errors.New(strings.Repeat("é", 3000)), &wire.Failure{Code: wire.CodeConnectorFailed, Message: strings.Repeat("é", 2048) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := runAdapter(t.Context(), newFake(func(context.Context, *sdk.Run) error { return tt.err }), goodEnv, baseReq())
			if diff := cmp.Diff(tt.want, o.err); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPanicFailsTheRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(r *sdk.Run) error
		msg  string
	}{
		{"panic", func(*sdk.Run) error { panic("kaboom " + secret) }, "panic: kaboom [REDACTED]"},
		{"undeclared credential", func(r *sdk.Run) error { r.Credential("TOKEM"); return nil },
			`panic: sdk: Credential("TOKEM"): the name is not declared in Manifest().Auth.Required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error { return tt.run(r) }), goodEnv, baseReq())
			want := &wire.Failure{Code: wire.CodeConnectorFailed, Message: tt.msg}
			if diff := cmp.Diff(want, o.err); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if !strings.Contains(o.logs, "connector panicked") || strings.Contains(o.logs, secret) {
				t.Errorf("logs = %s, want the panic logged with the secret redacted", o.logs)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// after cancel, the connector returns this (given Emit's error)
		ret func(emitErr error) error
	}{
		{"returns Emit's error", func(err error) error { return err }},
		{"wraps it", func(err error) error { return fmt.Errorf("emit: %w", err) }},
		{"returns something else", func(error) error { return errors.New("unrelated") }},
		{"returns nil", func(error) error { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var emitErrs []error
			o := runAdapter(ctx, newFake(func(_ context.Context, r *sdk.Run) error {
				if err := emitN("s", 3, nil)(r); err != nil {
					return err
				}
				cancel()
				emitErrs = append(emitErrs, r.Emit("s", "late", 1), r.Checkpoint("x"), r.Progress("s", 1, 1, ""), r.Flush())
				return tt.ret(emitErrs[0])
			}), goodEnv, baseReq())
			if !errors.Is(o.err, context.Canceled) {
				t.Errorf("outcome = %v, want context.Canceled", o.err)
			}
			for i, err := range emitErrs {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("call %d after cancel = %v, want context.Canceled", i, err)
				}
			}
			if len(o.msgs) != 0 {
				t.Errorf("sent %v after cancellation", o.kinds())
			}
		})
	}
}

func TestSendFailureIsSticky(t *testing.T) {
	t.Parallel()
	sendErr := errors.New("transport closed")
	a := sdk.AdaptWith(newFake(func(_ context.Context, r *sdk.Run) error {
		first := r.Checkpoint("a")
		second := r.Emit("s", "k", 1)
		if !errors.Is(first, sendErr) || !errors.Is(second, sendErr) {
			return fmt.Errorf("got %v then %v, want both to wrap the send error", first, second)
		}
		return second
	}), sdk.AdaptOptions{LookupEnv: mapEnv(goodEnv), LogOutput: io.Discard})
	sends := 0
	err := a.Run(t.Context(), baseReq(), func(wire.Message) error { sends++; return sendErr })
	var f *wire.Failure
	if !errors.As(err, &f) || f.Code != wire.CodeConnectorFailed || !strings.Contains(f.Message, "transport closed") {
		t.Errorf("outcome = %v, want connector_failed naming the send error", err)
	}
	if sends != 1 {
		t.Errorf("%d sends, want 1: a failed transport is not retried", sends)
	}
}

func TestRunIsClosedAfterReturn(t *testing.T) {
	t.Parallel()
	var kept *sdk.Run
	o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
		kept = r
		return r.Emit("s", "a", 1)
	}), goodEnv, baseReq())
	if o.err != nil {
		t.Fatal(o.err)
	}
	for i, err := range []error{kept.Emit("s", "b", 1), kept.Checkpoint(1), kept.Progress("", 0, 0, ""), kept.Flush()} {
		if !errors.Is(err, sdk.ErrRunFinished) {
			t.Errorf("call %d after return = %v, want ErrRunFinished", i, err)
		}
	}
	if diff := cmp.Diff([]string{"records:1"}, o.kinds()); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestConcurrentEmit(t *testing.T) {
	t.Parallel()
	const workers, each = 4, 700
	o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					if err := r.Emit("s", fmt.Sprintf("%d-%d", w, i), i); err != nil {
						errs <- err
						return
					}
					if i%250 == 0 {
						if err := r.Checkpoint(i); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		return <-errs
	}), goodEnv, baseReq())
	if o.err != nil {
		t.Fatal(o.err)
	}
	seen := map[string]bool{}
	for _, r := range o.records() {
		if seen[r.Key] {
			t.Fatalf("key %s sent twice", r.Key)
		}
		seen[r.Key] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct records, want %d", len(seen), workers*each)
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	o := runAdapter(t.Context(), newFake(func(_ context.Context, r *sdk.Run) error {
		r.Logger().Info("fetching", "token", r.Credential("TOKEN"), "quoted", `a"`+secret+`"b`)
		return nil
	}), goodEnv, baseReq())
	if o.err != nil {
		t.Fatal(o.err)
	}
	if strings.Contains(o.logs, secret) {
		t.Fatalf("log holds the secret: %s", o.logs)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(o.logs)), &line); err != nil {
		t.Fatalf("log line is not one JSON object: %v\n%s", err, o.logs)
	}
	want := map[string]any{
		"@level": "info", "@message": "fetching", "run_id": "run-1", "connection_id": "conn-1",
		"token": "[REDACTED]", "quoted": `a"[REDACTED]"b`,
	}
	if diff := cmp.Diff(want, line, cmpopts.IgnoreMapEntries(func(k string, _ any) bool { return k == "@timestamp" })); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	type cfg struct {
		Org string `json:"org"`
	}
	tests := []struct {
		name  string
		check func(ctx context.Context, c *sdk.Check) (string, error)
		want  wire.CheckResult
	}{
		{"valid", func(_ context.Context, c *sdk.Check) (string, error) {
			var v cfg
			if err := c.Config(&v); err != nil {
				return "", err
			}
			return c.Credential("USER") + "@" + v.Org + "/" + c.ConnectionID(), nil
		}, wire.CheckResult{Valid: true, Identity: "ada@acme/conn-1"}},
		{"rejected", func(context.Context, *sdk.Check) (string, error) {
			return "", sdk.CredentialRejected("401 from provider")
		}, wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeCredentialRejected, Message: "401 from provider"}}},
		{"plain error with the secret", func(_ context.Context, c *sdk.Check) (string, error) {
			return "", errors.New("bad token " + c.Credential("TOKEN"))
		}, wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "bad token [REDACTED]"}}},
		{"retryable", func(context.Context, *sdk.Check) (string, error) {
			return "", sdk.Retryable(errors.New("timeout"))
		}, wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "timeout", Retryable: true}}},
		{"strict config", func(_ context.Context, c *sdk.Check) (string, error) {
			var v struct{}
			return "", c.Config(&v)
		}, wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeInvalidConfig, Message: `sdk: invalid config: json: unknown field "org"`}}},
		{"panic", func(context.Context, *sdk.Check) (string, error) { panic("oops") },
			wire.CheckResult{Failure: &wire.Failure{Code: wire.CodeConnectorFailed, Message: "panic: oops"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &fakeCheck{fake: *newFake(nil), check: tt.check}
			a := sdk.AdaptWith(c, sdk.AdaptOptions{LookupEnv: mapEnv(goodEnv), LogOutput: io.Discard})
			got, err := a.Check(t.Context(), wire.CheckRequest{ConnectionID: "conn-1", Config: []byte(`{"org":"acme"}`)})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("without ConnectorWithCheck", func(t *testing.T) {
		t.Parallel()
		got, err := sdk.Adapt(newFake(nil), mapEnv(goodEnv)).Check(t.Context(), wire.CheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(wire.CheckResult{Valid: true}, got); diff != "" {
			t.Errorf("Check (-want +got):\n%s", diff)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		c := &fakeCheck{fake: *newFake(nil), check: func(ctx context.Context, _ *sdk.Check) (string, error) {
			cancel()
			return "", ctx.Err()
		}}
		_, err := sdk.AdaptWith(c, sdk.AdaptOptions{LookupEnv: mapEnv(goodEnv), LogOutput: io.Discard}).Check(ctx, wire.CheckRequest{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Check error = %v, want context.Canceled", err)
		}
	})
}

func TestErrorMatching(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", sdk.Fail(wire.CodeCredentialsRequired, "x"), sdk.ErrCredentialsRequired, true},
		{"wire failure target", sdk.Fail("c", "x"), &wire.Failure{Code: "c"}, true},
		{"other code", sdk.Fail("c", "x"), sdk.ErrCredentialsRequired, false},
		{"retryable keeps the cause", sdk.Retryable(io.EOF), io.EOF, true},
		{"retryable keeps the code", sdk.Retryable(sdk.CredentialRejected("x")), sdk.CredentialRejected(""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}
	if sdk.Retryable(nil) != nil {
		t.Error("Retryable(nil) != nil")
	}
}
