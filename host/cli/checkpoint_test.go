package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	checkpointJSON = `{"connection_id":"c1","present":true,"state":{"next":60},"bytes":11,"run_id":"r1","updated_at":"2025-01-02T03:04:05Z"}`
	resetJSON      = `{"connection_id":"c1","removed":true,"previous":` + checkpointJSON + `}`
)

// TestConnectionStateAndResetState: connection state reads the
// checkpoint, reset-state clears it, in JSON and text; a refusal is the
// host's typed error.
func TestConnectionStateAndResetState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		routes map[string][]reply
		want   string // stdout
		code   int
		stderr string
		calls  []call
	}{
		{
			name:   "state as JSON",
			args:   []string{"connection", "state", "c1", "-o", "json"},
			routes: map[string][]reply{"GET /v1/connections/c1/checkpoint": {{body: checkpointJSON}}},
			want:   checkpointJSON,
			calls:  []call{{Method: "GET", Path: "/v1/connections/c1/checkpoint"}},
		},
		{
			name:   "state as text",
			args:   []string{"connection", "state", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/checkpoint": {{body: checkpointJSON}}},
			want: "connection:   c1\n" +
				"checkpoint:   {\"next\":60}\n" +
				"bytes:        11\n" +
				"committed by: r1\n" +
				"committed at: 2025-01-02T03:04:05Z\n",
		},
		{
			name:   "no state",
			args:   []string{"connection", "state", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/checkpoint": {{body: `{"connection_id":"c1","present":false,"bytes":0}`}}},
			want:   "connection: c1\ncheckpoint: none (the next run starts from scratch)\n",
		},
		{
			name:   "binary state",
			args:   []string{"connection", "state", "c1"},
			routes: map[string][]reply{"GET /v1/connections/c1/checkpoint": {{body: `{"connection_id":"c1","present":true,"state_base64":"AAH/","bytes":3,"run_id":"r1","updated_at":"2025-01-02T03:04:05Z"}`}}},
			want: "connection:   c1\n" +
				"checkpoint:   base64:AAH/\n" +
				"bytes:        3\n" +
				"committed by: r1\n" +
				"committed at: 2025-01-02T03:04:05Z\n",
		},
		{
			name:   "reset-state as JSON",
			args:   []string{"connection", "reset-state", "c1", "-o", "json"},
			routes: map[string][]reply{"DELETE /v1/connections/c1/checkpoint": {{body: resetJSON}}},
			want:   resetJSON,
			calls:  []call{{Method: "DELETE", Path: "/v1/connections/c1/checkpoint"}},
		},
		{
			name:   "reset-state as text",
			args:   []string{"connection", "reset-state", "c1"},
			routes: map[string][]reply{"DELETE /v1/connections/c1/checkpoint": {{body: resetJSON}}},
			want: "connection:   c1\n" +
				"reset:        cleared: the next run starts from scratch\n" +
				"was:          {\"next\":60}\n" +
				"committed by: r1\n" +
				"committed at: 2025-01-02T03:04:05Z\n",
		},
		{
			name:   "reset-state of nothing",
			args:   []string{"connection", "reset-state", "c1"},
			routes: map[string][]reply{"DELETE /v1/connections/c1/checkpoint": {{body: `{"connection_id":"c1","removed":false}`}}},
			want:   "connection: c1\nreset:      nothing to clear: the connection had no checkpoint\n",
		},
		{
			name: "reset-state while a run holds the connection",
			args: []string{"connection", "reset-state", "c1"},
			routes: map[string][]reply{"DELETE /v1/connections/c1/checkpoint": {{status: 409,
				body: `{"error":{"code":"run_active","message":"connection \"c1\" is leased by run \"r9\" of host \"h\" until 2025-01-02T03:04:05Z"}}`}}},
			code:   1,
			stderr: `run_active`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(tt.routes)
			res := runCLI(t, api, options{}, tt.args...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", res.code, tt.code, res.stderr)
			}
			if tt.stderr != "" && !strings.Contains(res.stderr, tt.stderr) {
				t.Errorf("stderr %q does not say %q", res.stderr, tt.stderr)
			}
			if tt.code != 0 {
				return
			}
			if strings.HasPrefix(tt.want, "{") {
				var want, got any
				if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal([]byte(res.stdout), &got); err != nil {
					t.Fatalf("stdout is not JSON: %q", res.stdout)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("JSON (-want +got):\n%s", d)
				}
			} else if res.stdout != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s", res.stdout, tt.want)
			}
			if tt.calls != nil {
				if d := cmp.Diff(tt.calls, api.Calls()); d != "" {
					t.Errorf("calls (-want +got):\n%s", d)
				}
			}
		})
	}
}
