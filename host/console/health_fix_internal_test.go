package console

import "testing"

func TestHealthFix(t *testing.T) {
	t.Parallel()
	const conn = "/ui/connections/conn%2F1"
	for _, tc := range []struct {
		verdict  string
		url      string
		specific bool
	}{
		{"needs_credential", conn + "/credential", true},
		{"credential_rejected", conn + "/credential", true},
		{"credential_unavailable", conn + "/credential", true},
		{"connector_missing", "/ui/connectors", true},
		{"invalid_config", conn + "#edit-connection", true},
		{"paused", conn + "#resume-form", true},
		{"failing", conn + "#last-run", true},
		{"revoked", conn, false},
		{"never_run", conn, false},
		{"healthy", conn, false},
		{"a verdict this console does not know", conn, false},
	} {
		t.Run(tc.verdict, func(t *testing.T) {
			t.Parallel()
			fix, specific := healthFix("conn/1", tc.verdict)
			if fix.URL != tc.url || specific != tc.specific || fix.Text == "" {
				t.Errorf("healthFix(%q) = %+v, %v; want URL %q, %v, and a text", tc.verdict, fix, specific, tc.url, tc.specific)
			}
		})
	}
}
