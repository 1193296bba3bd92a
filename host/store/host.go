package store

import "time"

// HostStatus is a host's place in the cluster.
type HostStatus string

// Host statuses.
const (
	// HostLive: the host heartbeats and works.
	HostLive HostStatus = "live"
	// HostStopped: the host shut down cleanly and handed its work back.
	HostStopped HostStatus = "stopped"
	// HostCrashed: the host stopped heartbeating; a survivor reaped it
	// (its runs failed host_crashed, its leases and claims taken back).
	HostCrashed HostStatus = "crashed"
)

// Host is one `connhost serve` process on the store.
type Host struct {
	ID         string
	Addr       string // the API address it listens on
	Version    string
	StartedAt  time.Time
	LastSeen   time.Time // its last heartbeat
	RunsActive int       // as of its last heartbeat
	Status     HostStatus
	EndedAt    time.Time // zero while live
}

// NewHost is the input of RegisterHost.
type NewHost struct {
	ID      string
	Addr    string
	Version string
}

// Validate checks the fields.
func (n NewHost) Validate() error {
	if err := checkText("id", n.ID, true); err != nil {
		return err
	}
	if err := checkText("addr", n.Addr, false); err != nil {
		return err
	}
	return checkText("version", n.Version, false)
}

// HostReap is what ReapHosts took back from one dead host.
type HostReap struct {
	Host Host // as it is now: crashed
	// Runs are the host's runs that had started, now failed with
	// host_crashed.
	Runs []Run
	// Released counts the host's claimed occurrences that had not started
	// a run, returned to pending for any host to claim.
	Released int
	// Leases are the host's leases, deleted.
	Leases []Lease
}
