package server

import (
	"slices"
	"testing"
)

// TestWithholdHostSecrets: the environment connectors, the broker and the
// enrollment gate see never holds the KEK variable (whatever its name) or
// VAULT_TOKEN, so no manifest can name them in env_passthrough or
// auth.required and receive the host's own secrets.
func TestWithholdHostSecrets(t *testing.T) {
	t.Parallel()
	host := []string{
		"PATH=/usr/bin", "MY_KEK=a2VrLWNhbmFyeQ==", "VAULT_TOKEN=hvs.canary", "VAULT_ADDR=https://vault:8200",
		"CONNHOST_KEK=default-kek-canary", "DEMO_TOKEN=host-value", "NOEQUALS",
	}
	for _, tc := range []struct {
		kekEnv string
		want   []string
	}{
		{"MY_KEK", []string{"PATH=/usr/bin", "VAULT_ADDR=https://vault:8200", "CONNHOST_KEK=default-kek-canary", "DEMO_TOKEN=host-value", "NOEQUALS"}},
		{"CONNHOST_KEK", []string{"PATH=/usr/bin", "MY_KEK=a2VrLWNhbmFyeQ==", "VAULT_ADDR=https://vault:8200", "DEMO_TOKEN=host-value", "NOEQUALS"}},
	} {
		t.Run(tc.kekEnv, func(t *testing.T) {
			t.Parallel()
			env := withholdHostSecrets(func() []string { return host }, tc.kekEnv)
			if got := env(); !slices.Equal(got, tc.want) {
				t.Errorf("environment\n got %q\nwant %q", got, tc.want)
			}
			lookup := envLookup(env)
			for _, name := range []string{tc.kekEnv, "VAULT_TOKEN"} {
				if v, ok := lookup(name); ok {
					t.Errorf("%s visible to the broker as %q", name, v)
				}
			}
		})
	}
}

// TestEnvLookupFirstEntryWins: the broker resolves a duplicated name as
// launch.BuildEnv and getenv(3) do, so the value it judges is the value the
// child would get.
func TestEnvLookupFirstEntryWins(t *testing.T) {
	t.Parallel()
	lookup := envLookup(func() []string { return []string{"A=first", "B=", "A=second", "C=x=y"} })
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{
		{"A", "first", true}, {"B", "", true}, {"C", "x=y", true}, {"D", "", false},
	} {
		if v, ok := lookup(tc.name); v != tc.want || ok != tc.ok {
			t.Errorf("lookup(%s) = %q, %v; want %q, %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
}
