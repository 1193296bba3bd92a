package wire

import (
	"errors"
	"fmt"
	"strings"

	connectorv1 "github.com/connhost/connhost/sdk/internal/connectorv1"
	"github.com/connhost/connhost/sdk/manifest"
)

// ErrBadMessage is returned for a RunMessage with no known payload.
var ErrBadMessage = errors.New("wire: run message has no payload")

func toProtoManifest(m manifest.Manifest) *connectorv1.Manifest {
	pm := &connectorv1.Manifest{
		ConnectorKey:   m.ConnectorKey,
		Version:        m.Version,
		DisplayName:    m.DisplayName,
		Description:    m.Description,
		Capabilities:   &connectorv1.Capabilities{Auth: &connectorv1.Auth{Kind: m.Auth.Kind, Required: m.Auth.Required}},
		EnvPassthrough: m.EnvPassthrough,
		DefaultSchedule: &connectorv1.Schedule{
			Spec:       m.DefaultSchedule.Spec,
			AutoEnroll: m.DefaultSchedule.AutoEnroll,
		},
		ConfigSchema: m.ConfigSchema,
	}
	for _, s := range m.Streams {
		pm.Streams = append(pm.Streams, &connectorv1.Stream{Name: s.Name, KeyFields: s.KeyFields})
	}
	return pm
}

func fromProtoManifest(pm *connectorv1.Manifest) manifest.Manifest {
	m := manifest.Manifest{
		ConnectorKey:   pm.GetConnectorKey(),
		Version:        pm.GetVersion(),
		DisplayName:    pm.GetDisplayName(),
		Description:    pm.GetDescription(),
		EnvPassthrough: pm.GetEnvPassthrough(),
		Auth: manifest.Auth{
			Kind:     pm.GetCapabilities().GetAuth().GetKind(),
			Required: pm.GetCapabilities().GetAuth().GetRequired(),
		},
		DefaultSchedule: manifest.Schedule{
			Spec:       pm.GetDefaultSchedule().GetSpec(),
			AutoEnroll: pm.GetDefaultSchedule().GetAutoEnroll(),
		},
		ConfigSchema: pm.GetConfigSchema(),
	}
	for _, s := range pm.GetStreams() {
		m.Streams = append(m.Streams, manifest.Stream{Name: s.GetName(), KeyFields: s.GetKeyFields()})
	}
	return m
}

func toProtoCheckRequest(r CheckRequest) *connectorv1.CheckRequest {
	return &connectorv1.CheckRequest{ConnectionId: r.ConnectionID, Config: r.Config}
}

func fromProtoCheckRequest(r *connectorv1.CheckRequest) CheckRequest {
	return CheckRequest{ConnectionID: r.GetConnectionId(), Config: r.GetConfig()}
}

func toProtoCheckResult(r CheckResult) *connectorv1.CheckResponse {
	return &connectorv1.CheckResponse{Valid: r.Valid, Identity: r.Identity, Failure: toProtoFailure(r.Failure)}
}

func fromProtoCheckResult(r *connectorv1.CheckResponse) CheckResult {
	return CheckResult{Valid: r.GetValid(), Identity: r.GetIdentity(), Failure: fromProtoFailure(r.GetFailure())}
}

func toProtoFailure(f *Failure) *connectorv1.Failure {
	if f == nil {
		return nil
	}
	// Protobuf refuses to marshal invalid UTF-8 in a string field; a
	// failure must still reach the host with its code, so repair the text.
	return &connectorv1.Failure{
		Code:      strings.ToValidUTF8(f.Code, "\uFFFD"),
		Message:   strings.ToValidUTF8(f.Message, "\uFFFD"),
		Retryable: f.Retryable,
	}
}

func fromProtoFailure(f *connectorv1.Failure) *Failure {
	if f == nil {
		return nil
	}
	return &Failure{Code: f.GetCode(), Message: f.GetMessage(), Retryable: f.GetRetryable()}
}

func toProtoRunRequest(r RunRequest) *connectorv1.RunRequest {
	return &connectorv1.RunRequest{
		RunId:        r.RunID,
		ConnectionId: r.ConnectionID,
		Trigger:      r.Trigger,
		Config:       r.Config,
		Checkpoint:   r.Checkpoint,
	}
}

func fromProtoRunRequest(r *connectorv1.RunRequest) RunRequest {
	return RunRequest{
		RunID:        r.GetRunId(),
		ConnectionID: r.GetConnectionId(),
		Trigger:      r.GetTrigger(),
		Config:       r.GetConfig(),
		Checkpoint:   r.GetCheckpoint(),
	}
}

func toProtoMessage(m Message) (*connectorv1.RunMessage, error) {
	switch m.Kind {
	case KindRecords:
		b := &connectorv1.RecordBatch{Records: make([]*connectorv1.Record, len(m.Records))}
		for i, r := range m.Records {
			b.Records[i] = &connectorv1.Record{Stream: r.Stream, Key: r.Key, Data: r.Data}
		}
		return &connectorv1.RunMessage{Message: &connectorv1.RunMessage_Records{Records: b}}, nil
	case KindCheckpoint:
		return &connectorv1.RunMessage{Message: &connectorv1.RunMessage_Checkpoint{
			Checkpoint: &connectorv1.Checkpoint{State: m.Checkpoint}}}, nil
	case KindProgress:
		p := m.Progress
		return &connectorv1.RunMessage{Message: &connectorv1.RunMessage_Progress{
			Progress: &connectorv1.Progress{Stream: p.Stream, Done: p.Done, Total: p.Total, Message: p.Message}}}, nil
	case KindInteraction:
		return &connectorv1.RunMessage{Message: &connectorv1.RunMessage_Interaction{
			Interaction: &connectorv1.Interaction{Kind: m.Interaction.Kind, Missing: m.Interaction.Missing}}}, nil
	}
	return nil, fmt.Errorf("wire: unknown message kind %v", m.Kind)
}

func fromProtoMessage(pm *connectorv1.RunMessage) (Message, error) {
	switch v := pm.GetMessage().(type) {
	case *connectorv1.RunMessage_Records:
		recs := make([]Record, len(v.Records.GetRecords()))
		for i, r := range v.Records.GetRecords() {
			recs[i] = Record{Stream: r.GetStream(), Key: r.GetKey(), Data: r.GetData()}
		}
		return Message{Kind: KindRecords, Records: recs}, nil
	case *connectorv1.RunMessage_Checkpoint:
		st := v.Checkpoint.GetState()
		if st == nil {
			st = []byte{}
		}
		return Message{Kind: KindCheckpoint, Checkpoint: st}, nil
	case *connectorv1.RunMessage_Progress:
		p := v.Progress
		return Message{Kind: KindProgress, Progress: Progress{
			Stream: p.GetStream(), Done: p.GetDone(), Total: p.GetTotal(), Message: p.GetMessage()}}, nil
	case *connectorv1.RunMessage_Interaction:
		return Message{Kind: KindInteraction, Interaction: Interaction{
			Kind: v.Interaction.GetKind(), Missing: v.Interaction.GetMissing()}}, nil
	}
	return Message{}, ErrBadMessage
}
