package store

import "time"

// EnrollmentOutcome is the scheduler's decision for one connection.
type EnrollmentOutcome string

// Enrollment outcomes known today. The store accepts any non-empty value so
// the scheduler can add skip reasons without a migration.
const (
	Enrolled                EnrollmentOutcome = "enrolled"
	SkippedEnv              EnrollmentOutcome = "skipped_env"
	SkippedPaused           EnrollmentOutcome = "skipped_paused"
	SkippedRevoked          EnrollmentOutcome = "skipped_revoked"
	SkippedNoSchedule       EnrollmentOutcome = "skipped_no_schedule"
	SkippedUnknownConnector EnrollmentOutcome = "skipped_unknown_connector"
	// SkippedHeld: the connection's schedule is held (Connection.Hold).
	SkippedHeld EnrollmentOutcome = "skipped_held"
)

// EnrollmentEntry is one line of the enrollment report.
type EnrollmentEntry struct {
	ConnectionID string
	ConnectorKey string
	Outcome      EnrollmentOutcome
	Reason       string    // non-secret detail, e.g. the missing env names
	EvaluatedAt  time.Time // set by the store
}

// Validate checks the fields a caller supplies.
func (e EnrollmentEntry) Validate() error {
	if err := checkText("connection_id", e.ConnectionID, true); err != nil {
		return err
	}
	if err := checkText("connector_key", e.ConnectorKey, true); err != nil {
		return err
	}
	if err := checkText("outcome", string(e.Outcome), true); err != nil {
		return err
	}
	return checkText("reason", e.Reason, false)
}
