package bearer

import "testing"

func TestAuthorized(t *testing.T) {
	t.Parallel()
	c := New("s3cret-token")
	cases := map[string]struct {
		header string
		want   bool
	}{
		"right":            {"Bearer s3cret-token", true},
		"scheme case":      {"bearer s3cret-token", true},
		"extra spaces":     {"  Bearer   s3cret-token  ", true},
		"wrong":            {"Bearer s3cret-tokeN", false},
		"prefix":           {"Bearer s3cret", false},
		"longer":           {"Bearer s3cret-token-and-more", false},
		"no scheme":        {"s3cret-token", false},
		"basic":            {"Basic s3cret-token", false},
		"empty":            {"", false},
		"scheme only":      {"Bearer", false},
		"scheme and blank": {"Bearer   ", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := c.Authorized(tc.header); got != tc.want {
				t.Errorf("Authorized(%q) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

// TestEmptyTokenAcceptsNothing: a checker built without a token never
// lets anyone in, not even a caller sending an empty token.
func TestEmptyTokenAcceptsNothing(t *testing.T) {
	t.Parallel()
	c := New("")
	for _, h := range []string{"", "Bearer ", "Bearer x"} {
		if c.Authorized(h) {
			t.Errorf("empty token accepted %q", h)
		}
	}
	if c.Valid("") {
		t.Error("Valid(\"\") with an empty token")
	}
}
