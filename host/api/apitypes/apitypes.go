// Package apitypes is the JSON contract of connhost's HTTP API (/v1): the
// request and response bodies the server writes and the CLI reads. Both
// sides import these types, so they cannot drift; the OpenAPI document
// served at /v1/openapi.json describes the same shapes.
//
// Conventions: timestamps are RFC 3339 UTC strings, omitted when not
// reached (never "");
// ids are opaque strings; lists come in an object with an "items" array
// and a "next" cursor ("" on the last page); every error is
// {"error":{"code":"…","message":"…"}} with a stable code. No type here
// ever carries a secret value: credential reads expose names and states
// only, and the only secret-bearing body is CredentialSetRequest, which is
// write-only.
package apitypes

import (
	"bytes"
	"encoding/json"
)

// Error is the body of every non-2xx response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is a typed error. Field names the offending input, if any.
// RunID is set when a run trigger is refused: the refused attempt is a run
// row (status refused) the operator can read.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	RunID   string `json:"run_id,omitempty"`
}

// Error codes beyond the run failure codes (host/failure).
const (
	CodeUnauthorized   = "unauthorized"    // 401, no detail
	CodeInvalidRequest = "invalid_request" // 400, Field set
	// CodeInvalidCursor: 400, field cursor: not a next value this list
	// returned (malformed, or another list's).
	CodeInvalidCursor = "invalid_cursor"
	// CodeInvalidConfig: 400, the config does not match the connector's
	// config_schema; Field is the JSON pointer of the offending value in
	// the request body ("/config/records"). Nothing is stored.
	CodeInvalidConfig = "invalid_config"
	// CodeSecretTooShort: 400, a credential value is shorter than the
	// host's minimum (8 bytes); Field names the value's name, never the
	// value.
	CodeSecretTooShort   = "secret_too_short"
	CodeNotFound         = "not_found"         // 404 for unknown routes/runs
	CodeRunNotFound      = "run_not_found"     // 404
	CodePayloadTooLarge  = "payload_too_large" // 413
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict" // 409 invalid state transition
	CodeInternal         = "internal"
	// CodeCredentialNotFound: 404, the connection never stored a
	// credential (revoke or delete of nothing).
	CodeCredentialNotFound = "credential_not_found"
	// CodeUnavailable: 503, the host is not ready or shutting down.
	CodeUnavailable = "unavailable"
)

// Auth is a connector's auth capability.
type Auth struct {
	Kind     string   `json:"kind"`
	Required []string `json:"required"`
}

// Stream is a connector stream.
type Stream struct {
	Name      string   `json:"name"`
	KeyFields []string `json:"key_fields"`
}

// Connector is GET /v1/connectors[/{key}].
type Connector struct {
	ConnectorKey    string   `json:"connector_key"`
	Version         string   `json:"version"`
	DisplayName     string   `json:"display_name,omitempty"`
	Description     string   `json:"description,omitempty"`
	Auth            Auth     `json:"auth"`
	EnvPassthrough  []string `json:"env_passthrough"`
	Streams         []Stream `json:"streams"`
	DefaultSchedule string   `json:"default_schedule,omitempty"`
	AutoEnroll      bool     `json:"auto_enroll"`
	SHA256          string   `json:"sha256"`
	// ConfigSchema is the manifest's JSON Schema, byte for byte.
	ConfigSchema json.RawMessage `json:"config_schema,omitempty"`
}

// Connection is a connection resource.
type Connection struct {
	ID           string `json:"id"`
	ConnectorKey string `json:"connector_key"`
	Label        string `json:"label"`
	// Config is the connection's config, a JSON object ({} when none),
	// kept as raw JSON so a reader sees its numbers exactly (an int64
	// beyond 2^53 is not rounded through a float64).
	Config json.RawMessage `json:"config"`

	// Schedule is the connection's own spec ("" when it has none).
	Schedule string `json:"schedule"`
	// ScheduleInForce is the spec the connection is scheduled by: its
	// own, else its connector's auto-enrolling default; omitted when
	// neither (manual runs only) and for a revoked connection.
	// ScheduleSource says which: own, connector_default or none. Jitter
	// spreads the schedule in force.
	ScheduleInForce string `json:"schedule_in_force,omitempty"`
	ScheduleSource  string `json:"schedule_source"`
	Jitter          string `json:"jitter,omitempty"` // Go duration, e.g. "30s"
	State           string `json:"state"`            // active | paused | revoked
	CreatedAt       string `json:"created_at"`
	UpdatedAt       string `json:"updated_at"`
	// Enrollment is the connection's current enrollment outcome.
	Enrollment *EnrollmentEntry `json:"enrollment,omitempty"`
	// NextRun is the next scheduled run, omitted when not enrolled.
	NextRun string `json:"next_run,omitempty"`
	// CoalescedTicks counts schedule ticks dropped because the
	// connection's previous occurrence was still queued or running;
	// LastCoalescedAt is the latest one's instant.
	CoalescedTicks  int64  `json:"coalesced_ticks"`
	LastCoalescedAt string `json:"last_coalesced_at,omitempty"`

	// Health is the connection's derived health: a verdict, why, what an
	// operator must do and since when (omitted only by a server that
	// derives none).
	Health *Health `json:"health,omitempty"`
	// Hold is set while the connection's schedule is held after a
	// scheduled launch that only a person can fix; omitted otherwise.
	Hold *Hold `json:"hold,omitempty"`
	// BackoffUntil is when a schedule backing off after repeated
	// failures runs again; omitted when it does not back off.
	BackoffUntil string `json:"backoff_until,omitempty"`
	// Streak is the latest counted run and the failures in a row behind
	// it; omitted before the first.
	Streak *Streak `json:"streak,omitempty"`
}

// Health is a connection's derived health (host/health). Verdicts:
// healthy, never_run, failing, invalid_config, needs_credential,
// credential_rejected, credential_unavailable, connector_missing,
// paused, revoked.
type Health struct {
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// Action is what an operator must do; omitted when nothing.
	Action string `json:"action,omitempty"`
	// Since is when the condition began; omitted when unknown.
	Since string `json:"since,omitempty"`
	// NeedsPerson puts the connection on the attention list.
	NeedsPerson bool `json:"needs_person"`
}

// Hold is a held schedule: the failure code and message of the run that
// held it.
type Hold struct {
	Code    string `json:"code"`
	Message string `json:"message,omitempty"`
	At      string `json:"at,omitempty"`
	RunID   string `json:"run_id,omitempty"`
}

// Streak is a connection's latest counted run and, when it failed, the
// failures in a row with one code.
type Streak struct {
	LastRunStatus string `json:"last_run_status"`
	LastRunAt     string `json:"last_run_at,omitempty"`
	// Failures is omitted when the latest run succeeded.
	Failures *Failures `json:"failures,omitempty"`
}

// Failures counts the latest runs in a row that failed with Code.
type Failures struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
	Since string `json:"since,omitempty"`
}

// AttentionItem is one entry of GET /v1/attention: a connection whose
// health needs a person, with what to do.
type AttentionItem struct {
	ConnectionID string `json:"connection_id"`
	ConnectorKey string `json:"connector_key"`
	Label        string `json:"label"`
	Verdict      string `json:"verdict"`
	Reason       string `json:"reason"`
	Action       string `json:"action,omitempty"`
	Since        string `json:"since,omitempty"`
}

// ConnectionCreateRequest is POST /v1/connections.
type ConnectionCreateRequest struct {
	ConnectorKey string         `json:"connector_key"`
	Label        string         `json:"label"`
	Config       map[string]any `json:"config,omitempty"`
	Schedule     string         `json:"schedule,omitempty"`
	Jitter       string         `json:"jitter,omitempty"`
}

// ConnectionUpdateRequest is PATCH /v1/connections/{id}; nil fields are
// unchanged. Schedule "" removes the connection's own schedule (and its
// jitter, unless Jitter is given too). Jitter applies to the schedule in
// force: the connection's own, or its connector's default.
type ConnectionUpdateRequest struct {
	Label    *string         `json:"label,omitempty"`
	Config   *map[string]any `json:"config,omitempty"`
	Schedule *string         `json:"schedule,omitempty"`
	Jitter   *string         `json:"jitter,omitempty"`
}

// ConnectionDeleted is the body of DELETE /v1/connections/{id}.
type ConnectionDeleted struct {
	ID         string `json:"id"`
	Records    int64  `json:"records_deleted"`
	Checkpoint bool   `json:"checkpoint_deleted"`
	Credential bool   `json:"credential_deleted"`
}

// CredentialSetRequest is PUT /v1/connections/{id}/credential: the only
// secret-bearing body. Values map env names to secret values. It captures
// a credential, or rotates an active one.
type CredentialSetRequest struct {
	Values map[string]string `json:"values"`
	// Order is the names of Values in the order the request gave them
	// (set when decoding), so an invalid name can be reported by its
	// position — a name may be a secret pasted in the wrong place, and is
	// never echoed.
	Order []string `json:"-"`
}

// UnmarshalJSON decodes the request, unknown fields refused, and keeps
// the order of the values' names.
func (r *CredentialSetRequest) UnmarshalJSON(b []byte) error {
	var plain struct {
		Values map[string]string `json:"values"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&plain); err != nil {
		return err
	}
	r.Values, r.Order = plain.Values, nil
	dec = json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		if key != "values" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return err // null: no values
		}
		for dec.More() {
			name, err := dec.Token()
			if err != nil {
				return err
			}
			r.Order = append(r.Order, name.(string))
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // }
			return err
		}
	}
	return nil
}

// Credential is GET /v1/connections/{id}/credential: metadata only.
// Present is true when the credential is usable (state active) — the
// same question the enrollment gate asks; State tells the rest.
type Credential struct {
	Present bool   `json:"present"`
	Kind    string `json:"kind,omitempty"`
	// State is none, active, revoked, deleted, quarantined, or
	// key_missing: active, but sealed under a key the loaded keyset does
	// not hold (it cannot be used until that keyset is restored).
	State      string    `json:"state"`
	Names      []string  `json:"names"`
	KeyID      uint32    `json:"key_id,omitempty"`
	CapturedAt string    `json:"captured_at,omitempty"`
	RotatedAt  string    `json:"rotated_at,omitempty"`
	RevokedAt  string    `json:"revoked_at,omitempty"`
	DeletedAt  string    `json:"deleted_at,omitempty"`
	Validity   *Validity `json:"validity,omitempty"`
	// Check is the connector's check run right after a capture; only the
	// response of PUT /v1/connections/{id}/credential carries it.
	Check *CredentialCheck `json:"check,omitempty"`
}

// CredentialCheck is the outcome of the check that follows a capture.
// Verdict is true when the check judged the credential (valid, or
// refused: credential_rejected, credentials_required), and only then is it
// stored as the credential's validity. Otherwise (a network or TLS
// failure, a config the connector refuses, a crash, a timeout) no validity
// is recorded (the captured credential stays unchecked) and Message says
// why the check was inconclusive.
type CredentialCheck struct {
	Verdict  bool   `json:"verdict"`
	Valid    bool   `json:"valid"`
	Identity string `json:"identity,omitempty"`
	// Message is "code: message" for a failed check, redacted.
	Message string `json:"message,omitempty"`
}

// Validity is a credential's last check result.
type Validity struct {
	CheckedAt string `json:"checked_at"`
	Valid     bool   `json:"valid"`
	Message   string `json:"message,omitempty"`
}

// Run is a run resource (also the body of POST /v1/connections/{id}/runs,
// status 202).
type Run struct {
	ID             string `json:"id"`
	ConnectionID   string `json:"connection_id"`
	Trigger        string `json:"trigger"`
	Attempt        int    `json:"attempt"`
	RetryOf        string `json:"retry_of,omitempty"`
	Status         string `json:"status"`
	FailureCode    string `json:"failure_code"`
	FailureMessage string `json:"failure_message,omitempty"`
	CreatedAt      string `json:"created_at"`
	StartedAt      string `json:"started_at,omitempty"`
	EndedAt        string `json:"ended_at,omitempty"`
	Records        int64  `json:"records"`
	// StreamRecords is Records by stream name ({"events": 20}): the
	// counts sum to Records. Omitted while the run has committed no
	// record, and for a run from before the host kept counts by stream
	// (its Records may then be above 0).
	StreamRecords map[string]int64 `json:"stream_records,omitempty"`
	// HostID is the host that ran (or refused) the run; "" while a
	// queued manual run waits for a host.
	HostID string `json:"host_id"`
	// ScheduledFor is the occurrence's due instant of a scheduled run (a
	// retry's: its backoff instant); "" for a manual run.
	ScheduledFor string `json:"scheduled_for,omitempty"`
	// Provenance is where every variable of the run's child environment
	// came from, or the credential resolution that refused the launch;
	// omitted for a run that ended before its credential was resolved.
	Provenance *Provenance `json:"provenance,omitempty"`
}

// HostList is GET /v1/hosts.
type HostList struct {
	Hosts []Host `json:"hosts"`
}

// Host is one `connhost serve` process on the store (GET /v1/hosts).
type Host struct {
	ID         string `json:"id"`
	Addr       string `json:"addr"`
	Version    string `json:"version"`
	Status     string `json:"status"` // live | stopped | crashed
	StartedAt  string `json:"started_at"`
	LastSeen   string `json:"last_seen"`
	EndedAt    string `json:"ended_at,omitempty"`
	RunsActive int    `json:"runs_active"`
}

// RunEvent is one event of GET /v1/runs/{id}/events, a Server-Sent Events
// stream ("event: <kind>\ndata: <json>\n\n"); the stream ends after kind
// "end".
type RunEvent struct {
	RunID        string `json:"run_id"`
	ConnectionID string `json:"connection_id"`
	Kind         string `json:"kind"` // status | progress | records | end
	At           string `json:"at"`
	Status       string `json:"status,omitempty"`
	FailureCode  string `json:"failure_code,omitempty"`
	Stream       string `json:"stream,omitempty"`
	Done         int64  `json:"done,omitempty"`
	Total        int64  `json:"total,omitempty"`
	Message      string `json:"message,omitempty"`
	Records      int64  `json:"records,omitempty"`
	// Received counts the records the host received from the connector
	// so far, committed or not; Records counts the committed ones.
	Received int64 `json:"received,omitempty"`
	// StreamRecords is Records by stream name (records events).
	StreamRecords map[string]int64 `json:"stream_records,omitempty"`
}

// Record is one collected record. Data is the record as the connector
// emitted it, raw JSON (no re-ordered keys, no number
// rounded through a float64).
type Record struct {
	Stream    string          `json:"stream"`
	Key       string          `json:"key"`
	Data      json.RawMessage `json:"data"`
	RunID     string          `json:"run_id"`
	UpdatedAt string          `json:"updated_at"`
}

// Checkpoint is GET /v1/connections/{id}/checkpoint: the connection's
// last committed checkpoint, the state its next run resumes from. State
// is the checkpoint as JSON when it is JSON (the SDK writes JSON), else
// StateBase64 holds its bytes; RunID is the run that committed it.
// Present is false when the connection has none (its next run starts
// from scratch).
type Checkpoint struct {
	ConnectionID string          `json:"connection_id"`
	Present      bool            `json:"present"`
	State        json.RawMessage `json:"state,omitempty"`
	StateBase64  string          `json:"state_base64,omitempty"`
	Bytes        int             `json:"bytes"`
	RunID        string          `json:"run_id,omitempty"`
	UpdatedAt    string          `json:"updated_at,omitempty"`
}

// CheckpointReset is DELETE /v1/connections/{id}/checkpoint: Removed says
// whether there was a checkpoint to clear, Previous is what it was.
type CheckpointReset struct {
	ConnectionID string      `json:"connection_id"`
	Removed      bool        `json:"removed"`
	Previous     *Checkpoint `json:"previous,omitempty"`
}

// AuditEvent is one audit row.
type AuditEvent struct {
	ID         string            `json:"id"`
	At         string            `json:"at"`
	Actor      string            `json:"actor"`
	Operation  string            `json:"operation"`
	TargetKind string            `json:"target_kind"`
	TargetID   string            `json:"target_id"`
	Outcome    string            `json:"outcome"`
	Detail     map[string]string `json:"detail,omitempty"`
}

// EnrollmentEntry is one connection's enrollment outcome.
type EnrollmentEntry struct {
	ConnectionID string `json:"connection_id"`
	ConnectorKey string `json:"connector_key"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason,omitempty"`
	EvaluatedAt  string `json:"evaluated_at"`
}

// Enrollment is GET /v1/enrollment.
type Enrollment struct {
	Connections []EnrollmentEntry `json:"connections"`
}

// List is the envelope of every list response.
type List[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

// KeysetInfo is GET /v1/keyset: key ids and states, never key material.
type KeysetInfo struct {
	PrimaryKeyID uint32    `json:"primary_key_id"`
	Keys         []KeyInfo `json:"keys"`
	Encrypted    bool      `json:"encrypted"`
	KEK          string    `json:"kek"` // env | file | kms | cleartext
}

// KeyInfo is one key of the keyset.
type KeyInfo struct {
	ID      uint32 `json:"id"`
	Status  string `json:"status"`
	Type    string `json:"type"`
	Primary bool   `json:"primary"`
}

// KeyChange is POST /v1/keyset/keys/{id}/disable and …/enable.
type KeyChange struct {
	KeyID uint32 `json:"key_id"`
	// Changed is false when the key already had the asked status.
	Changed bool `json:"changed"`
	// QuarantinedCredentials (disable) counts quarantined credentials
	// still under the key: they decrypt with no key and need a new
	// capture whatever its status.
	QuarantinedCredentials int        `json:"quarantined_credentials"`
	Keyset                 KeysetInfo `json:"keyset"`
}

// RewrapReport is POST /v1/keyset/rewrap.
type RewrapReport struct {
	PrimaryKeyID uint32          `json:"primary_key_id"`
	Scanned      int             `json:"scanned"`
	Rewrapped    int             `json:"rewrapped"`
	Current      int             `json:"current"`
	Quarantined  []string        `json:"quarantined"`
	Failed       []RewrapFailure `json:"failed"`
}

// RewrapFailure is a credential a rewrap could not re-encrypt.
type RewrapFailure struct {
	ConnectionID string `json:"connection_id"`
	Reason       string `json:"reason"`
}

// Routes, for the server, the client and the OpenAPI test.
//
//	GET    /healthz, /readyz, /metrics (no auth for healthz/readyz; /metrics needs the token)
//	GET    /v1/openapi.json
//	GET    /v1/connectors                          → List[Connector]
//	GET    /v1/connectors/{key}                    → Connector
//	POST   /v1/connections                         → 201 Connection
//	GET    /v1/connections?connector=&state=&health= → List[Connection]
//	GET    /v1/connections/{id}                    → Connection
//	PATCH  /v1/connections/{id}                    → Connection
//	DELETE /v1/connections/{id}                    → ConnectionDeleted
//	POST   /v1/connections/{id}/pause|resume|revoke → Connection
//	PUT    /v1/connections/{id}/credential         → Credential (body CredentialSetRequest)
//	GET    /v1/connections/{id}/credential         → Credential
//	POST   /v1/connections/{id}/credential/revoke  → Credential
//	DELETE /v1/connections/{id}/credential         → Credential
//	POST   /v1/connections/{id}/runs               → 202 Run (manual trigger; a refusal is the typed error with the refused run's id in the message)
//	GET    /v1/connections/{id}/records?stream=&cursor=&limit= → List[Record]
//	GET    /v1/connections/{id}/checkpoint         → Checkpoint
//	GET    /v1/connections/{id}/explain            → Explain (what the next launch would do; starts nothing, decrypts nothing)
//	DELETE /v1/connections/{id}/checkpoint         → CheckpointReset (409 run_active while a run holds the connection)
//	GET    /v1/runs?connection=&status=&trigger=&host=&cursor=&limit= → List[Run] newest first
//	GET    /v1/runs/{id}                           → Run
//	POST   /v1/runs/{id}/cancel                    → Run
//	GET    /v1/runs/{id}/events                    → text/event-stream of RunEvent
//	GET    /v1/audit?target=&operation=&cursor=&limit= → List[AuditEvent]
//	GET    /v1/enrollment                          → Enrollment
//	GET    /v1/keyset                              → KeysetInfo
//	POST   /v1/keyset/rotate                       → KeysetInfo
//	POST   /v1/keyset/rewrap                       → RewrapReport
//	POST   /v1/keyset/keys/{id}/disable|enable     → KeyChange
const RoutesDoc = "see package doc"

// ConsoleSignIn is a one-time sign-in link for the web console (POST
// /v1/console/signin).
type ConsoleSignIn struct {
	// Path is the link's path and query on the host:
	// /ui/signin?code=….
	Path      string `json:"path"`
	ExpiresAt string `json:"expires_at"`
}
