package store

import (
	"time"

	"github.com/connhost/connhost/host/failure"
)

// EnvLayer names the layer of a child's environment a variable came from
// (DESIGN section 3), in the order the layers are applied.
type EnvLayer string

// Environment layers.
const (
	LayerAllowlist        EnvLayer = "allowlist"         // the host allowlist
	LayerPassthrough      EnvLayer = "passthrough"       // the manifest's env_passthrough
	LayerHostEnv          EnvLayer = "host_env"          // a host auth value, when the broker chose the host env
	LayerRunMetadata      EnvLayer = "run_metadata"      // CONNHOST_CONNECTION_ID, _RUN_ID, _TRIGGER
	LayerStoredCredential EnvLayer = "stored_credential" // the stored credential, applied last
)

// EnvVar is one variable of a child's environment: its name and the layer
// that supplied it. Never a value, a hash of a value or a length.
type EnvVar struct {
	Name  string
	Layer EnvLayer
}

// ProvenanceCredential describes the stored credential a launch used or
// was refused over, without its values.
type ProvenanceCredential struct {
	State      CredentialState
	KeyID      uint32
	CapturedAt time.Time
	RotatedAt  time.Time // zero if never rotated
	RevokedAt  time.Time // zero unless revoked
	DeletedAt  time.Time // zero unless deleted
}

// Provenance is where every variable of a run's child environment came
// from, or, for a launch refused over its credential, the resolution that
// refused. It holds names, layers, states and stamps only.
type Provenance struct {
	// CredentialSource is where the broker resolved the credential from:
	// "stored", "host_env", "none", or "" when resolution refused.
	CredentialSource string
	// Credential is the stored credential used or refused over (nil when
	// there is none).
	Credential *ProvenanceCredential
	// Env is the child's environment, sorted by name (empty when refused).
	Env []EnvVar
	// Refusal is set when the credential resolution refused the launch.
	Refusal *ProvenanceRefusal
}

// ProvenanceRefusal is the credential resolution that refused a launch.
type ProvenanceRefusal struct {
	Code failure.Code
	// CredentialState is the stored credential's state ("revoked",
	// "deleted", "quarantined", "active" for one that does not decrypt
	// or lacks names), or "none" when none was ever stored.
	CredentialState string
	// Undecryptable is set when an active credential did not decrypt
	// with the loaded keyset (or none is loaded).
	Undecryptable bool
	// MissingNames are required names the stored credential lacks.
	MissingNames []string
	// AbsentEnv and EmptyEnv are required names absent from, or set empty
	// in, the host environment (checked only when no credential is stored).
	AbsentEnv []string
	EmptyEnv  []string
	// HostEnvDisallowed is set when host env credentials are turned off.
	HostEnvDisallowed bool
}

// Streak is a connection's latest run outcome and the failures in a row
// behind it, kept in the transaction that ends each run (FinishRun,
// CancelQueuedRun, the reap of a dead host). Runs that ended for reasons
// not the connection's (cancelled, host_shutdown, run_active,
// connection_paused) leave it as it was.
type Streak struct {
	LastRunStatus RunStatus // "" before the first counted run
	LastRunAt     time.Time
	// FailCode is the failure code of the latest run when it failed or
	// was refused; FailCount counts the latest runs in a row that ended
	// with it, since FailSince.
	FailCode  failure.Code
	FailCount int
	FailSince time.Time
}

// After returns the streak after a run that ended with status and code at
// at, one CountsInStreak counts: a success clears the failures; a failure
// of the streak's code counts one more; another code starts a new streak.
// FinishRun stores it; the runner's finish policy reads it ahead to decide
// a backoff.
func (s Streak) After(status RunStatus, code failure.Code, at time.Time) Streak {
	s.LastRunStatus, s.LastRunAt = status, at
	switch {
	case status == RunSucceeded:
		s.FailCode, s.FailCount, s.FailSince = "", 0, time.Time{}
	case s.FailCode == code && s.FailCount > 0:
		s.FailCount++
	default:
		s.FailCode, s.FailCount, s.FailSince = code, 1, at
	}
	return s
}

// Hold stops a connection's schedule after a scheduled launch refused or
// rejected for a reason only a person can fix (HoldCodes). A held
// connection creates no scheduled runs until the cause is addressed:
// capturing or rotating its credential clears a credential hold, changing
// its config an invalid_config hold, in the same transaction; the host
// clears connector_not_found when the connector returns (ClearHold).
type Hold struct {
	Code    failure.Code // "" when not held
	Message string       // non-secret: the refusal's message
	At      time.Time
	RunID   string // the run that caused it
}

// Held reports whether the connection is held.
func (h Hold) Held() bool { return h.Code != "" }

// HoldCodes are the failure codes only a person can fix: the first
// scheduled or retry run that ends with one holds its connection.
var HoldCodes = []failure.Code{
	failure.StaticSecretUnavailable,
	failure.CredentialsRequired,
	failure.CredentialRejected,
	failure.InvalidConfig,
	failure.ConnectorNotFound,
}

// CredentialHoldCodes are the hold codes a credential capture or rotation
// addresses.
var CredentialHoldCodes = []failure.Code{
	failure.StaticSecretUnavailable,
	failure.CredentialsRequired,
	failure.CredentialRejected,
}

// IsHoldCode reports whether code is one of HoldCodes.
func IsHoldCode(code failure.Code) bool {
	for _, c := range HoldCodes {
		if c == code {
			return true
		}
	}
	return false
}

// CountsInStreak reports whether a run that ended with status and code
// says something about its connection: a run cancelled, ended by a host
// shutdown, or refused because another run was active or the connection
// was paused does not.
func CountsInStreak(status RunStatus, code failure.Code) bool {
	switch {
	case status == RunSucceeded:
		return true
	case status == RunCancelled:
		return false
	}
	switch code {
	case failure.Cancelled, failure.HostShutdown, failure.RunActive, failure.ConnectionPaused, failure.ConnectionRevoked:
		return false
	}
	return status == RunFailed || status == RunRefused
}
