package cli_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	provenanceRunJSON = `{"id":"r1","connection_id":"c1","trigger":"scheduled","attempt":1,"status":"succeeded","failure_code":"",` +
		`"created_at":"2025-01-02T03:04:05Z","started_at":"2025-01-02T03:04:05Z","ended_at":"2025-01-02T03:04:06Z","host_id":"host_a","records":5,` +
		`"stream_records":{"events":3,"env":2},` +
		`"provenance":{"credential_source":"stored","credential":{"state":"active","key_id":7,"captured_at":"2025-01-01T00:00:00Z","rotated_at":"2025-01-02T00:00:00.5Z"},` +
		`"env":[{"name":"CONNHOST_RUN_ID","layer":"run_metadata"},{"name":"DEMO_LABEL","layer":"passthrough"},{"name":"DEMO_TOKEN","layer":"stored_credential"},{"name":"PATH","layer":"allowlist"}]}}`
	provenanceRefusedJSON = `{"id":"r9","connection_id":"c1","trigger":"scheduled","attempt":1,"status":"refused","failure_code":"static_secret_credential_unavailable",` +
		`"failure_message":"connection c1: stored credential revoked at 2025-01-02T03:00:00Z; refusing to fall back to the host environment",` +
		`"created_at":"2025-01-02T03:04:05Z","ended_at":"2025-01-02T03:04:05Z","host_id":"host_a","records":0,` +
		`"provenance":{"credential":{"state":"revoked","key_id":7,"captured_at":"2025-01-01T00:00:00Z","revoked_at":"2025-01-02T03:00:00Z"},"env":[],` +
		`"refusal":{"code":"static_secret_credential_unavailable","credential_state":"revoked"}}}`
	provenanceRequiredJSON = `{"id":"r8","connection_id":"c1","trigger":"manual","attempt":1,"status":"refused","failure_code":"credentials_required",` +
		`"created_at":"2025-01-02T03:04:05Z","ended_at":"2025-01-02T03:04:05Z","host_id":"host_a","records":0,` +
		`"provenance":{"env":[],"refusal":{"code":"credentials_required","credential_state":"none","absent_env":["APP_USER"],"empty_env":["DEMO_TOKEN"]}}}`
	explainLaunchJSON = `{"connection_id":"c1","connector_key":"demo","state":"active",` +
		`"enrollment":{"connection_id":"c1","connector_key":"demo","outcome":"enrolled","reason":"auth satisfied by stored credential","evaluated_at":"2025-01-02T03:04:05Z"},` +
		`"health":{"verdict":"healthy","reason":"the latest run succeeded","since":"2025-01-02T03:04:05Z","needs_person":false},` +
		`"launch":{"outcome":"launch","trigger":"scheduled","credential_source":"stored","credential":{"state":"active","key_id":7,"captured_at":"2025-01-01T00:00:00Z"},` +
		`"env":[{"name":"DEMO_TOKEN","layer":"stored_credential"},{"name":"PATH","layer":"allowlist"}],"notes":["presence only"]}}`
	// Right after a revoke: enrolled in force, the gate would skip it now,
	// the next launch is the scheduled one, refused.
	explainRefusedJSON = `{"connection_id":"c1","connector_key":"demo","state":"active",` +
		`"enrollment":{"connection_id":"c1","connector_key":"demo","outcome":"enrolled","reason":"auth satisfied by stored credential","evaluated_at":"2025-01-02T03:04:05Z"},` +
		`"reevaluation":{"connection_id":"c1","connector_key":"demo","outcome":"skipped_env","reason":"no active stored credential, and host env credentials are turned off","evaluated_at":"2025-01-02T03:10:00Z"},` +
		`"health":{"verdict":"credential_unavailable","reason":"static_secret_credential_unavailable: stored credential revoked at 2025-01-02T03:00:00Z","action":"capture a new credential: ` + "`connhost credential set c1`" + `","needs_person":true},` +
		`"launch":{"outcome":"refused","trigger":"scheduled","next_run":"2025-01-02T04:00:00Z","credential":{"state":"revoked","key_id":7,"captured_at":"2025-01-01T00:00:00Z","revoked_at":"2025-01-02T03:00:00Z"},"env":[],` +
		`"refusal":{"code":"static_secret_credential_unavailable","message":"connection c1: stored credential revoked at 2025-01-02T03:00:00Z; refusing to fall back to the host environment","credential_state":"revoked"},"notes":["the next scheduled run is refused and recorded"]}}`
)

// Issue 12: runs show prints the launch provenance as a NAME/LAYER
// table with the credential line, and a refusal's lines; explain prints
// the predicted launch; -o json is the API's JSON, provenance included.
func TestProvenanceAndExplainOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		routes map[string][]reply
		want   string
		json   bool
	}{
		{
			name:   "runs show with provenance",
			args:   []string{"runs", "show", "r1"},
			routes: map[string][]reply{"GET /v1/runs/r1": {{body: provenanceRunJSON}}},
			want: "id:         r1\n" +
				"connection: c1\n" +
				"trigger:    scheduled\n" +
				"attempt:    1\n" +
				"status:     succeeded\n" +
				"failure:    -\n" +
				"host:       host_a\n" +
				"records:    5\n" +
				"by stream:  env 2, events 3\n" +
				"created at: 2025-01-02T03:04:05Z\n" +
				"started at: 2025-01-02T03:04:05Z\n" +
				"ended at:   2025-01-02T03:04:06Z\n" +
				"\n" +
				"credential: stored credential (active, key id 7, captured 2025-01-01T00:00:00Z, rotated 2025-01-02T00:00:00Z)\n" +
				"\n" +
				"NAME             LAYER\n" +
				"CONNHOST_RUN_ID  run_metadata\n" +
				"DEMO_LABEL       passthrough\n" +
				"DEMO_TOKEN       stored_credential\n" +
				"PATH             allowlist\n",
		},
		{
			name:   "runs show of a refused launch",
			args:   []string{"runs", "show", "r9"},
			routes: map[string][]reply{"GET /v1/runs/r9": {{body: provenanceRefusedJSON}}},
			want: "id:              r9\n" +
				"connection:      c1\n" +
				"trigger:         scheduled\n" +
				"attempt:         1\n" +
				"status:          refused\n" +
				"failure:         static_secret_credential_unavailable\n" +
				"failure message: connection c1: stored credential revoked at 2025-01-02T03:00:00Z; refusing to fall back to the host environment\n" +
				"host:            host_a\n" +
				"records:         0\n" +
				"created at:      2025-01-02T03:04:05Z\n" +
				"started at:      -\n" +
				"ended at:        2025-01-02T03:04:05Z\n" +
				"\n" +
				"credential:       refused (revoked, key id 7, captured 2025-01-01T00:00:00Z, revoked 2025-01-02T03:00:00Z)\n" +
				"refused:          static_secret_credential_unavailable\n" +
				"credential state: revoked\n",
		},
		{
			name:   "runs show of a credentials_required refusal",
			args:   []string{"runs", "show", "r8"},
			routes: map[string][]reply{"GET /v1/runs/r8": {{body: provenanceRequiredJSON}}},
			want: "id:         r8\n" +
				"connection: c1\n" +
				"trigger:    manual\n" +
				"attempt:    1\n" +
				"status:     refused\n" +
				"failure:    credentials_required\n" +
				"host:       host_a\n" +
				"records:    0\n" +
				"created at: 2025-01-02T03:04:05Z\n" +
				"started at: -\n" +
				"ended at:   2025-01-02T03:04:05Z\n" +
				"\n" +
				"credential:           refused\n" +
				"refused:              credentials_required\n" +
				"credential state:     none\n" +
				"absent from host env: APP_USER\n" +
				"empty in host env:    DEMO_TOKEN\n",
		},
		{
			name:   "runs show without provenance",
			args:   []string{"runs", "show", "r1"},
			routes: map[string][]reply{"GET /v1/runs/r1": {{body: refusedRunJSON}}},
			want: "id:              r9\n" +
				"connection:      c1\n" +
				"trigger:         manual\n" +
				"attempt:         1\n" +
				"status:          refused\n" +
				"failure:         static_secret_credential_unavailable\n" +
				"failure message: the connection's credential is revoked\n" +
				"host:            host_a\n" +
				"records:         0\n" +
				"created at:      2025-01-02T03:04:05Z\n" +
				"started at:      -\n" +
				"ended at:        2025-01-02T03:04:05Z\n" +
				"\n" +
				"provenance: none: the run ended before its credential was resolved\n",
		},
		{
			name:   "runs show -o json includes provenance",
			args:   []string{"runs", "show", "r1", "-o", "json"},
			routes: map[string][]reply{"GET /v1/runs/r1": {{body: provenanceRunJSON}}},
			want:   provenanceRunJSON, json: true,
		},
		{
			name:   "connection explain, a launch",
			args:   []string{"connection", "explain", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/explain": {{body: explainLaunchJSON}}},
			want: "connection:  c1\n" +
				"connector:   demo\n" +
				"state:       active\n" +
				"enrollment:  enrolled: auth satisfied by stored credential (in force since 2025-01-02T03:04:05Z)\n" +
				"health:      healthy: the latest run succeeded\n" +
				"next launch: launch (scheduled)\n" +
				"credential:  stored credential (active, key id 7, captured 2025-01-01T00:00:00Z)\n" +
				"note:        presence only\n" +
				"\n" +
				"NAME        LAYER\n" +
				"DEMO_TOKEN  stored_credential\n" +
				"PATH        allowlist\n",
		},
		{
			name:   "connection explain, refused after a revoke",
			args:   []string{"connection", "explain", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/explain": {{body: explainRefusedJSON}}},
			want: "connection:       c1\n" +
				"connector:        demo\n" +
				"state:            active\n" +
				"enrollment:       enrolled: auth satisfied by stored credential (in force since 2025-01-02T03:04:05Z)\n" +
				"at re-evaluation: skipped_env: no active stored credential, and host env credentials are turned off (the gate's decision now; in force at the next re-evaluation)\n" +
				"health:           credential_unavailable: static_secret_credential_unavailable: stored credential revoked at 2025-01-02T03:00:00Z\n" +
				"action:           capture a new credential: `connhost credential set c1`\n" +
				"next launch:      refused (scheduled, due 2025-01-02T04:00:00Z)\n" +
				"credential:       refused (revoked, key id 7, captured 2025-01-01T00:00:00Z, revoked 2025-01-02T03:00:00Z)\n" +
				"refused:          static_secret_credential_unavailable: connection c1: stored credential revoked at 2025-01-02T03:00:00Z; refusing to fall back to the host environment\n" +
				"credential state: revoked\n" +
				"note:             the next scheduled run is refused and recorded\n",
		},
		{
			name:   "connection explain -o json",
			args:   []string{"connection", "explain", "c1", "-o", "json"},
			routes: map[string][]reply{"GET /v1/connections/c1/explain": {{body: explainRefusedJSON}}},
			want:   explainRefusedJSON, json: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, newFakeAPI(tt.routes), options{}, tt.args...)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if tt.json {
				jsonEqual(t, tt.want, res.stdout)
				return
			}
			if diff := cmp.Diff(tt.want, res.stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
		})
	}
}
