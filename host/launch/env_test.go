package launch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuildEnv(t *testing.T) {
	t.Parallel()
	host := []string{
		"PATH=/usr/bin",
		"HOME=/home/op",
		"TMPDIR=",
		"LANG=C.UTF-8",
		"DEMO_TOKEN=",
		"API_BASE_URL=https://api.example",
		"AWS_SECRET_ACCESS_KEY=canary-aws",
		"OTHER_TOKEN=other-connection",
		"CONNHOST_TOKEN=operator-token",
		"CONNHOST_RUN_ID=host-run",
		"PLUGIN_MIN_PORT=1",
		"DUP=first",
		"DUP=second",
		"malformed",
		"=novalue",
	}
	meta := EnvSpec{ConnectionID: "conn-1", RunID: "run-1", Trigger: "scheduled"}
	withMeta := func(s EnvSpec) EnvSpec {
		s.ConnectionID, s.RunID, s.Trigger = meta.ConnectionID, meta.RunID, meta.Trigger
		return s
	}
	metaEnv := []string{"CONNHOST_CONNECTION_ID=conn-1", "CONNHOST_RUN_ID=run-1", "CONNHOST_TRIGGER=scheduled"}

	tests := map[string]struct {
		host []string
		spec EnvSpec
		want []string
	}{
		"empty host and spec": {
			want: []string{},
		},
		"allowlist only, empty host values dropped": {
			host: host,
			spec: EnvSpec{Allowlist: DefaultAllowlist},
			want: []string{"HOME=/home/op", "LANG=C.UTF-8", "PATH=/usr/bin"},
		},
		"stored credential wins over empty host value (the seed's bug)": {
			host: host,
			spec: withMeta(EnvSpec{
				Allowlist: []string{"PATH"}, AuthRequired: []string{"DEMO_TOKEN"},
				Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": "stored-secret"},
			}),
			want: append(metaEnv[:3:3], "DEMO_TOKEN=stored-secret", "PATH=/usr/bin"),
		},
		"stored credential wins over stale host value even when allowlisted": {
			host: []string{"DEMO_TOKEN=stale"},
			spec: EnvSpec{
				Allowlist: []string{"DEMO_TOKEN"}, Passthrough: []string{"DEMO_TOKEN"}, AuthRequired: []string{"DEMO_TOKEN"},
				Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": "stored-secret"},
			},
			want: []string{"DEMO_TOKEN=stored-secret"},
		},
		"stored empty value is kept: the last layer keeps empties": {
			host: []string{"DEMO_TOKEN=stale"},
			spec: EnvSpec{Allowlist: []string{"DEMO_TOKEN"}, Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": ""}},
			want: []string{"DEMO_TOKEN="},
		},
		"host auth values only with source host_env": {
			host: []string{"DEMO_TOKEN=from-host", "SECOND=two"},
			spec: EnvSpec{AuthRequired: []string{"DEMO_TOKEN", "SECOND"}, Source: SourceHostEnv},
			want: []string{"DEMO_TOKEN=from-host", "SECOND=two"},
		},
		"host auth values ignored with source stored": {
			host: []string{"DEMO_TOKEN=from-host", "SECOND=two"},
			spec: EnvSpec{AuthRequired: []string{"DEMO_TOKEN", "SECOND"}, Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": "s"}},
			want: []string{"DEMO_TOKEN=s"},
		},
		"host auth values ignored with source none": {
			host: []string{"DEMO_TOKEN=from-host"},
			spec: EnvSpec{AuthRequired: []string{"DEMO_TOKEN"}, Source: SourceNone},
			want: []string{},
		},
		"credential ignored unless source stored": {
			host: []string{"DEMO_TOKEN=from-host"},
			spec: EnvSpec{AuthRequired: []string{"DEMO_TOKEN"}, Source: SourceHostEnv, Credential: map[string]string{"DEMO_TOKEN": "s"}},
			want: []string{"DEMO_TOKEN=from-host"},
		},
		"empty host auth value does not shadow nothing": {
			host: []string{"DEMO_TOKEN="},
			spec: EnvSpec{AuthRequired: []string{"DEMO_TOKEN"}, Source: SourceHostEnv},
			want: []string{},
		},
		"passthrough overrides allowlist, empty passthrough does not": {
			host: []string{"HOME=/home/op", "API_BASE_URL=https://api.example", "EMPTY="},
			spec: EnvSpec{Allowlist: []string{"HOME"}, Passthrough: []string{"API_BASE_URL", "EMPTY", "UNSET"}},
			want: []string{"API_BASE_URL=https://api.example", "HOME=/home/op"},
		},
		"nothing outside the layers: other secrets never leak": {
			host: host,
			spec: withMeta(EnvSpec{
				Allowlist: DefaultAllowlist, Passthrough: []string{"API_BASE_URL"}, AuthRequired: []string{"DEMO_TOKEN"},
				Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": "stored-secret"},
			}),
			want: append(append([]string{"API_BASE_URL=https://api.example"}, metaEnv...),
				"DEMO_TOKEN=stored-secret", "HOME=/home/op", "LANG=C.UTF-8", "PATH=/usr/bin"),
		},
		"reserved prefixes never come from host or credential": {
			host: host,
			spec: withMeta(EnvSpec{
				Allowlist: []string{"CONNHOST_TOKEN", "CONNHOST_RUN_ID", "PLUGIN_MIN_PORT"}, Passthrough: []string{"CONNHOST_TOKEN"},
				Source: SourceStored, Credential: map[string]string{"CONNHOST_RUN_ID": "forged", "PLUGIN_MAX_PORT": "2"},
			}),
			want: metaEnv,
		},
		"empty metadata dropped": {
			spec: EnvSpec{RunID: "run-1"},
			want: []string{"CONNHOST_RUN_ID=run-1"},
		},
		"malformed names dropped": {
			host: host,
			spec: EnvSpec{Allowlist: []string{"", "A=B", "malformed"}, Source: SourceStored, Credential: map[string]string{"": "x", "X=Y": "z", "OK": "v"}},
			want: []string{"OK=v"},
		},
		"first duplicate in the host env wins, as getenv": {
			host: host,
			spec: EnvSpec{Allowlist: []string{"DUP"}},
			want: []string{"DUP=first"},
		},
		"sorted by name, not by entry": {
			host: []string{"A0=x", "A=y", "A_B=z"},
			spec: EnvSpec{Allowlist: []string{"A_B", "A0", "A"}},
			want: []string{"A=y", "A0=x", "A_B=z"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got := BuildEnv(tc.host, tc.spec)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("BuildEnv (-want +got):\n%s", diff)
			}
			// Pure and deterministic: the same input gives the same bytes.
			if diff := cmp.Diff(got, BuildEnv(tc.host, tc.spec)); diff != "" {
				t.Errorf("BuildEnv not deterministic:\n%s", diff)
			}
			// The provenance names every variable of the env, in order.
			env, origins := BuildEnvProvenance(tc.host, tc.spec)
			if diff := cmp.Diff(got, env); diff != "" {
				t.Errorf("BuildEnvProvenance env differs from BuildEnv:\n%s", diff)
			}
			names := make([]string, len(origins))
			for i, o := range origins {
				names[i] = o.Name
			}
			if diff := cmp.Diff(Names(got), names); diff != "" {
				t.Errorf("provenance names (-env +provenance):\n%s", diff)
			}
		})
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	got := Names([]string{"A=1", "B=", "C=x=y"})
	if diff := cmp.Diff([]string{"A", "B", "C"}, got); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
}

func TestBuildEnvProvenance(t *testing.T) {
	t.Parallel()
	host := []string{"PATH=/usr/bin", "HOME=/home/op", "DEMO_TOKEN=", "API_BASE_URL=https://api.example",
		"HOST_TOKEN=from-host", "LANG="}
	tests := map[string]struct {
		spec EnvSpec
		want []Origin
	}{
		"each layer names its variables": {
			spec: EnvSpec{Allowlist: []string{"PATH", "HOME", "LANG"}, Passthrough: []string{"API_BASE_URL"},
				AuthRequired: []string{"DEMO_TOKEN"}, Source: SourceStored,
				Credential: map[string]string{"DEMO_TOKEN": "stored-secret"}, ConnectionID: "c", RunID: "r", Trigger: "manual"},
			want: []Origin{{"API_BASE_URL", LayerPassthrough}, {EnvConnectionID, LayerRunMetadata}, {EnvRunID, LayerRunMetadata},
				{EnvTrigger, LayerRunMetadata}, {"DEMO_TOKEN", LayerStoredCredential}, {"HOME", LayerAllowlist}, {"PATH", LayerAllowlist}},
		},
		"later layer wins: allowlisted and passed through is passthrough": {
			spec: EnvSpec{Allowlist: []string{"API_BASE_URL"}, Passthrough: []string{"API_BASE_URL"}},
			want: []Origin{{"API_BASE_URL", LayerPassthrough}},
		},
		"stored credential wins over every host layer": {
			spec: EnvSpec{Allowlist: []string{"HOST_TOKEN"}, Passthrough: []string{"HOST_TOKEN"}, AuthRequired: []string{"HOST_TOKEN"},
				Source: SourceStored, Credential: map[string]string{"HOST_TOKEN": "stored"}},
			want: []Origin{{"HOST_TOKEN", LayerStoredCredential}},
		},
		"host env source: auth names from host_env": {
			spec: EnvSpec{Passthrough: []string{"HOST_TOKEN"}, AuthRequired: []string{"HOST_TOKEN"}, Source: SourceHostEnv},
			want: []Origin{{"HOST_TOKEN", LayerHostEnv}},
		},
		"empty host value supplies nothing": {
			spec: EnvSpec{Allowlist: []string{"DEMO_TOKEN"}, AuthRequired: []string{"DEMO_TOKEN"}, Source: SourceHostEnv},
			want: []Origin{},
		},
		"names only: a stored name mapped to empty keeps its layer": {
			spec: EnvSpec{Allowlist: []string{"DEMO_TOKEN"}, Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": ""}},
			want: []Origin{{"DEMO_TOKEN", LayerStoredCredential}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, got := BuildEnvProvenance(host, tc.spec)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("origins (-want +got):\n%s", diff)
			}
		})
	}
}

// A prediction from the stored names alone gives the origins of the real
// launch: connection explain relies on it.
func TestBuildEnvProvenanceFromNamesOnly(t *testing.T) {
	t.Parallel()
	host := []string{"PATH=/usr/bin", "DEMO_TOKEN=", "USER_NAME=host"}
	real := EnvSpec{Allowlist: []string{"PATH", "DEMO_TOKEN"}, AuthRequired: []string{"DEMO_TOKEN", "USER_NAME"},
		Source: SourceStored, Credential: map[string]string{"DEMO_TOKEN": "secret-1", "USER_NAME": "secret-2"}, RunID: "r"}
	namesOnly := real
	namesOnly.Credential = map[string]string{"DEMO_TOKEN": "", "USER_NAME": ""}
	_, want := BuildEnvProvenance(host, real)
	_, got := BuildEnvProvenance(host, namesOnly)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("names-only origins differ (-real +names only):\n%s", diff)
	}
}
