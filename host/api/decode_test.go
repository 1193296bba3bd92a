package api_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/api/apitypes"
)

// A key given twice in one object is a typed 400 naming where (the path
// of the object, never the duplicated key: it may be a secret pasted as
// a name) — Go's decoder would keep the last one silently.
func TestDecodeRefusesDuplicateKeys(t *testing.T) {
	t.Parallel()
	const secret = "CANARY_dup_key_5c1d"
	tests := map[string]struct {
		body  string
		dst   any
		field string
	}{
		"top level":                {`{"label":"a","label":"b"}`, &apitypes.ConnectionUpdateRequest{}, ""},
		"credential names":         {`{"values":{"` + secret + `":"1","` + secret + `":"2"}}`, &apitypes.CredentialSetRequest{}, "values"},
		"deep in the config":       {`{"config":{"l":[{"k":1},{"k":1,"k":2}]}}`, &apitypes.ConnectionUpdateRequest{}, "config.l[1]"},
		"same key in two objects":  {`{"label":"a","config":{"label":"b"}}`, &apitypes.ConnectionUpdateRequest{}, "-"},
		"same key in two elements": {`{"config":{"l":[{"k":1},{"k":2}]}}`, &apitypes.ConnectionUpdateRequest{}, "-"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := api.Decode(strings.NewReader(tc.body), 1<<20, tc.dst)
			if tc.field == "-" {
				if err != nil {
					t.Fatalf("distinct keys refused: %v", err)
				}
				return
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Body.Code != apitypes.CodeInvalidRequest ||
				ae.Body.Field != tc.field || !strings.Contains(ae.Body.Message, "same key twice") {
				t.Fatalf("Decode = %#v, want a 400 on field %q", err, tc.field)
			}
			if strings.Contains(ae.Body.Message, secret) {
				t.Fatalf("the duplicated key was echoed: %s", ae.Body.Message)
			}
		})
	}
}
