package demo

import (
	"encoding/hex"
	"fmt"
	"github.com/connhost/connhost/sdk"
	"regexp"
	"slices"

	"github.com/connhost/connhost/sdk/wire"
)

// Config limits.
const (
	// DefaultRecords is the number of records when the config names none.
	DefaultRecords = 100
	// MaxRecords bounds "records".
	MaxRecords = 100_000_000
	// MaxRecordDelayMS bounds "record_delay_ms" (one minute).
	MaxRecordDelayMS = 60_000
	// MaxPayloadBytes bounds "payload_bytes".
	MaxPayloadBytes = 1 << 20
	// MaxEchoEnv bounds the length of "echo_env".
	MaxEchoEnv = 64
	// MaxHelpers bounds "helpers".
	MaxHelpers = 8
)

// ErrInvalidConfig wraps every config rule a config breaks. It wraps
// sdk.ErrInvalidConfig, so the host records such a failure as
// invalid_config.
var ErrInvalidConfig = fmt.Errorf("demo: %w", sdk.ErrInvalidConfig)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Config is a demo connection's config. ConfigSchema documents the same
// fields for operators.
type Config struct {
	// Records is how many records stream "events" holds: ids 0 to
	// Records-1. Nil means DefaultRecords.
	Records *int64 `json:"records,omitempty"`
	// TokenSHA256, when set, is the hex SHA-256 of the one DEMO_TOKEN the
	// demo accepts; any other token fails the run and the check with
	// credential_rejected "token rejected", as a provider refusing a token.
	TokenSHA256 string `json:"token_sha256,omitempty"`
	// PayloadBytes pads each event with a "payload" string this long, for
	// throughput benchmarks with bigger records.
	PayloadBytes int `json:"payload_bytes,omitempty"`

	// Test knobs.

	// RecordDelayMS sleeps this long after each record (cut short by
	// cancellation) and reports progress after each record, for slow and
	// overlapping-run tests.
	RecordDelayMS int64 `json:"record_delay_ms,omitempty"`
	// FailAt, after this run has emitted that many events and before the
	// next checkpoint, fails the run with a retryable connector_failed
	// "injected failure".
	FailAt *int64 `json:"fail_at,omitempty"`
	// CrashAt, after this run has emitted that many events, flushes them
	// and exits the process with status CrashExitCode, without a
	// checkpoint: a crash between records and checkpoint.
	CrashAt *int64 `json:"crash_at,omitempty"`
	// FailTriggers limits FailAt and CrashAt to runs with these triggers
	// ("scheduled", "retry", "manual"); empty means every run. With
	// ["scheduled"], a scheduled run fails and its retry succeeds.
	FailTriggers []string `json:"fail_triggers,omitempty"`
	// EchoEnv names environment variables to report on stream "env", one
	// record each, keyed by name, holding whether the variable is set and
	// the hex SHA-256 of its value, never the value itself.
	EchoEnv []string `json:"echo_env,omitempty"`
	// Helpers starts this many /bin/sleep processes before the events,
	// every other one in a session of its own (setsid), and leaves them
	// running: the host must kill them when the run ends.
	Helpers int `json:"helpers,omitempty"`
}

// records returns the configured number of records.
func (c *Config) records() int64 {
	if c.Records == nil {
		return DefaultRecords
	}
	return *c.Records
}

// faultsApply reports whether FailAt and CrashAt apply to a run with the
// trigger.
func (c *Config) faultsApply(trigger string) bool {
	return len(c.FailTriggers) == 0 || slices.Contains(c.FailTriggers, trigger)
}

// Validate reports the first rule c breaks.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if n := c.records(); n < 0 || n > MaxRecords {
		return bad("records: %d is outside [0, %d]", n, MaxRecords)
	}
	if c.TokenSHA256 != "" {
		if b, err := hex.DecodeString(c.TokenSHA256); err != nil || len(b) != 32 {
			return bad("token_sha256: want 64 hex digits")
		}
	}
	if c.PayloadBytes < 0 || c.PayloadBytes > MaxPayloadBytes {
		return bad("payload_bytes: %d is outside [0, %d]", c.PayloadBytes, MaxPayloadBytes)
	}
	if c.RecordDelayMS < 0 || c.RecordDelayMS > MaxRecordDelayMS {
		return bad("record_delay_ms: %d is outside [0, %d]", c.RecordDelayMS, MaxRecordDelayMS)
	}
	if c.FailAt != nil && *c.FailAt < 0 {
		return bad("fail_at: %d is negative", *c.FailAt)
	}
	if c.CrashAt != nil && *c.CrashAt < 0 {
		return bad("crash_at: %d is negative", *c.CrashAt)
	}
	for i, tr := range c.FailTriggers {
		switch tr {
		case wire.TriggerScheduled, wire.TriggerRetry, wire.TriggerManual:
		default:
			return bad("fail_triggers[%d]: %q is not scheduled, retry or manual", i, tr)
		}
	}
	if c.Helpers < 0 || c.Helpers > MaxHelpers {
		return bad("helpers: %d is outside [0, %d]", c.Helpers, MaxHelpers)
	}
	if len(c.EchoEnv) > MaxEchoEnv {
		return bad("echo_env: more than %d names", MaxEchoEnv)
	}
	for i, n := range c.EchoEnv {
		if !envNameRE.MatchString(n) {
			return bad("echo_env[%d]: %q is not an environment variable name", i, n)
		}
	}
	return nil
}

// ConfigSchema is the JSON Schema of Config, served in the manifest.
const ConfigSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "demo connection config",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "records": {
      "description": "Number of records on stream events (ids 0..records-1).",
      "type": "integer", "minimum": 0, "maximum": 100000000, "default": 100
    },
    "token_sha256": {
      "description": "Hex SHA-256 of the only DEMO_TOKEN accepted; any other token fails with credential_rejected \"token rejected\". Unset: any non-empty token is accepted.",
      "type": "string", "pattern": "^[0-9a-fA-F]{64}$"
    },
    "payload_bytes": {
      "description": "Pad each event with a payload string of this many bytes.",
      "type": "integer", "minimum": 0, "maximum": 1048576, "default": 0
    },
    "record_delay_ms": {
      "description": "Test knob: sleep this many milliseconds after each record (cancellable) and report progress after each record.",
      "type": "integer", "minimum": 0, "maximum": 60000, "default": 0
    },
    "fail_at": {
      "description": "Test knob: after this run emits this many events, before the next checkpoint, fail with a retryable connector_failed \"injected failure\".",
      "type": "integer", "minimum": 0
    },
    "crash_at": {
      "description": "Test knob: after this run emits this many events, flush them and exit with status 3 before any further checkpoint.",
      "type": "integer", "minimum": 0
    },
    "fail_triggers": {
      "description": "Test knob: apply fail_at and crash_at only to runs with these triggers; empty means all.",
      "type": "array", "items": {"enum": ["scheduled", "retry", "manual"]}
    },
    "echo_env": {
      "description": "Test knob: for each name, emit a record on stream env with whether it is set and the hex SHA-256 of its value (never the value).",
      "type": "array", "maxItems": 64,
      "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"}
    },
    "helpers": {
      "description": "Test knob: start this many /bin/sleep processes (every other one in a session of its own) and leave them running; the host kills them when the run ends.",
      "type": "integer", "minimum": 0, "maximum": 8, "default": 0
    }
  }
}`
