package cli_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCredentialSetPrintsTheCheck: credential set shows the check that
// followed the capture, saying when it reached no verdict and so recorded
// no validity; exit 0 either way, since the credential is stored.
func TestCredentialSetPrintsTheCheck(t *testing.T) {
	t.Parallel()
	const head = `{"present":true,"kind":"static_secret","state":"active","names":["DEMO_TOKEN"],"key_id":7,"captured_at":"2025-01-02T03:04:05Z"`
	const netMsg = "connector_failed: network failure with 127.0.0.1:18993 (connect): connection refused"
	const lines = "connection:  c1\n" +
		"present:     yes\n" +
		"kind:        static_secret\n" +
		"state:       active\n" +
		"names:       DEMO_TOKEN\n" +
		"key id:      7\n" +
		"captured at: 2025-01-02T03:04:05Z\n" +
		"rotated at:  -\n"
	tests := []struct {
		name     string
		body     string
		wantText string
	}{
		{
			name: "inconclusive",
			body: head + `,"check":{"verdict":false,"valid":false,"message":"` + netMsg + `"}}`,
			wantText: lines +
				"check:       inconclusive: " + netMsg + " (validity not recorded)\n",
		},
		{
			name: "valid",
			body: head + `,"validity":{"checked_at":"2025-01-02T03:04:05Z","valid":true,"message":"valid for demo"},` +
				`"check":{"verdict":true,"valid":true,"identity":"demo","message":"valid for demo"}}`,
			wantText: lines +
				"validity:    valid: valid for demo (checked 2025-01-02T03:04:05Z)\n" +
				"check:       valid for demo\n",
		},
		{
			name: "rejected",
			body: head + `,"validity":{"checked_at":"2025-01-02T03:04:05Z","valid":false,"message":"credential_rejected: token rejected"},` +
				`"check":{"verdict":true,"valid":false,"message":"credential_rejected: token rejected"}}`,
			wantText: lines +
				"validity:    invalid: credential_rejected: token rejected (checked 2025-01-02T03:04:05Z)\n" +
				"check:       invalid: credential_rejected: token rejected\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			api := newFakeAPI(map[string][]reply{"PUT /v1/connections/c1/credential": {{body: tt.body}, {body: tt.body}}})
			res := runCLI(t, api, options{stdin: "DEMO_TOKEN=some-token-value\n"}, "credential", "set", "c1")
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if diff := cmp.Diff(tt.wantText, res.stdout); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
			res = runCLI(t, api, options{stdin: "DEMO_TOKEN=some-token-value\n"}, "credential", "set", "c1", "-o", "json")
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			jsonEqual(t, tt.body, res.stdout)
		})
	}
}
