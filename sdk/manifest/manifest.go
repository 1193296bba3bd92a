// Package manifest defines the manifest a connector declares about itself and
// the rules a manifest must follow.
//
// A connector declares its manifest in Go next to its code (see package sdk);
// the host reads it over the wire with Describe and validates it with
// Validate before cataloguing the connector. Validate is the one place the
// rules live, so the SDK refuses to serve a manifest the host would reject.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Auth kinds.
const (
	// AuthStaticSecret means the connector needs a stored static secret (a
	// token, an app password) provided as the environment names in
	// Auth.Required.
	AuthStaticSecret = "static_secret"
	// AuthNone means the connector needs no credential.
	AuthNone = "none"
)

// Manifest describes a connector to the host.
type Manifest struct {
	// ConnectorKey is the canonical short key, ^[a-z][a-z0-9_-]{1,62}$.
	// It is never a URL.
	ConnectorKey string `json:"connector_key"`
	// Version is the connector's version, free form (semver recommended).
	Version     string `json:"version"`
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	// Auth is the connector's auth capability (capabilities.auth).
	Auth Auth `json:"auth"`
	// EnvPassthrough names non-secret host variables the connector reads,
	// such as an API base URL. The host passes their values through.
	EnvPassthrough []string `json:"env_passthrough,omitempty"`
	// Streams are the record streams the connector emits.
	Streams []Stream `json:"streams"`
	// DefaultSchedule is the schedule new connections get when they do not
	// name one.
	DefaultSchedule Schedule `json:"default_schedule"`
	// ConfigSchema is a JSON Schema document for the connection config.
	ConfigSchema string `json:"config_schema,omitempty"`
}

// Auth is capabilities.auth of a manifest.
type Auth struct {
	// Kind is AuthStaticSecret or AuthNone.
	Kind string `json:"kind"`
	// Required lists the environment names a credential must provide.
	Required []string `json:"required"`
}

// Stream is one record stream.
type Stream struct {
	Name      string   `json:"name"`
	KeyFields []string `json:"key_fields"`
}

// Schedule is a connector's default schedule.
type Schedule struct {
	// Spec is a cron spec (five fields, or six with seconds) or
	// "@every <duration>". Empty means no default schedule.
	Spec string `json:"spec,omitempty"`
	// AutoEnroll says whether connections with this schedule are enrolled
	// at boot without an operator action.
	AutoEnroll bool `json:"auto_enroll"`
}

// Limits on manifest sizes; a manifest comes from a plugin binary and is
// untrusted input.
const (
	MaxNames        = 64
	MaxStreams      = 256
	MaxKeyFields    = 16
	MaxStringLen    = 1024
	MaxConfigSchema = 256 << 10
)

var (
	keyRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]{1,62}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	streamRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	fieldRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,127}$`)
)

// reservedEnv are names the host sets itself or never passes to a child.
var reservedPrefix = []string{"CONNHOST_"}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("manifest: invalid")

// FieldError reports which field of a manifest is invalid and why.
type FieldError struct {
	Field  string // dotted path, e.g. "capabilities.auth.required[0]"
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("manifest: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// ScheduleChecker validates a schedule spec. The manifest package does not
// parse cron itself; Validate takes the host's (or SDK's) parser so both
// sides agree on one grammar.
type ScheduleChecker func(spec string) error

// Validate reports the first rule m breaks as a *FieldError, or nil.
// checkSchedule may be nil to skip schedule grammar checks.
func (m *Manifest) Validate(checkSchedule ScheduleChecker) error {
	fe := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case m.ConnectorKey == "":
		return fe("connector_key", "is empty")
	case strings.Contains(m.ConnectorKey, "://") || strings.Contains(m.ConnectorKey, "/"):
		return fe("connector_key", "%q looks like a URL or path; use a short key such as \"github\"", trunc(m.ConnectorKey))
	case !keyRE.MatchString(m.ConnectorKey):
		return fe("connector_key", "%q does not match ^[a-z][a-z0-9_-]{1,62}$", trunc(m.ConnectorKey))
	}
	if m.Version == "" {
		return fe("version", "is empty")
	}
	// A slice, not a map, so the first error reported is always the same.
	for _, f := range []struct{ field, value string }{
		{"version", m.Version},
		{"display_name", m.DisplayName},
		{"description", m.Description},
		{"default_schedule.spec", m.DefaultSchedule.Spec},
	} {
		if len(f.value) > MaxStringLen {
			return fe(f.field, "longer than %d bytes", MaxStringLen)
		}
		// Protobuf refuses to marshal a string field holding invalid UTF-8,
		// so such a manifest could never cross the wire.
		if !utf8.ValidString(f.value) {
			return fe(f.field, "is not valid UTF-8")
		}
	}
	switch m.Auth.Kind {
	case AuthStaticSecret:
		if len(m.Auth.Required) == 0 {
			return fe("capabilities.auth.required", "is empty; kind %q needs at least one name", AuthStaticSecret)
		}
	case AuthNone:
		if len(m.Auth.Required) != 0 {
			return fe("capabilities.auth.required", "must be empty when kind is %q", AuthNone)
		}
	case "":
		return fe("capabilities.auth.kind", "is empty; want %q or %q", AuthStaticSecret, AuthNone)
	default:
		return fe("capabilities.auth.kind", "%q is not %q or %q", trunc(m.Auth.Kind), AuthStaticSecret, AuthNone)
	}
	if err := checkEnvNames("capabilities.auth.required", m.Auth.Required); err != nil {
		return err
	}
	if err := checkEnvNames("env_passthrough", m.EnvPassthrough); err != nil {
		return err
	}
	for i, n := range m.EnvPassthrough {
		for _, r := range m.Auth.Required {
			if n == r {
				return fe(fmt.Sprintf("env_passthrough[%d]", i), "%q is also a required credential name; secrets are never passed through", n)
			}
		}
	}
	if len(m.Streams) == 0 {
		return fe("streams", "is empty; declare at least one stream")
	}
	if len(m.Streams) > MaxStreams {
		return fe("streams", "more than %d streams", MaxStreams)
	}
	seen := map[string]bool{}
	for i, s := range m.Streams {
		f := fmt.Sprintf("streams[%d]", i)
		if !streamRE.MatchString(s.Name) {
			return fe(f+".name", "%q does not match ^[a-z][a-z0-9_]{0,62}$", trunc(s.Name))
		}
		if seen[s.Name] {
			return fe(f+".name", "duplicate stream %q", s.Name)
		}
		seen[s.Name] = true
		if len(s.KeyFields) == 0 {
			return fe(f+".key_fields", "is empty; records are upserted by key")
		}
		if len(s.KeyFields) > MaxKeyFields {
			return fe(f+".key_fields", "more than %d key fields", MaxKeyFields)
		}
		keys := map[string]bool{}
		for j, k := range s.KeyFields {
			if !fieldRE.MatchString(k) {
				return fe(fmt.Sprintf("%s.key_fields[%d]", f, j), "%q is not a field name", trunc(k))
			}
			if keys[k] {
				return fe(fmt.Sprintf("%s.key_fields[%d]", f, j), "duplicate key field %q", k)
			}
			keys[k] = true
		}
	}
	if m.DefaultSchedule.Spec != "" && checkSchedule != nil {
		if err := checkSchedule(m.DefaultSchedule.Spec); err != nil {
			return fe("default_schedule.spec", "%v", err)
		}
	}
	if m.DefaultSchedule.AutoEnroll && m.DefaultSchedule.Spec == "" {
		return fe("default_schedule.auto_enroll", "is true but default_schedule.spec is empty")
	}
	if m.ConfigSchema != "" {
		if len(m.ConfigSchema) > MaxConfigSchema {
			return fe("config_schema", "longer than %d bytes", MaxConfigSchema)
		}
		if !utf8.ValidString(m.ConfigSchema) {
			return fe("config_schema", "is not valid UTF-8")
		}
		// Unmarshal accepts "null" into a map without error and leaves it
		// nil; a schema must be an object.
		var v map[string]any
		if err := json.Unmarshal([]byte(m.ConfigSchema), &v); err != nil {
			return fe("config_schema", "is not a JSON object: %v", err)
		}
		if v == nil {
			return fe("config_schema", "is not a JSON object: null")
		}
	}
	return nil
}

func checkEnvNames(field string, names []string) error {
	if len(names) > MaxNames {
		return &FieldError{Field: field, Reason: fmt.Sprintf("more than %d names", MaxNames)}
	}
	seen := map[string]bool{}
	for i, n := range names {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !envRE.MatchString(n) {
			return &FieldError{Field: f, Reason: fmt.Sprintf("%q is not an environment variable name", trunc(n))}
		}
		for _, p := range reservedPrefix {
			if strings.HasPrefix(n, p) {
				return &FieldError{Field: f, Reason: fmt.Sprintf("%q uses the reserved prefix %s", n, p)}
			}
		}
		if seen[n] {
			return &FieldError{Field: f, Reason: fmt.Sprintf("duplicate name %q", n)}
		}
		seen[n] = true
	}
	return nil
}

// trunc keeps error strings bounded when echoing untrusted values.
func trunc(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	// Cut on a rune boundary so the message stays valid UTF-8.
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// StreamByName returns the stream named name.
func (m *Manifest) StreamByName(name string) (Stream, bool) {
	for _, s := range m.Streams {
		if s.Name == name {
			return s, true
		}
	}
	return Stream{}, false
}
