// Package wire is the one place the host and connector plugins agree on how
// they talk: the go-plugin handshake, the plugin set, and plain Go types for
// every message of the connhost.connector.v1 contract.
//
// Generated protobuf types never leave this package: conversion lives in the
// to*/from* functions of convert.go, and both sides program against the
// Connector interface. Connector authors use package sdk, which implements
// Connector for them; the host's launcher gets a Connector back from
// go-plugin's Dispense.
package wire

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/connhost/connhost/sdk/manifest"
	plugin "github.com/hashicorp/go-plugin"
)

// The handshake. Bump ProtocolVersion (and add a VersionedPlugins entry)
// when the contract changes incompatibly.
const (
	ProtocolVersion  = 1
	MagicCookieKey   = "CONNHOST_PLUGIN"
	MagicCookieValue = "c0nnh0st-connector-5f3a9d2e"
	// PluginKey is the key of the connector plugin in the plugin set.
	PluginKey = "connector"
)

// Handshake is the go-plugin handshake shared by host and plugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// Connector is the contract both sides program against. The SDK implements
// it inside the plugin; the host receives a gRPC-backed implementation from
// Dispense.
type Connector interface {
	// Describe returns the connector's manifest.
	Describe(ctx context.Context) (manifest.Manifest, error)
	// Check validates credential and config without collecting.
	Check(ctx context.Context, req CheckRequest) (CheckResult, error)
	// Run runs the connector. On the plugin side emit sends a message to
	// the host; on the host side emit receives each message in order, and
	// an error it returns cancels the run. Run returns nil on success or an
	// error; a typed connector failure is a *Failure.
	Run(ctx context.Context, req RunRequest, emit func(Message) error) error
}

// CheckRequest asks a connector to validate its credential and config.
type CheckRequest struct {
	ConnectionID string
	Config       json.RawMessage
}

// CheckResult is the outcome of Check.
type CheckResult struct {
	Valid bool
	// Identity names who the credential belongs to (e.g. a login).
	Identity string
	// Failure is set when Valid is false.
	Failure *Failure
}

// Triggers.
const (
	TriggerScheduled = "scheduled"
	TriggerRetry     = "retry"
	TriggerManual    = "manual"
)

// RunRequest starts a run.
type RunRequest struct {
	RunID        string
	ConnectionID string
	Trigger      string
	Config       json.RawMessage
	// Checkpoint is the last committed checkpoint state; nil on a first run.
	Checkpoint []byte
}

// Kind says which field of a Message is set.
type Kind int

// Message kinds.
const (
	KindRecords Kind = iota + 1
	KindCheckpoint
	KindProgress
	KindInteraction
)

func (k Kind) String() string {
	switch k {
	case KindRecords:
		return "records"
	case KindCheckpoint:
		return "checkpoint"
	case KindProgress:
		return "progress"
	case KindInteraction:
		return "interaction"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Message is one message of a run's stream. Exactly the field named by Kind
// is meaningful.
type Message struct {
	Kind        Kind
	Records     []Record
	Checkpoint  []byte
	Progress    Progress
	Interaction Interaction
}

// Record is one record: a JSON value keyed within its stream.
type Record struct {
	Stream string
	Key    string
	Data   json.RawMessage
}

// Progress reports how far a stream has come.
type Progress struct {
	Stream  string
	Done    int64
	Total   int64 // 0 when unknown
	Message string
}

// InteractionCredentialsRequired is the interaction kind a connector sends
// when declared credentials are absent or empty.
const InteractionCredentialsRequired = "credentials_required"

// Interaction asks the operator for something; Missing holds names only.
type Interaction struct {
	Kind    string
	Missing []string
}

// Failure codes a connector may report. The host maps them onto its own
// failure codes of the same names.
const (
	CodeConnectorFailed     = "connector_failed"
	CodeCredentialsRequired = "credentials_required"
	CodeCredentialRejected  = "credential_rejected"
	// CodeInvalidConfig: the connection's config is not one the connector
	// accepts (a connector stricter than its published schema). It says
	// nothing about the credential.
	CodeInvalidConfig = "invalid_config"
)

// Failure is a connector's typed failure. It crosses the wire in the
// details of the gRPC status that ends a Run.
type Failure struct {
	Code      string
	Message   string
	Retryable bool
}

func (f *Failure) Error() string {
	if f.Message == "" {
		return f.Code
	}
	return f.Code + ": " + f.Message
}
