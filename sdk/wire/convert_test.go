package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	connectorv1 "github.com/connhost/connhost/sdk/internal/connectorv1"
	"github.com/connhost/connhost/sdk/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// overTheWire encodes and decodes a proto message, as gRPC does.
func overTheWire[M proto.Message](t *testing.T, m M, fresh M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal %T: %v", m, err)
	}
	if err := proto.Unmarshal(b, fresh); err != nil {
		t.Fatalf("unmarshal %T: %v", m, err)
	}
	return fresh
}

func TestManifestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    manifest.Manifest
	}{
		{"full", manifest.Manifest{
			ConnectorKey:    "github",
			Version:         "1.2.3",
			DisplayName:     "GitHub",
			Description:     "Issues — and more",
			Auth:            manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"GITHUB_TOKEN", "GITHUB_USER"}},
			EnvPassthrough:  []string{"GITHUB_API_URL"},
			Streams:         []manifest.Stream{{Name: "issues", KeyFields: []string{"id"}}, {Name: "prs", KeyFields: []string{"repo", "n"}}},
			DefaultSchedule: manifest.Schedule{Spec: "@every 1m", AutoEnroll: true},
			ConfigSchema:    `{"type":"object"}`,
		}},
		{"minimal", manifest.Manifest{
			ConnectorKey: "demo",
			Version:      "1",
			Auth:         manifest.Auth{Kind: manifest.AuthNone},
			Streams:      []manifest.Stream{{Name: "s", KeyFields: []string{"id"}}},
		}},
		{"zero", manifest.Manifest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromProtoManifest(overTheWire(t, toProtoManifest(tt.m), &connectorv1.Manifest{}))
			if diff := cmp.Diff(tt.m, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nil proto", func(t *testing.T) {
		t.Parallel()
		if diff := cmp.Diff(manifest.Manifest{}, fromProtoManifest(nil), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("fromProtoManifest(nil) (-want +got):\n%s", diff)
		}
	})
}

func TestRunRequestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    RunRequest
	}{
		{"full", RunRequest{RunID: "r1", ConnectionID: "c1", Trigger: TriggerRetry,
			Config: json.RawMessage(`{"a":1}`), Checkpoint: []byte("\x00opaque\xff")}},
		{"first run", RunRequest{RunID: "r2", ConnectionID: "c2", Trigger: TriggerScheduled, Config: json.RawMessage(`{}`)}},
		{"zero", RunRequest{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromProtoRunRequest(overTheWire(t, toProtoRunRequest(tt.r), &connectorv1.RunRequest{}))
			if diff := cmp.Diff(tt.r, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckRoundTrip(t *testing.T) {
	t.Parallel()
	reqs := []CheckRequest{
		{ConnectionID: "c1", Config: json.RawMessage(`{"org":"acme"}`)},
		{},
	}
	for _, r := range reqs {
		got := fromProtoCheckRequest(overTheWire(t, toProtoCheckRequest(r), &connectorv1.CheckRequest{}))
		if diff := cmp.Diff(r, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("CheckRequest round trip (-want +got):\n%s", diff)
		}
	}
	tests := []struct {
		name string
		r    CheckResult
	}{
		{"valid", CheckResult{Valid: true, Identity: "octocat"}},
		{"rejected", CheckResult{Failure: &Failure{Code: CodeCredentialRejected, Message: "401"}}},
		{"retryable", CheckResult{Failure: &Failure{Code: CodeConnectorFailed, Message: "timeout", Retryable: true}}},
		{"zero", CheckResult{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fromProtoCheckResult(overTheWire(t, toProtoCheckResult(tt.r), &connectorv1.CheckResponse{}))
			if diff := cmp.Diff(tt.r, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailureConversion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		f    *Failure
		want *Failure
	}{
		{"nil", nil, nil},
		{"zero", &Failure{}, &Failure{}},
		{"full", &Failure{Code: CodeConnectorFailed, Message: "boom", Retryable: true}, &Failure{Code: CodeConnectorFailed, Message: "boom", Retryable: true}},
		{"invalid UTF-8 repaired", &Failure{Code: "c\xff", Message: "bad \xfe byte"}, &Failure{Code: "c\uFFFD", Message: "bad \uFFFD byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pf := toProtoFailure(tt.f)
			if pf != nil {
				pf = overTheWire(t, pf, &connectorv1.Failure{})
			}
			if diff := cmp.Diff(tt.want, fromProtoFailure(pf)); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailureError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		f    Failure
		want string
	}{
		{Failure{Code: "c"}, "c"},
		{Failure{Code: "c", Message: "m"}, "c: m"},
	}
	for _, tt := range tests {
		if got := tt.f.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    Message
	}{
		{"records", Message{Kind: KindRecords, Records: []Record{
			{Stream: "s", Key: "1", Data: json.RawMessage(`{"id":1}`)},
			{Stream: "t", Key: "é", Data: json.RawMessage(`"x"`)},
		}}},
		{"record without data", Message{Kind: KindRecords, Records: []Record{{Stream: "s", Key: "k"}}}},
		{"empty batch", Message{Kind: KindRecords, Records: []Record{}}},
		{"checkpoint", Message{Kind: KindCheckpoint, Checkpoint: []byte(`{"next":1000}`)}},
		{"empty checkpoint", Message{Kind: KindCheckpoint, Checkpoint: []byte{}}},
		{"progress", Message{Kind: KindProgress, Progress: Progress{Stream: "s", Done: 5, Total: 10, Message: "half"}}},
		{"progress unknown total", Message{Kind: KindProgress, Progress: Progress{Done: 5}}},
		{"interaction", Message{Kind: KindInteraction, Interaction: Interaction{
			Kind: InteractionCredentialsRequired, Missing: []string{"A", "B"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pm, err := toProtoMessage(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fromProtoMessage(overTheWire(t, pm, &connectorv1.RunMessage{}))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.m, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEmptyCheckpointStaysNonNil: an empty checkpoint is a checkpoint, not
// the absence of one.
func TestEmptyCheckpointStaysNonNil(t *testing.T) {
	t.Parallel()
	pm, err := toProtoMessage(Message{Kind: KindCheckpoint})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fromProtoMessage(overTheWire(t, pm, &connectorv1.RunMessage{}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != KindCheckpoint || got.Checkpoint == nil {
		t.Errorf("got %+v, want a checkpoint with non-nil empty state", got)
	}
}

func TestBadMessages(t *testing.T) {
	t.Parallel()
	for _, k := range []Kind{0, Kind(99)} {
		if _, err := toProtoMessage(Message{Kind: k}); err == nil {
			t.Errorf("toProtoMessage(kind %v) = nil error", k)
		}
	}
	if _, err := fromProtoMessage(&connectorv1.RunMessage{}); !errors.Is(err, ErrBadMessage) {
		t.Errorf("fromProtoMessage(empty) = %v, want ErrBadMessage", err)
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	tests := map[Kind]string{
		KindRecords: "records", KindCheckpoint: "checkpoint", KindProgress: "progress",
		KindInteraction: "interaction", Kind(0): "Kind(0)", Kind(42): "Kind(42)",
	}
	for k, want := range tests {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

func TestStatusConversion(t *testing.T) {
	t.Parallel()
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), -1)
	defer cancel2()
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		wantCode codes.Code
		// wantFailure is what fromStatus recovers; nil means it returns the
		// status error itself.
		wantFailure *Failure
	}{
		{"plain error", live, errors.New("boom"), codes.Aborted,
			&Failure{Code: CodeConnectorFailed, Message: "boom"}},
		{"failure", live, &Failure{Code: CodeCredentialRejected, Message: "401"}, codes.Aborted,
			&Failure{Code: CodeCredentialRejected, Message: "401"}},
		{"retryable failure", live, &Failure{Code: CodeConnectorFailed, Message: "503", Retryable: true}, codes.Aborted,
			&Failure{Code: CodeConnectorFailed, Message: "503", Retryable: true}},
		{"wrapped failure", live, fmt.Errorf("run: %w", &Failure{Code: "x", Message: "y"}), codes.Aborted,
			&Failure{Code: "x", Message: "y"}},
		{"failure not UTF-8", live, &Failure{Code: "c", Message: "\xff"}, codes.Aborted,
			&Failure{Code: "c", Message: "\uFFFD"}},
		{"cancelled", cancelled, context.Canceled, codes.Canceled, nil},
		{"wrapped cancel", cancelled, fmt.Errorf("emit: %w", context.Canceled), codes.Canceled, nil},
		{"deadline", expired, context.DeadlineExceeded, codes.DeadlineExceeded, nil},
		{"cancel error while the run is live is a failure", live, context.Canceled, codes.Aborted,
			&Failure{Code: CodeConnectorFailed, Message: "context canceled"}},
		{"failure after cancellation stays a failure", cancelled, &Failure{Code: "x"}, codes.Aborted,
			&Failure{Code: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			serr := toStatus(tt.ctx, tt.err)
			st, ok := status.FromError(serr)
			if !ok || st.Code() != tt.wantCode {
				t.Fatalf("toStatus = %v, want code %v", serr, tt.wantCode)
			}
			// Through the wire form of a status, as a client receives it.
			back := status.FromProto(overTheWire(t, st.Proto(), &spb.Status{})).Err()
			got := fromStatus(back)
			if tt.wantFailure == nil {
				if got != back {
					t.Errorf("fromStatus = %v, want the status error unchanged", got)
				}
				return
			}
			if diff := cmp.Diff(tt.wantFailure, got); diff != "" {
				t.Errorf("fromStatus (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("not a status", func(t *testing.T) {
		t.Parallel()
		err := errors.New("io")
		if got := fromStatus(err); got != err {
			t.Errorf("fromStatus(%v) = %v, want it unchanged", err, got)
		}
	})
	t.Run("status without a failure", func(t *testing.T) {
		t.Parallel()
		err := status.Error(codes.Unavailable, "connection reset")
		if got := fromStatus(err); got != err {
			t.Errorf("fromStatus(%v) = %v, want it unchanged", err, got)
		}
	})
}
