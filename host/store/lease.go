package store

import "time"

// Lease is a connection's active-run lease: while unexpired, no other run of
// the connection may start.
type Lease struct {
	ConnectionID string
	RunID        string
	Holder       string // host instance id
	AcquiredAt   time.Time
	ExpiresAt    time.Time
}

// Expired reports whether the lease has expired at now.
func (l Lease) Expired(now time.Time) bool { return !now.Before(l.ExpiresAt) }

// LeaseRequest is the input of AcquireLease. The run must be queued or
// running and belong to the connection.
type LeaseRequest struct {
	ConnectionID string
	RunID        string
	Holder       string
	TTL          time.Duration
}

// Validate checks the fields.
func (r LeaseRequest) Validate() error {
	if err := checkText("connection_id", r.ConnectionID, true); err != nil {
		return err
	}
	if err := checkText("run_id", r.RunID, true); err != nil {
		return err
	}
	if err := checkText("holder", r.Holder, true); err != nil {
		return err
	}
	if r.TTL <= 0 {
		return invalid("ttl", "must be positive")
	}
	return nil
}

// LeaseGrant is the outcome of AcquireLease.
type LeaseGrant struct {
	Lease Lease
	// Replaced is the expired lease of another run that this acquisition
	// took over, nil if there was none. Its run may still be marked
	// queued or running: the caller finishes it (as ReclaimLeases callers
	// do), and CommitBatch already refuses it.
	Replaced *Lease
}

// ReclaimFilter selects leases for ReclaimLeases: those held by Holder, or
// those that expired at or before ExpiredBy. Zero fields match nothing; at
// least one must be set.
type ReclaimFilter struct {
	Holder    string
	ExpiredBy time.Time
}
