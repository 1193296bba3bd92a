package store

import (
	"encoding/json"
	"time"
)

// Connector is a catalog row: a connector binary the host found in its
// plugin directory, pinned by checksum.
type Connector struct {
	Key          string          // canonical connector key
	Version      string          // manifest version
	Manifest     json.RawMessage // the manifest as described by the binary
	Path         string          // absolute path of the binary
	SHA256       string          // lowercase hex SHA-256 of the binary
	RegisteredAt time.Time       // first registration
	UpdatedAt    time.Time       // last time any field changed
}

// ConnectorRegistration is what the catalog registers at boot.
type ConnectorRegistration struct {
	Key      string
	Version  string
	Manifest json.RawMessage // JSON object
	Path     string
	SHA256   string // lowercase hex
}

// Validate checks the registration's fields.
func (r ConnectorRegistration) Validate() error {
	if err := checkText("key", r.Key, true); err != nil {
		return err
	}
	if err := checkText("version", r.Version, true); err != nil {
		return err
	}
	if err := checkText("path", r.Path, true); err != nil {
		return err
	}
	if !sha256RE.MatchString(r.SHA256) {
		return invalid("sha256", "not 64 lowercase hex digits")
	}
	return checkJSONObject("manifest", r.Manifest, false)
}

// ConnectorUpsert is the outcome of UpsertConnector, enough to audit a
// re-registration.
type ConnectorUpsert struct {
	Connector Connector  // the row as stored now
	Previous  *Connector // the row before, nil when Created
	Created   bool       // the key was not registered before
	// Changed is true when Created, or when the version or the checksum
	// differ from Previous: the binary is not the one pinned before.
	Changed bool
}
