package store

import (
	"context"
	"time"

	"github.com/connhost/connhost/host/failure"
)

// Connectors is the connector catalog.
type Connectors interface {
	// UpsertConnector registers a connector binary, or updates its row,
	// and reports what changed so a re-registration can be audited.
	UpsertConnector(ctx context.Context, reg ConnectorRegistration) (ConnectorUpsert, error)
	// GetConnector returns ErrConnectorNotFound (failure.ConnectorNotFound)
	// for an unknown key.
	GetConnector(ctx context.Context, key string) (Connector, error)
	// ListConnectors returns every connector, ordered by key.
	ListConnectors(ctx context.Context) ([]Connector, error)
}

// Connections manages connections. Every method that takes an id returns
// ErrConnectionNotFound (failure.ConnectionNotFound) for an unknown one.
type Connections interface {
	// CreateConnection creates an active connection; ErrConnectorNotFound if
	// the connector is not in the catalog.
	CreateConnection(ctx context.Context, c NewConnection) (Connection, error)
	GetConnection(ctx context.Context, id string) (Connection, error)
	// ListConnections returns every matching connection, oldest first,
	// for the host's own sweeps (boot enrollment, re-evaluation).
	ListConnections(ctx context.Context, f ConnectionFilter) ([]Connection, error)
	// ListConnectionPage returns one page of matching connections, oldest
	// first, for callers that show them (the API).
	ListConnectionPage(ctx context.Context, f ConnectionPageFilter) (ConnectionPage, error)
	// UpdateConnection applies the patch and stamps updated_at.
	UpdateConnection(ctx context.Context, id string, p ConnectionPatch) (Connection, error)
	// SetConnectionState moves the connection to state; to the state it
	// is in, it changes nothing; a change not in state.ReachableFrom()
	// returns a *TransitionError carrying failure.Conflict.
	SetConnectionState(ctx context.Context, id string, state ConnectionState) (Connection, error)
	// DeleteConnection removes the connection with its records,
	// checkpoint, schedule, credential, enrollment entry and expired lease
	// in one transaction. It refuses with RunActive (ErrLeaseHeld) while
	// a run holds an unexpired lease. Runs and audit events are kept.
	DeleteConnection(ctx context.Context, id string) (ConnectionDeletion, error)
	// ClearHold releases the connection's hold when its code is one of
	// codes (any code when codes is empty) and clears its backoff; it
	// reports whether anything changed. Capturing or rotating a
	// credential, changing the config and resuming clear what they
	// address themselves, in their own transactions.
	ClearHold(ctx context.Context, id string, codes ...failure.Code) (Connection, bool, error)
}

// Presence answers "does this connection hold an active credential?" and
// nothing else. It is what every eligibility gate gets: it reads only the
// credential's state, never its ciphertext. An unknown connection, or one
// that never stored a credential, is (false, nil).
type Presence interface {
	HasActiveCredential(ctx context.Context, connectionID string) (bool, error)
	// ActiveCredentialKey returns the key id that sealed the connection's
	// active credential, and false when it has none (a keyset-aware gate
	// asks whether the loaded keyset holds that key).
	ActiveCredentialKey(ctx context.Context, connectionID string) (uint32, bool, error)
}

// Credentials manages the sealed static-secret credential of each
// connection (one per connection). The store never sees plaintext. Methods
// return ErrConnectionNotFound for an unknown connection,
// ErrCredentialNotFound for one that never stored a credential, and a
// *CredentialStateError (carrying failure.Conflict) for a transition the
// state forbids.
type Credentials interface {
	Presence

	// CaptureCredential stores sc as the connection's active credential,
	// replacing any previous one in any state; it stamps captured_at and
	// clears rotated/revoked/quarantined/deleted stamps and validity. It is
	// the only operation that creates or reactivates a credential.
	CaptureCredential(ctx context.Context, sc SealedCredential) (CredentialMeta, error)
	// RotateCredential replaces the values of an active credential and
	// stamps rotated_at; validity is cleared. The connection, its schedule
	// and history are untouched.
	RotateCredential(ctx context.Context, sc SealedCredential) (CredentialMeta, error)
	// RevokeCredential moves an active or quarantined credential to
	// revoked (ciphertext kept, never used again).
	RevokeCredential(ctx context.Context, connectionID string) (CredentialMeta, error)
	// DeleteCredential NULLs the ciphertext and keeps a tombstone in state
	// deleted. A deleted credential cannot be deleted again.
	DeleteCredential(ctx context.Context, connectionID string) (CredentialMeta, error)
	// QuarantineCredential moves an active credential that cannot be used
	// (e.g. undecryptable) to quarantined.
	QuarantineCredential(ctx context.Context, connectionID string) (CredentialMeta, error)
	// SetCredentialValidity records the last Check result of a credential
	// that is not deleted, stamped now.
	SetCredentialValidity(ctx context.Context, connectionID string, valid bool, message string) (CredentialMeta, error)

	// GetCredential returns metadata and ciphertext: for the broker only.
	GetCredential(ctx context.Context, connectionID string) (Credential, error)
	// GetCredentialMeta returns metadata without reading the ciphertext:
	// for read surfaces.
	GetCredentialMeta(ctx context.Context, connectionID string) (CredentialMeta, error)
	// CredentialMetas returns the metadata of the credentials of the
	// given connections, by connection id, in one bounded read (a list
	// page's health): connections that never stored one, and unknown
	// ids, are absent from the map. Never a ciphertext.
	CredentialMetas(ctx context.Context, connectionIDs []string) (map[string]CredentialMeta, error)

	// ListCredentialCiphertexts pages through every credential that still
	// holds a ciphertext, ordered by connection id, starting after the
	// connection id after ("" for the first page). For keyset rewrap.
	ListCredentialCiphertexts(ctx context.Context, after string, limit int) ([]CredentialCiphertext, error)
	// ReplaceCiphertext swaps the ciphertext of a credential for newCT
	// sealed under keyID only if it still equals oldCT; otherwise
	// ErrCiphertextChanged. State, names and stamps are unchanged.
	ReplaceCiphertext(ctx context.Context, connectionID string, oldCT, newCT []byte, keyID uint32) error
	// CredentialKeyUse counts, by state, the credentials whose ciphertext
	// key keyID sealed (before a keyset key is disabled).
	CredentialKeyUse(ctx context.Context, keyID uint32) (KeyUse, error)
}

// Runs manages run rows. Methods that take a run id return ErrRunNotFound
// for an unknown one and a *RunStateError for a transition the status
// forbids.
type Runs interface {
	// CreateRun creates a queued run; ErrConnectionNotFound if the
	// connection does not exist.
	CreateRun(ctx context.Context, r NewRun) (Run, error)
	GetRun(ctx context.Context, id string) (Run, error)
	// ListRuns returns runs newest first, paged.
	ListRuns(ctx context.Context, f RunFilter) (RunPage, error)
	// MarkRunRunning moves a queued run to running, stamps started_at and
	// stores prov (may be nil) as the run's launch provenance.
	MarkRunRunning(ctx context.Context, id string, prov *Provenance) (Run, error)
	// FinishRun moves the run to a terminal status (see
	// RunStatus.FinishableFrom), stamps ended_at and, in the same
	// transaction, releases the connection's lease if this run holds it
	// and updates the connection's Streak (see CountsInStreak): a
	// success clears the streak, the hold and the backoff; res.Hold holds
	// the schedule (the generation moves, pending scheduled occurrences
	// go); res.BackoffUntil is stored.
	FinishRun(ctx context.Context, id string, res RunResult) (Run, error)
}

// Leases manages the instance-scoped active-run lease of each connection.
type Leases interface {
	// AcquireLease takes the connection's lease for a queued or running
	// run. It returns RunActive (ErrLeaseHeld, *LeaseHeldError) while
	// another run holds an unexpired lease, takes over an expired one
	// (reported in LeaseGrant.Replaced), and is idempotent for the run
	// that already holds it (the expiry is extended).
	AcquireLease(ctx context.Context, req LeaseRequest) (LeaseGrant, error)
	// RenewLease extends the run's lease to now+ttl; ErrLeaseNotHeld if
	// the run no longer holds it.
	RenewLease(ctx context.Context, connectionID, runID string, ttl time.Duration) (Lease, error)
	// ReleaseLease drops the lease; only its run may, else ErrLeaseNotHeld.
	ReleaseLease(ctx context.Context, connectionID, runID string) error
	// ListLeases returns every lease, ordered by connection id.
	ListLeases(ctx context.Context) ([]Lease, error)
	// ReclaimLeases deletes and returns the leases f selects, so the
	// caller can fail their runs (a crashed host at boot, or expiry).
	ReclaimLeases(ctx context.Context, f ReclaimFilter) ([]Lease, error)
}

// Records stores collected records and checkpoints.
type Records interface {
	// CommitBatch upserts records (by connection, stream, key) and, when
	// checkpoint is non-nil, sets the connection's checkpoint — in one
	// transaction, so a checkpoint never moves past unsaved records. The
	// run must be running, belong to the connection and hold its lease
	// (ErrRunNotFound, *RunStateError, ErrLeaseNotHeld otherwise). The
	// run's record count grows by len(records).
	CommitBatch(ctx context.Context, connectionID, runID string, records []Record, checkpoint []byte) error
	// GetCheckpoint returns the connection's checkpoint and whether one
	// is stored.
	GetCheckpoint(ctx context.Context, connectionID string) ([]byte, bool, error)
	// LastCheckpoint returns the connection's checkpoint with the run
	// that committed it and when, and whether one is stored.
	LastCheckpoint(ctx context.Context, connectionID string) (Checkpoint, bool, error)
	// ResetCheckpoint removes the connection's checkpoint (its records
	// stay), so its next run starts from scratch, and returns the one
	// removed, if any. It refuses with RunActive (ErrLeaseHeld) while a
	// run holds the connection's unexpired lease: that run would commit
	// its own checkpoint over the reset.
	ResetCheckpoint(ctx context.Context, connectionID string) (Checkpoint, bool, error)
	// ListRecords pages through a connection's records by stream, then
	// in the order the connector first emitted each key (a key written
	// again keeps its place). Paging is stable under concurrent writes: a
	// record's place never moves.
	ListRecords(ctx context.Context, q RecordQuery) (RecordPage, error)
}

// Audit is the append-only audit log: there is no update or delete.
type Audit interface {
	// AppendAudit stores e with a new id, stamped now, and returns it.
	AppendAudit(ctx context.Context, e AuditEvent) (AuditEvent, error)
	// ListAudit returns events newest first, paged.
	ListAudit(ctx context.Context, f AuditFilter) (AuditPage, error)
}

// Enrollment stores the scheduler's last enrollment report.
type Enrollment interface {
	// ReplaceEnrollment replaces the whole report with entries, each
	// stamped now. Entries must name existing connections.
	ReplaceEnrollment(ctx context.Context, entries []EnrollmentEntry) error
	// UpsertEnrollment sets one connection's entry, stamped now.
	UpsertEnrollment(ctx context.Context, e EnrollmentEntry) (EnrollmentEntry, error)
	// ListEnrollment returns the report ordered by connection id.
	ListEnrollment(ctx context.Context) ([]EnrollmentEntry, error)
	// EnrollmentOf returns the entries of the given connections, by
	// connection id (a connection without one is absent): what a page of
	// connections, or one, shows without reading the whole report.
	EnrollmentOf(ctx context.Context, connectionIDs []string) (map[string]EnrollmentEntry, error)
}

// Locks are named expiring locks for cluster-wide coordination.
type Locks interface {
	// AcquireLock takes the named lock for holder until now+ttl. It
	// succeeds when the lock is free, expired or already held by holder
	// (extending it), and returns ErrLockHeld otherwise.
	AcquireLock(ctx context.Context, name, holder string, ttl time.Duration) (Lock, error)
	// ReleaseLock drops the lock; ErrLockNotHeld unless holder holds it.
	ReleaseLock(ctx context.Context, name, holder string) error
}

// Dispatch is the durable occurrence queue the hosts' workers share. A
// connection has at most one occurrence, pending or claimed; schedule
// ticks coalesce into it, and pausing, revoking, deleting or rescheduling
// the connection removes a pending one in the same transaction as the
// change (see Connections). Every method is safe for many hosts at once.
type Dispatch interface {
	// RecordTicks records due schedule instants as pending occurrences,
	// in one transaction, and returns each tick's outcome in order. A
	// tick is recorded once cluster-wide: the connection keeps the latest
	// instant recorded under its schedule generation, and a tick at or
	// before it is a duplicate. A recorded tick with ClaimBy set is
	// recorded claimed by that host, and its occurrence is returned (in
	// the order of the ticks).
	RecordTicks(ctx context.Context, ticks []Tick) ([]TickOutcome, []Occurrence, error)
	// EnqueueManual queues a manual run: a queued run row and a pending
	// occurrence due now, in one transaction. A pending scheduled or
	// retry occurrence is replaced (counted as a coalesced tick). It
	// returns ConnectionNotFound, connection_revoked for a revoked
	// connection, and RunBusy while another run is queued or running.
	EnqueueManual(ctx context.Context, m ManualRun) (Run, error)
	// ClaimDue claims up to limit pending occurrences for holder: manual
	// runs first (due at once, whatever the claimer's clock says), then
	// those whose run_at is at or before now, by run_at. Each is claimed
	// by one host only. A manual run's row takes holder as its host_id.
	ClaimDue(ctx context.Context, holder string, now time.Time, limit int) ([]Occurrence, error)
	// NextRunAt returns the earliest run_at of a pending occurrence, and
	// false when none is pending.
	NextRunAt(ctx context.Context) (time.Time, bool, error)
	// ReleaseOccurrence returns an occurrence holder claimed but never
	// started a run for to pending (a host handing work back).
	ReleaseOccurrence(ctx context.Context, connectionID, occurrenceID, holder string) error
	// ReleaseClaims returns every occurrence holder claimed but never
	// started a run for to pending, in one statement, and reports how
	// many.
	ReleaseClaims(ctx context.Context, holder string) (int, error)
	// CompleteOccurrences removes occurrences their holders claimed, in
	// one transaction (a worker pool's group commit). A completion with
	// Retry turns its occurrence into the pending retry of its run when
	// the connection is still active on the occurrence's schedule
	// generation. The outcomes are in order; an occurrence its holder no
	// longer holds is CompletionLost and changes nothing.
	CompleteOccurrences(ctx context.Context, cs []Completion) ([]CompletionOutcome, error)
	// CancelQueuedRun cancels a manual run no worker has claimed: its
	// occurrence is removed and the run finished with res, in one
	// transaction. A run that is not queued is a *RunStateError;
	// ErrOccurrenceLost when a worker claimed it first.
	CancelQueuedRun(ctx context.Context, runID string, res RunResult) (Run, error)
	// ListOccurrences returns the matching occurrences by run_at.
	ListOccurrences(ctx context.Context, f OccurrenceFilter) ([]Occurrence, error)
}

// Hosts is the cluster membership: every `connhost serve` process
// registers, heartbeats, and is reaped by a survivor when it stops
// heartbeating.
type Hosts interface {
	// RegisterHost inserts (or revives) the host's row, live, stamped now.
	RegisterHost(ctx context.Context, h NewHost) (Host, error)
	// HeartbeatHost stamps last_seen and runs_active; ErrHostNotLive if
	// the host was reaped meanwhile.
	HeartbeatHost(ctx context.Context, id string, runsActive int) (Host, error)
	// StopHost marks the host stopped and returns its claimed occurrences
	// that never started a run to pending, in one transaction.
	StopHost(ctx context.Context, id string) error
	// ListHosts returns every host row, newest start first.
	ListHosts(ctx context.Context) ([]Host, error)
	// ReapHosts declares crashed every live host but self whose last
	// heartbeat is before deadBefore, each in one transaction: its
	// started runs fail with host_crashed (each counted in its
	// connection's Streak as FinishRun counts it, holding nothing), its
	// leases are deleted, its claimed occurrences that started no run go
	// back to pending and the others are removed. A host is reaped by one caller only.
	ReapHosts(ctx context.Context, self string, deadBefore time.Time) ([]HostReap, error)
}

// Identity is the store's own identity: a random id written once, at
// the first start, which a host's data dir remembers (so a store that
// comes back empty, or another store, is noticed).
type Identity interface {
	// StoreID returns the store's id, and false when none was written
	// (a new or emptied store).
	StoreID(ctx context.Context) (string, bool, error)
	// InitStoreID writes id as the store's id unless one is written
	// already, and returns the store's id (the one already there, when
	// hosts start together).
	InitStoreID(ctx context.Context, id string) (string, error)
	// CredentialKeyIDs returns the distinct key ids that seal the stored
	// ciphertexts (a missing keyset must hold them).
	CredentialKeyIDs(ctx context.Context) ([]uint32, error)
}

// Store is the whole persistent model.
type Store interface {
	Connectors
	Connections
	Credentials
	Runs
	Leases
	Records
	Audit
	Enrollment
	Locks
	Dispatch
	Hosts
	Identity

	// Ping checks that the backend answers (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}
