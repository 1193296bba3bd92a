package demo_test

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/connhost/connhost/plugins/demo/demo"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/connhost/connhost/sdk/sdktest"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const token = "demo-t0ken-value"

var env = map[string]string{demo.TokenEnv: token}

func ptr(n int64) *int64 { return &n }

// run runs the demo in-process.
func run(t *testing.T, cfg demo.Config, o sdktest.Options) *sdktest.Result {
	t.Helper()
	o.Config = cfg
	if o.Env == nil {
		o.Env = env
	}
	return sdktest.Run(t, demo.New(), o)
}

func event(id int64) string {
	return fmt.Sprintf(`{"id":%d,"seq":%d,"connection_id":"conn-sdktest"}`, id, id)
}

func ids(recs []wire.Record) []int64 {
	var out []int64
	for _, r := range recs {
		n, err := strconv.ParseInt(r.Key, 10, 64)
		if err != nil {
			panic(err)
		}
		out = append(out, n)
	}
	return out
}

func span(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func state(next int64) []byte { return []byte(fmt.Sprintf(`{"next":%d}`, next)) }

func TestManifest(t *testing.T) {
	t.Parallel()
	m := demo.New().Manifest()
	if err := m.Validate(manifest.CheckSchedule); err != nil {
		t.Fatal(err)
	}
	want := manifest.Manifest{
		ConnectorKey: "demo",
		Version:      "1.0.0",
		Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"DEMO_TOKEN"}},
		Streams: []manifest.Stream{
			{Name: "events", KeyFields: []string{"id"}},
			{Name: "env", KeyFields: []string{"name"}},
		},
		EnvPassthrough:  []string{"DEMO_LABEL"},
		DefaultSchedule: manifest.Schedule{Spec: "@every 1m", AutoEnroll: true},
	}
	if diff := cmp.Diff(want, m, cmpopts.IgnoreFields(manifest.Manifest{}, "DisplayName", "Description", "ConfigSchema")); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
}

// TestConfigSchemaMatchesConfig keeps the served schema in step with the
// Config struct: same property names, no extras.
func TestConfigSchemaMatchesConfig(t *testing.T) {
	t.Parallel()
	msg, err := sdktest.SchemaMismatch(demo.ConfigSchema, demo.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if msg != "" {
		t.Errorf("config schema and Config disagree: %s", msg)
	}
}

func TestDefaultRun(t *testing.T) {
	t.Parallel()
	res := run(t, demo.Config{}, sdktest.Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var want []wire.Record
	for i := range int64(100) {
		want = append(want, wire.Record{Stream: "events", Key: strconv.FormatInt(i, 10), Data: json.RawMessage(event(i))})
	}
	if diff := cmp.Diff(want, res.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]byte{state(100)}, res.Checkpoints); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	last := res.Progress[len(res.Progress)-1]
	if diff := cmp.Diff(wire.Progress{Stream: "events", Done: 100, Total: 100, Message: "done"}, last); diff != "" {
		t.Errorf("last progress (-want +got):\n%s", diff)
	}
}

// TestCheckpointsCoverTheirRecords: a checkpoint every 1,000 ids and at the
// end, each sent after exactly the records it covers.
func TestCheckpointsCoverTheirRecords(t *testing.T) {
	t.Parallel()
	res := run(t, demo.Config{Records: ptr(2500)}, sdktest.Options{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if diff := cmp.Diff([][]byte{state(1000), state(2000), state(2500)}, res.Checkpoints); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	var sent int64
	for _, m := range res.Messages {
		switch m.Kind {
		case wire.KindRecords:
			sent += int64(len(m.Records))
		case wire.KindCheckpoint:
			var st demo.State
			if err := json.Unmarshal(m.Checkpoint, &st); err != nil {
				t.Fatal(err)
			}
			if st.Next != sent {
				t.Errorf("checkpoint %s sent after %d records", m.Checkpoint, sent)
			}
		}
	}
}

func TestResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		records   int64
		from      []byte
		wantIDs   []int64
		wantState [][]byte
		wantLast  wire.Progress
	}{
		{"first run", 3, nil, span(0, 3), [][]byte{state(3)}, wire.Progress{Stream: "events", Done: 3, Total: 3, Message: "done"}},
		{"nothing new", 100, state(100), nil, nil, wire.Progress{Stream: "events", Done: 100, Total: 100, Message: "done"}},
		{"more records", 150, state(100), span(100, 150), [][]byte{state(150)}, wire.Progress{Stream: "events", Done: 150, Total: 150, Message: "done"}},
		// Progress never reads past the total ("events 100/50").
		{"fewer records never rewind", 50, state(100), nil, nil, wire.Progress{Stream: "events", Done: 50, Total: 50,
			Message: "checkpoint at 100 is past records=50: nothing to emit (connhost connection reset-state starts over)"}},
		{"across a boundary", 2100, state(1000), span(1000, 2100), [][]byte{state(2000), state(2100)}, wire.Progress{Stream: "events", Done: 2100, Total: 2100, Message: "done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, demo.Config{Records: ptr(tt.records)}, sdktest.Options{Checkpoint: tt.from})
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			if diff := cmp.Diff(tt.wantIDs, ids(res.Records)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantState, res.Checkpoints); diff != "" {
				t.Errorf("checkpoints (-want +got):\n%s", diff)
			}
			if len(res.Progress) == 0 {
				t.Fatal("no progress")
			}
			if diff := cmp.Diff(tt.wantLast, res.Progress[len(res.Progress)-1]); diff != "" {
				t.Errorf("last progress (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("second run from the first's checkpoint", func(t *testing.T) {
		t.Parallel()
		first := run(t, demo.Config{}, sdktest.Options{})
		second := run(t, demo.Config{}, sdktest.Options{Checkpoint: first.LastCheckpoint()})
		if first.Err != nil || second.Err != nil || len(second.Records) != 0 {
			t.Errorf("second run: %d records, err %v (first err %v); want none", len(second.Records), second.Err, first.Err)
		}
	})
}

func TestToken(t *testing.T) {
	t.Parallel()
	rejected := &wire.Failure{Code: wire.CodeCredentialRejected, Message: "token rejected"}
	tests := []struct {
		name      string
		sha       string
		wantErr   *wire.Failure
		wantCheck wire.CheckResult
	}{
		{"no token_sha256 accepts any token", "", nil, wire.CheckResult{Valid: true, Identity: "demo"}},
		{"matching hash", demo.HashHex(token), nil, wire.CheckResult{Valid: true, Identity: "demo"}},
		{"matching hash, upper case", strings.ToUpper(demo.HashHex(token)), nil, wire.CheckResult{Valid: true, Identity: "demo"}},
		{"other hash", demo.HashHex("another token"), rejected, wire.CheckResult{Failure: rejected}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := demo.Config{TokenSHA256: tt.sha, Records: ptr(3)}
			res := run(t, cfg, sdktest.Options{})
			if diff := cmp.Diff(tt.wantErr, res.Failure()); diff != "" {
				t.Errorf("run failure (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil && len(res.Records) != 0 {
				t.Errorf("a rejected token emitted %d records", len(res.Records))
			}
			got, err := sdktest.Check(t, demo.New(), sdktest.Options{Config: cfg, Env: env})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCheck, got); diff != "" {
				t.Errorf("check (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCredentialsRequired(t *testing.T) {
	t.Parallel()
	want := &wire.Failure{Code: wire.CodeCredentialsRequired, Message: "missing or empty credentials: DEMO_TOKEN"}
	for name, e := range map[string]map[string]string{
		"absent": {"OTHER": "x"},
		"empty":  {demo.TokenEnv: ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			res := run(t, demo.Config{}, sdktest.Options{Env: e})
			if diff := cmp.Diff(want, res.Failure()); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
			wantInter := []wire.Interaction{{Kind: "credentials_required", Missing: []string{"DEMO_TOKEN"}}}
			if diff := cmp.Diff(wantInter, res.Interactions); diff != "" {
				t.Errorf("interactions (-want +got):\n%s", diff)
			}
			if len(res.Records)+len(res.Checkpoints) != 0 {
				t.Errorf("sent %d records, %d checkpoints without a token", len(res.Records), len(res.Checkpoints))
			}
			got, err := sdktest.Check(t, demo.New(), sdktest.Options{Env: e})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wire.CheckResult{Failure: want}, got); diff != "" {
				t.Errorf("check (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailAt(t *testing.T) {
	t.Parallel()
	injected := &wire.Failure{Code: wire.CodeConnectorFailed, Message: "injected failure", Retryable: true}
	tests := []struct {
		name      string
		cfg       demo.Config
		o         sdktest.Options
		wantIDs   []int64
		wantState [][]byte
		wantErr   *wire.Failure
	}{
		{"mid-run", demo.Config{Records: ptr(10), FailAt: ptr(5)}, sdktest.Options{}, span(0, 5), nil, injected},
		{"before any record", demo.Config{Records: ptr(10), FailAt: ptr(0)}, sdktest.Options{}, nil, nil, injected},
		{"before the checkpoint at the boundary", demo.Config{Records: ptr(2000), FailAt: ptr(1000)}, sdktest.Options{},
			span(0, 1000), nil, injected},
		{"after a checkpoint", demo.Config{Records: ptr(2000), FailAt: ptr(1500)}, sdktest.Options{},
			span(0, 1500), [][]byte{state(1000)}, injected},
		{"counts this run's records: the retry has fewer left", demo.Config{Records: ptr(2000), FailAt: ptr(1500)},
			sdktest.Options{Checkpoint: state(1000), Trigger: wire.TriggerRetry}, span(1000, 2000), [][]byte{state(2000)}, nil},
		{"beyond the records", demo.Config{Records: ptr(10), FailAt: ptr(11)}, sdktest.Options{}, span(0, 10), [][]byte{state(10)}, nil},
		{"trigger listed", demo.Config{Records: ptr(10), FailAt: ptr(5), FailTriggers: []string{"scheduled"}},
			sdktest.Options{Trigger: wire.TriggerScheduled}, span(0, 5), nil, injected},
		{"trigger not listed", demo.Config{Records: ptr(10), FailAt: ptr(5), FailTriggers: []string{"scheduled"}},
			sdktest.Options{Trigger: wire.TriggerRetry}, span(0, 10), [][]byte{state(10)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tt.cfg, tt.o)
			if diff := cmp.Diff(tt.wantErr, res.Failure()); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
			if tt.wantErr == nil && res.Err != nil {
				t.Errorf("err = %v", res.Err)
			}
			if diff := cmp.Diff(tt.wantIDs, ids(res.Records)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantState, res.Checkpoints); diff != "" {
				t.Errorf("checkpoints (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCrashAtInProcess replaces the exit: the records before the crash
// point are flushed, no checkpoint follows, and the exit status is 3.
func TestCrashAtInProcess(t *testing.T) {
	t.Parallel()
	var codes []int
	c := &demo.Connector{Exit: func(code int) { codes = append(codes, code) }}
	res := sdktest.Run(t, c, sdktest.Options{
		Config: demo.Config{Records: ptr(1200), CrashAt: ptr(1000)},
		Env:    env,
	})
	if diff := cmp.Diff([]int{demo.CrashExitCode}, codes); diff != "" {
		t.Errorf("exit codes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(span(0, 1000), ids(res.Records)); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if len(res.Checkpoints) != 0 {
		t.Errorf("checkpoints %q; the crash comes before the checkpoint at 1000", res.Checkpoints)
	}
	if f := res.Failure(); f == nil || !strings.Contains(f.Message, "exit returned") {
		t.Errorf("failure = %v, want the exit-returned failure", res.Err)
	}
}

func TestEchoEnv(t *testing.T) {
	t.Parallel()
	res := run(t, demo.Config{Records: ptr(1), EchoEnv: []string{"DEMO_TOKEN", "EMPTY", "ABSENT"}}, sdktest.Options{
		Env: map[string]string{demo.TokenEnv: token, "EMPTY": ""},
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	var got []demo.EnvRecord
	for _, r := range res.RecordsOf("env") {
		var e demo.EnvRecord
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		if r.Key != e.Name {
			t.Errorf("record keyed %q holds name %q", r.Key, e.Name)
		}
		got = append(got, e)
	}
	want := []demo.EnvRecord{
		{Name: "DEMO_TOKEN", Present: true, SHA256: demo.HashHex(token)},
		{Name: "EMPTY", Present: true, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{Name: "ABSENT"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env records (-want +got):\n%s", diff)
	}
	for _, r := range res.Records {
		if strings.Contains(string(r.Data), token) {
			t.Errorf("record %s/%s holds the token", r.Stream, r.Key)
		}
	}
}

func TestLabelAndPayload(t *testing.T) {
	t.Parallel()
	res := run(t, demo.Config{Records: ptr(1), PayloadBytes: 4}, sdktest.Options{
		Env:          map[string]string{demo.TokenEnv: token, demo.LabelEnv: `a "label"`},
		ConnectionID: "conn-7",
	})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := `{"id":0,"seq":0,"connection_id":"conn-7","label":"a \"label\"","payload":"xxxx"}`
	if got := string(res.Records[0].Data); got != want {
		t.Errorf("event = %s, want %s", got, want)
	}
}

func TestRecordDelay(t *testing.T) {
	t.Parallel()
	t.Run("progress after each record", func(t *testing.T) {
		t.Parallel()
		res := run(t, demo.Config{Records: ptr(3), RecordDelayMS: 1}, sdktest.Options{})
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		var kinds []string
		for _, m := range res.Messages {
			kinds = append(kinds, m.Kind.String())
		}
		want := []string{"progress", "records", "progress", "records", "progress", "records", "progress", "checkpoint", "progress"}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("messages (-want +got):\n%s", diff)
		}
	})
	t.Run("cancellation cuts the sleep", func(t *testing.T) {
		t.Parallel()
		res := run(t, demo.Config{Records: ptr(10), RecordDelayMS: demo.MaxRecordDelayMS}, sdktest.Options{Timeout: 200 * time.Millisecond})
		if res.Err == nil || res.Err.Error() != "context deadline exceeded" {
			t.Errorf("err = %v, want context deadline exceeded", res.Err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{"unknown field", `{"record":5}`, `unknown field "record"`},
		{"negative records", `{"records":-1}`, "records: -1 is outside"},
		{"too many records", `{"records":100000001}`, "records: 100000001 is outside"},
		{"bad hash", `{"token_sha256":"abc"}`, "token_sha256: want 64 hex digits"},
		{"negative delay", `{"record_delay_ms":-1}`, "record_delay_ms"},
		{"long delay", `{"record_delay_ms":60001}`, "record_delay_ms"},
		{"negative fail_at", `{"fail_at":-1}`, "fail_at"},
		{"negative crash_at", `{"crash_at":-2}`, "crash_at"},
		{"bad trigger", `{"fail_triggers":["hourly"]}`, "fail_triggers[0]"},
		{"bad env name", `{"echo_env":["A-B"]}`, "echo_env[0]"},
		{"big payload", `{"payload_bytes":2000000}`, "payload_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := sdktest.Options{Config: json.RawMessage(tt.config), Env: env}
			res := sdktest.Run(t, demo.New(), o)
			f := res.Failure()
			if f == nil || f.Code != wire.CodeInvalidConfig || f.Retryable || !strings.Contains(f.Message, tt.want) {
				t.Errorf("failure = %v, want a non-retryable invalid_config containing %q", res.Err, tt.want)
			}
			chk, err := sdktest.Check(t, demo.New(), o)
			if err != nil || chk.Valid || chk.Failure == nil || !strings.Contains(chk.Failure.Message, tt.want) {
				t.Errorf("check = %+v, %v; want invalid with %q", chk, err, tt.want)
			}
		})
	}
}

func BenchmarkRunInProcess(b *testing.B) {
	const n = 10_000
	for _, payload := range []int{0, 1024} {
		b.Run(fmt.Sprintf("payload=%d", payload), func(b *testing.B) {
			o := sdktest.Options{
				Config:    demo.Config{Records: ptr(n), PayloadBytes: payload},
				Env:       env,
				LogOutput: io.Discard,
			}
			b.ReportAllocs()
			for b.Loop() {
				res, err := sdktest.RunContext(b.Context(), demo.New(), o)
				if err != nil || res.Err != nil || len(res.Records) != n {
					b.Fatalf("run: %v %v", err, res.Err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
