package store

import "time"

// CredentialKind is the kind of a stored credential. It is bound into the
// ciphertext's associated data by the broker.
type CredentialKind string

// CredentialStaticSecret is one or more named static values (env name →
// secret), e.g. a username and an app password.
const CredentialStaticSecret CredentialKind = "static_secret"

// CredentialState is a stored credential's lifecycle state.
type CredentialState string

// Credential states; see the package doc for the transitions.
const (
	CredentialActive      CredentialState = "active"
	CredentialRevoked     CredentialState = "revoked"
	CredentialDeleted     CredentialState = "deleted"
	CredentialQuarantined CredentialState = "quarantined"
)

// Valid reports whether s is a known state.
func (s CredentialState) Valid() bool {
	switch s {
	case CredentialActive, CredentialRevoked, CredentialDeleted, CredentialQuarantined:
		return true
	}
	return false
}

// Validity is the result of the last Check of a credential.
type Validity struct {
	CheckedAt time.Time
	Valid     bool
	Message   string // non-secret explanation from the connector
}

// CredentialMeta is everything about a credential except its ciphertext:
// what read surfaces may show.
type CredentialMeta struct {
	ConnectionID  string
	Kind          CredentialKind
	State         CredentialState
	Names         []string // env names of the values, never the values
	KeyID         uint32   // Tink key id that sealed the current ciphertext
	CapturedAt    time.Time
	RotatedAt     time.Time // zero if never rotated since capture
	RevokedAt     time.Time // zero unless revoked
	QuarantinedAt time.Time // zero unless quarantined
	DeletedAt     time.Time // zero unless deleted
	UpdatedAt     time.Time
	Validity      *Validity // nil until checked
}

// Credential is the metadata plus the ciphertext. Only the broker reads it.
// Ciphertext is nil once deleted.
type Credential struct {
	CredentialMeta
	Ciphertext []byte
}

// SealedCredential is the input of CaptureCredential and RotateCredential:
// values already encrypted by the broker.
type SealedCredential struct {
	ConnectionID string
	Kind         CredentialKind
	Names        []string
	Ciphertext   []byte
	KeyID        uint32
}

// Validate checks the fields.
func (c SealedCredential) Validate() error {
	if err := checkText("connection_id", c.ConnectionID, true); err != nil {
		return err
	}
	if c.Kind != CredentialStaticSecret {
		return invalid("kind", "unknown credential kind %q", c.Kind)
	}
	if len(c.Names) == 0 {
		return invalid("names", "required")
	}
	seen := make(map[string]bool, len(c.Names))
	for _, n := range c.Names {
		if !envNameRE.MatchString(n) {
			return invalid("names", "%q is not an env name", n)
		}
		if seen[n] {
			return invalid("names", "%q repeated", n)
		}
		seen[n] = true
	}
	if len(c.Ciphertext) == 0 {
		return invalid("ciphertext", "required")
	}
	return nil
}

// CredentialCiphertext is one row of the rewrap iterator.
type CredentialCiphertext struct {
	ConnectionID string
	Kind         CredentialKind
	State        CredentialState
	KeyID        uint32
	Ciphertext   []byte
}

// KeyUse counts the credentials whose stored ciphertext a key sealed, by
// state (deleted credentials hold no ciphertext and are not counted).
// Active and revoked ciphertexts still need the key (a revoked one is moved
// by a rewrap like any other); a quarantined one already does not decrypt.
type KeyUse struct {
	Active      int
	Revoked     int
	Quarantined int
}

// Needed is how many credentials still need the key: active and revoked.
func (u KeyUse) Needed() int { return u.Active + u.Revoked }
