package store

import "time"

// Lock is a named, expiring lock, the building block of the scheduler's
// distributed locker on a shared (PostgreSQL) store.
type Lock struct {
	Name       string
	Holder     string
	AcquiredAt time.Time
	ExpiresAt  time.Time
}
