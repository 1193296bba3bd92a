package launch

import (
	"sort"
	"strings"
)

// CredentialSource says where the credential values of a run came from. It
// decides whether host values of the manifest's auth.required names may
// reach the child (DESIGN section 2 and 3).
type CredentialSource string

// Credential sources, as resolved by the broker.
const (
	// SourceStored means the values come from the connection's stored
	// credential; the host's own values of those names never reach the child.
	SourceStored CredentialSource = "stored"
	// SourceHostEnv means the broker accepted the host's environment as the
	// credential (no credential stored, every required name set non-empty).
	SourceHostEnv CredentialSource = "host_env"
	// SourceNone means the connector needs no credential.
	SourceNone CredentialSource = "none"
)

// Run metadata variables the host sets in every run's environment.
const (
	EnvConnectionID = "CONNHOST_CONNECTION_ID"
	EnvRunID        = "CONNHOST_RUN_ID"
	EnvTrigger      = "CONNHOST_TRIGGER"
)

// DefaultAllowlist is the small set of host variables every child gets when
// the host sets them: what a program needs to find binaries, a home, a temp
// dir, its locale, the time zone, CA certificates and the proxy. Treat it
// as read-only: copy it (slices.Clone) to build an operator's list.
var DefaultAllowlist = []string{
	"PATH", "HOME", "TMPDIR", "LANG", "TZ",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"http_proxy", "https_proxy", "no_proxy",
}

// reservedPrefixes are names the host owns. Layers taken from the host or
// from a credential never supply them: CONNHOST_* holds the host's own
// settings (operator token, key-encryption key) and the run metadata, and
// PLUGIN_* is go-plugin's handshake, which go-plugin appends itself.
var reservedPrefixes = []string{"CONNHOST_", "PLUGIN_"}

// EnvSpec is what BuildEnv needs to know about one run.
type EnvSpec struct {
	// Allowlist names host variables passed to every child (layer 1).
	// Callers usually pass DefaultAllowlist or an operator's list.
	Allowlist []string
	// Passthrough is the manifest's env_passthrough (layer 2).
	Passthrough []string
	// AuthRequired is the manifest's capabilities.auth.required (layer 3,
	// only when Source is SourceHostEnv).
	AuthRequired []string
	// Source is where the broker resolved the credential from.
	Source CredentialSource
	// Credential holds the stored credential's values (layer 5), set only
	// when Source is SourceStored.
	Credential map[string]string
	// Run metadata (layer 4).
	ConnectionID, RunID, Trigger string
}

// Layer names the layer of a child's environment a variable came from, in
// the order BuildEnv applies them (DESIGN section 3). The strings are the
// ones a run's provenance stores (store.EnvLayer).
type Layer string

// Layers, first to last.
const (
	LayerAllowlist        Layer = "allowlist"
	LayerPassthrough      Layer = "passthrough"
	LayerHostEnv          Layer = "host_env"
	LayerRunMetadata      Layer = "run_metadata"
	LayerStoredCredential Layer = "stored_credential"
)

// Origin is one variable of a built environment: its name and the layer
// that supplied it. It never holds a value.
type Origin struct {
	Name  string
	Layer Layer
}

// BuildEnv returns a child's whole environment, as NAME=value entries sorted
// by name. host is the host's environment in os.Environ form; BuildEnv never
// reads the process environment itself, so it is a pure function.
//
// Layers, later wins, empty values dropped in every layer but the last:
//
//  1. host values of spec.Allowlist;
//  2. host values of spec.Passthrough;
//  3. host values of spec.AuthRequired, only when spec.Source is SourceHostEnv;
//  4. CONNHOST_CONNECTION_ID, CONNHOST_RUN_ID, CONNHOST_TRIGGER;
//  5. spec.Credential, only when spec.Source is SourceStored — last, so a
//     host variable set to "" or to a stale value can never shadow it.
//
// Names with a reserved prefix (CONNHOST_, PLUGIN_) and malformed names are
// never taken from layers 1, 2, 3 or 5.
func BuildEnv(host []string, spec EnvSpec) []string {
	env, _ := BuildEnvProvenance(host, spec)
	return env
}

// BuildEnvProvenance is BuildEnv that also says, for each variable of the
// environment (same order), the layer that supplied it. BuildEnv is this
// function, so the provenance a run records cannot drift from the
// environment its child got.
//
// For a prediction from names only (no decryption), pass spec.Credential
// with the stored names mapped to "": the last layer keeps empty values,
// so the origins are those of the real launch; discard the env.
func BuildEnvProvenance(host []string, spec EnvSpec) ([]string, []Origin) {
	hostVal := lookupIn(host)
	type entry struct {
		value string
		layer Layer
	}
	env := map[string]entry{}
	setNonEmpty := func(name, value string, layer Layer) {
		if value != "" && validName(name) && !reserved(name) {
			env[name] = entry{value, layer}
		}
	}
	fromHost := func(names []string, layer Layer) {
		for _, n := range names {
			setNonEmpty(n, hostVal(n), layer)
		}
	}

	fromHost(spec.Allowlist, LayerAllowlist)
	fromHost(spec.Passthrough, LayerPassthrough)
	if spec.Source == SourceHostEnv {
		fromHost(spec.AuthRequired, LayerHostEnv)
	}
	for name, value := range map[string]string{
		EnvConnectionID: spec.ConnectionID,
		EnvRunID:        spec.RunID,
		EnvTrigger:      spec.Trigger,
	} {
		if value != "" {
			env[name] = entry{value, LayerRunMetadata}
		}
	}
	if spec.Source == SourceStored {
		for name, value := range spec.Credential {
			// The last layer keeps empty values: a stored empty value is
			// the credential, not an absence.
			if validName(name) && !reserved(name) {
				env[name] = entry{value, LayerStoredCredential}
			}
		}
	}

	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	origins := make([]Origin, len(names))
	for i, name := range names {
		out[i] = name + "=" + env[name].value
		origins[i] = Origin{Name: name, Layer: env[name].layer}
	}
	return out, origins
}

// lookupIn returns a lookup over an os.Environ-style list. The first entry
// of a name wins, as getenv(3) and os.Getenv resolve duplicates.
func lookupIn(host []string) func(string) string {
	m := make(map[string]string, len(host))
	for _, kv := range host {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		if _, dup := m[name]; !dup {
			m[name] = value
		}
	}
	return func(name string) string { return m[name] }
}

func validName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "=\x00")
}

func reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Names returns the variable names of an environment list, in order.
func Names(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		out = append(out, name)
	}
	return out
}
