package failure

import (
	"errors"
	"fmt"
	"testing"
)

func TestCodeOf(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		err       error
		code      Code
		retryable bool
	}{
		"nil":          {err: nil, code: ""},
		"plain error":  {err: errors.New("boom"), code: Internal},
		"typed":        {err: New(RunActive, "held"), code: RunActive},
		"wrapped":      {err: fmt.Errorf("ctx: %w", New(ConnectionNotFound, "x")), code: ConnectionNotFound},
		"retryable":    {err: &Error{Code: ConnectorCrashed, Retryable: true}, code: ConnectorCrashed, retryable: true},
		"wrapped once": {err: fmt.Errorf("a: %w", &Error{Code: RunTimeout, Retryable: true}), code: RunTimeout, retryable: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := CodeOf(tc.err); got != tc.code {
				t.Fatalf("CodeOf = %q, want %q", got, tc.code)
			}
			if got := IsRetryable(tc.err); got != tc.retryable {
				t.Fatalf("IsRetryable = %v", got)
			}
			if tc.code != "" && !Has(tc.err, tc.code) {
				t.Fatal("Has = false")
			}
		})
	}
}

func TestErrorIsMatchesByCode(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("launch: %w", &Error{Code: StaticSecretUnavailable, Message: "revoked", Err: errors.New("cause")})
	if !errors.Is(err, New(StaticSecretUnavailable, "")) {
		t.Fatal("errors.Is by code failed")
	}
	if errors.Is(err, New(CredentialsRequired, "")) {
		t.Fatal("matched another code")
	}
	if got := err.Error(); got != "launch: static_secret_credential_unavailable: revoked" {
		t.Fatalf("Error() = %q (the cause must not be shown)", got)
	}
	if got := New(Cancelled, "").Error(); got != "cancelled" {
		t.Fatalf("Error() without message = %q", got)
	}
	if got := New(RunActive, "conn %s", "c1").Message; got != "conn c1" {
		t.Fatalf("formatted message = %q", got)
	}
}
