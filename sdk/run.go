package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// Batching and size limits. The SDK sends records in batches so a
// connector can Emit one record at a time without one gRPC message each.
const (
	// MaxBatchRecords is the number of pending records that triggers a send.
	MaxBatchRecords = 500
	// MaxBatchBytes is the pending size (keys and data) that triggers a send.
	MaxBatchBytes = 1 << 20
	// MaxRecordBytes bounds one record's JSON data.
	MaxRecordBytes = 4 << 20
	// MaxCheckpointBytes bounds a checkpoint state. The host sends it back
	// in the next RunRequest, and a plugin's gRPC server accepts requests of
	// at most 4 MiB.
	MaxCheckpointBytes = 1 << 20
)

// Run is one run of a connector: its request, its credentials and the
// methods that send records, checkpoints and progress to the host.
//
// Emit, Checkpoint, Progress and Flush may be called from several
// goroutines; they send in call order. None may be used after
// Connector.Run returns.
type Run struct {
	ctx   context.Context
	req   wire.RunRequest
	a     *adapter
	creds map[string]string
	red   redactor
	log   hclog.Logger

	mu         sync.Mutex
	send       func(wire.Message) error
	batch      []wire.Record
	batchBytes int
	err        error // sticky: the first failed send
	done       bool
}

// RunID is the host's id of this run.
func (r *Run) RunID() string { return r.req.RunID }

// ConnectionID is the id of the connection being run. Data a connector
// keeps outside the host must be keyed by it.
func (r *Run) ConnectionID() string { return r.req.ConnectionID }

// Trigger says what started the run: "scheduled", "retry" or "manual"
// (wire.TriggerScheduled, wire.TriggerRetry, wire.TriggerManual).
func (r *Run) Trigger() string { return r.req.Trigger }

// Config decodes the connection's JSON config into v strictly: an unknown
// field is an error wrapping ErrInvalidConfig. An empty config decodes as
// {}.
func (r *Run) Config(v any) error { return decodeConfig(r.req.Config, v) }

// RawConfig returns the connection's JSON config, {} when empty.
func (r *Run) RawConfig() json.RawMessage { return rawConfig(r.req.Config) }

// State returns the last committed checkpoint state, or nil on a first run.
func (r *Run) State() []byte {
	if len(r.req.Checkpoint) == 0 {
		return nil
	}
	return bytes.Clone(r.req.Checkpoint)
}

// DecodeState JSON-decodes State into v. It returns false, and leaves v
// alone, when there is no state yet.
func (r *Run) DecodeState(v any) (bool, error) {
	if len(r.req.Checkpoint) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(r.req.Checkpoint, v); err != nil {
		return true, fmt.Errorf("sdk: decode state: %w", err)
	}
	return true, nil
}

// Credential returns the value of a credential the manifest declares in
// Auth.Required. The SDK has already checked that every declared value is
// present and non-empty, so the result is never empty. Asking for a name
// the manifest does not declare is a programming error and panics.
func (r *Run) Credential(name string) string { return credential(r.a, r.creds, name) }

// LookupEnv reads the connector's environment: env_passthrough names, run
// metadata (CONNHOST_RUN_ID, …) or anything else the host set. Use
// Credential for secrets. Under sdktest it reads Options.Env, not the test
// process's environment.
func (r *Run) LookupEnv(name string) (string, bool) { return r.a.env(name) }

// Logger returns the run's logger. Its lines reach the host's log with
// run_id and connection_id fields; credential values are redacted.
func (r *Run) Logger() hclog.Logger { return r.log }

// Emit queues one record for the host. stream must be declared in the
// manifest, key must be non-empty UTF-8, and value is marshalled with
// encoding/json (a json.RawMessage is sent as is, after a validity check;
// note a []byte marshals as a base64 string). Records are sent in batches;
// Emit blocks while the host is applying backpressure. After the run's
// context is cancelled Emit returns the context's error.
func (r *Run) Emit(stream, key string, value any) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if !r.a.streams[stream] {
		return fmt.Errorf("%w: %q", ErrUndeclaredStream, stream)
	}
	if key == "" || !utf8.ValidString(key) {
		return fmt.Errorf("%w: stream %q: key is empty or not UTF-8", ErrInvalidKey, stream)
	}
	data, err := marshalValue(value)
	if err != nil {
		return fmt.Errorf("sdk: emit %s/%s: %w", stream, key, err)
	}
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("%w: %s/%s is %d bytes, limit %d", ErrRecordTooLarge, stream, key, len(data), MaxRecordBytes)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return err
	}
	r.batch = append(r.batch, wire.Record{Stream: stream, Key: key, Data: data})
	r.batchBytes += len(stream) + len(key) + len(data)
	if len(r.batch) >= MaxBatchRecords || r.batchBytes >= MaxBatchBytes {
		return r.flushLocked()
	}
	return nil
}

// Checkpoint sends pending records, then a checkpoint: the state the next
// run resumes from (see State). The host commits a checkpoint together
// with every record sent before it. state is marshalled with encoding/json;
// a []byte or json.RawMessage is sent as is.
func (r *Run) Checkpoint(state any) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	var data []byte
	switch v := state.(type) {
	case []byte:
		data = bytes.Clone(v)
	case json.RawMessage:
		data = bytes.Clone(v)
	default:
		b, err := marshalJSON(state)
		if err != nil {
			return fmt.Errorf("sdk: checkpoint: %w", err)
		}
		data = b
	}
	if data == nil {
		data = []byte{}
	}
	if len(data) > MaxCheckpointBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrCheckpointTooLarge, len(data), MaxCheckpointBytes)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return err
	}
	if err := r.flushLocked(); err != nil {
		return err
	}
	return r.sendLocked(wire.Message{Kind: wire.KindCheckpoint, Checkpoint: data})
}

// Progress sends pending records, then a progress report for stream (or
// for the whole run when stream is ""). total is 0 when unknown. The host
// shows progress live; reporting it also makes pending records visible.
func (r *Run) Progress(stream string, done, total int64, message string) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if stream != "" && !r.a.streams[stream] {
		return fmt.Errorf("%w: %q", ErrUndeclaredStream, stream)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return err
	}
	if err := r.flushLocked(); err != nil {
		return err
	}
	return r.sendLocked(wire.Message{Kind: wire.KindProgress, Progress: wire.Progress{
		Stream: stream, Done: done, Total: total, Message: r.red.Message(message),
	}})
}

// Flush sends pending records now. The SDK flushes on its own (see
// MaxBatchRecords), before every checkpoint and progress report, and when
// Run returns; Flush is for a connector that must know its records have
// been handed to the transport before it does something else.
func (r *Run) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return err
	}
	return r.flushLocked()
}

// finish flushes what is pending and closes the run to further sends.
func (r *Run) finish() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	if r.err == nil && r.ctx.Err() == nil {
		err = r.flushLocked()
	}
	r.done = true
	r.batch = nil
	return err
}

func (r *Run) usableLocked() error {
	switch {
	case r.done:
		return ErrRunFinished
	case r.err != nil:
		return r.err
	}
	return r.ctx.Err()
}

func (r *Run) flushLocked() error {
	if len(r.batch) == 0 {
		return nil
	}
	// A fresh slice per batch: the receiver may keep the one it was given.
	batch := r.batch
	r.batch = make([]wire.Record, 0, min(2*len(batch), MaxBatchRecords))
	r.batchBytes = 0
	return r.sendLocked(wire.Message{Kind: wire.KindRecords, Records: batch})
}

func (r *Run) sendLocked(m wire.Message) error {
	if err := r.send(m); err != nil {
		if cerr := r.ctx.Err(); cerr != nil {
			err = cerr
		} else {
			err = fmt.Errorf("sdk: send to host: %w", err)
		}
		r.err = err
		return err
	}
	return nil
}

// marshalValue returns the JSON of a record value.
func marshalValue(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, ErrInvalidJSON
		}
		return bytes.Clone(raw), nil
	}
	return marshalJSON(v)
}

// marshalJSON is json.Marshal without HTML escaping: records and state are
// data, so "> fortune" reaches the store, the API and the CLI as written,
// not as "\u003e fortune".
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeConfig decodes a connection config strictly.
func decodeConfig(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(rawConfig(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrInvalidConfig)
	}
	return nil
}

func rawConfig(raw []byte) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("{}")
	}
	return bytes.Clone(raw)
}

// credential implements Run.Credential and Check.Credential.
func credential(a *adapter, creds map[string]string, name string) string {
	if !a.required[name] {
		panic(fmt.Sprintf("sdk: Credential(%q): the name is not declared in Manifest().Auth.Required", name))
	}
	return creds[name]
}
