// Package store defines connhost's persistent model: the domain types, the
// Store interface every backend implements, and the errors callers match on.
//
// The interface is split into small role interfaces (Connectors,
// Connections, Credentials, Presence, Runs, Leases, Records, Audit,
// Enrollment, Locks) composed into Store, so a consumer depends on just what
// it uses. Eligibility code takes only Presence: it can ask whether a
// connection holds an active credential and nothing else, so it cannot read
// ciphertext, let alone decrypt it.
//
// # Isolation
//
// Everything a connection owns — records, checkpoint, schedule, lease,
// credential, enrollment entry — is keyed by its connection id, never by
// connector key. Two connections of one connector never see each other's
// data.
//
// # Time and identity
//
// A store stamps every timestamp itself from the clock in its config
// (tests inject a fake one), in UTC. Ids are opaque strings the store
// generates: "conn_" and "run_" and "aud_" followed by a ULID.
//
// # Deleting a connection
//
// DeleteConnection removes the connection row, its records, checkpoint,
// credential (ciphertext included), enrollment entry and any expired lease in
// one transaction, and refuses with run_active while an unexpired lease is
// held. Run rows and audit events are history and survive: an operator can
// still read why a deleted connection's last runs failed, and audit events
// keep pointing at run ids that resolve. Neither holds secret bytes or
// collected data.
//
// # Credentials
//
// A credential is the sealed (already encrypted) static secret of one
// connection; the store never sees plaintext. Its states:
//
//	(never stored) --capture--> active
//	active      --rotate-->     active (rotated_at stamped)
//	active      --quarantine--> quarantined
//	active, quarantined --revoke--> revoked
//	active, revoked, quarantined --delete--> deleted (ciphertext NULL, tombstone kept)
//	any state   --capture-->    active (the only way back)
//
// A deleted credential stays distinguishable from one that was never
// stored: GetCredentialMeta returns the tombstone for the former and
// ErrCredentialNotFound for the latter.
//
// # Runs and leases
//
// A run row is created queued, marked running, and finished once. A lease
// is the instance-scoped guard that at most one run of a connection is
// active: AcquireLease fails with run_active while another run holds an
// unexpired lease, and CommitBatch is fenced by it — only the running run
// that holds the connection's lease can commit records and checkpoints.
//
// # Errors
//
// Lookups and guards wrap host/failure codes where one applies, so both
// errors.Is(err, store.ErrConnectionNotFound) and
// failure.CodeOf(err) == failure.ConnectionNotFound hold. Other errors are
// sentinels or typed errors below; none carries secret bytes.
package store
