package apitypes

// Provenance is a run's launch provenance: the credential source, the
// stored credential used (state, key id, stamps), every child env NAME
// with the layer that supplied it, and for a launch refused over its
// credential the resolution that refused. Never a value, a hash of one
// or a length.
type Provenance struct {
	// CredentialSource is "stored", "host_env" or "none"; omitted when
	// the resolution refused.
	CredentialSource string `json:"credential_source,omitempty"`
	// Credential is the stored credential used or refused over; omitted
	// when none was ever stored.
	Credential *ProvenanceCredential `json:"credential,omitempty"`
	// Env is the child's environment by name, sorted; [] when refused.
	Env []EnvVar `json:"env"`
	// Refusal is the resolution that refused the launch.
	Refusal *Refusal `json:"refusal,omitempty"`
}

// ProvenanceCredential is the stored credential behind a launch.
type ProvenanceCredential struct {
	State      string `json:"state"`
	KeyID      uint32 `json:"key_id,omitempty"`
	CapturedAt string `json:"captured_at,omitempty"`
	RotatedAt  string `json:"rotated_at,omitempty"`
	RevokedAt  string `json:"revoked_at,omitempty"`
	DeletedAt  string `json:"deleted_at,omitempty"`
}

// EnvVar is one child env variable: its name and the layer that supplied
// it (allowlist, passthrough, host_env, run_metadata, stored_credential;
// a later layer wins).
type EnvVar struct {
	Name  string `json:"name"`
	Layer string `json:"layer"`
}

// Refusal is why a launch was (or would be) refused.
type Refusal struct {
	Code string `json:"code"`
	// Message is the refusal's message (explain only: a run carries it
	// as failure_message).
	Message string `json:"message,omitempty"`
	// CredentialState is the stored credential's state, or "none" when
	// none was ever stored; omitted for a refusal not about the
	// credential.
	CredentialState string `json:"credential_state,omitempty"`
	// Undecryptable: an active credential the loaded keyset cannot open.
	Undecryptable bool `json:"undecryptable,omitempty"`
	// MissingNames are required names the stored credential lacks.
	MissingNames []string `json:"missing_names,omitempty"`
	// AbsentEnv and EmptyEnv are required names absent from, or set
	// empty in, the host environment (when no credential is stored).
	AbsentEnv []string `json:"absent_env,omitempty"`
	EmptyEnv  []string `json:"empty_env,omitempty"`
	// HostEnvDisallowed: host env credentials are turned off.
	HostEnvDisallowed bool `json:"host_env_disallowed,omitempty"`
}

// Explain is GET /v1/connections/{id}/explain: what the connection's
// next launch would do, found without starting anything and without
// decrypting (credential metadata, the keyset's key ids, the host
// environment by presence, the connector's manifest).
type Explain struct {
	ConnectionID string `json:"connection_id"`
	ConnectorKey string `json:"connector_key"`
	// State is the connection's state: active, paused or revoked.
	State string `json:"state"`
	// Enrollment is the enrollment in force: the stored entry the
	// scheduler acted on (GET /v1/enrollment); the gate's decision now
	// when none is stored yet (a note says so).
	Enrollment EnrollmentEntry `json:"enrollment"`
	// Reevaluation is the enrollment gate's decision now, when it differs
	// from the one in force: what the next re-evaluation (a change to the
	// connection, a credential capture, a run that holds it, a restart)
	// will put in force. Absent when they agree.
	Reevaluation *EnrollmentEntry `json:"reevaluation,omitempty"`
	// Health is the connection's derived health.
	Health ExplainHealth `json:"health"`
	// Launch is what the next launch would do.
	Launch ExplainLaunch `json:"launch"`
}

// ExplainHealth is a connection's health verdict and the action it asks.
type ExplainHealth struct {
	Verdict     string `json:"verdict"`
	Reason      string `json:"reason,omitempty"`
	Action      string `json:"action,omitempty"`
	Since       string `json:"since,omitempty"`
	NeedsPerson bool   `json:"needs_person"`
}

// ExplainLaunch is the predicted launch: launched (with its credential
// source and env names by layer) or refused (with the typed refusal).
type ExplainLaunch struct {
	// Outcome is "launch" or "refused".
	Outcome string `json:"outcome"`
	// Trigger is the launch predicted: "scheduled" when the enrollment in
	// force enrolls the connection (or it is paused), "manual" otherwise.
	Trigger string `json:"trigger"`
	// NextRun is when the scheduled launch is due (RFC 3339 UTC, past any
	// backoff); absent for a manual one or when this host schedules none.
	NextRun          string                `json:"next_run,omitempty"`
	CredentialSource string                `json:"credential_source,omitempty"`
	Credential       *ProvenanceCredential `json:"credential,omitempty"`
	// Env is the child's environment by name and layer ([] when refused).
	Env     []EnvVar `json:"env"`
	Refusal *Refusal `json:"refusal,omitempty"`
	// Notes say what a prediction without decrypting cannot see.
	Notes []string `json:"notes"`
}
