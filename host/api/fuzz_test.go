package api_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api"
	"github.com/connhost/connhost/host/api/apitypes"
)

// fuzzSecret marks a credential value inside fuzzed bodies: no decoding
// error may ever quote it.
const fuzzSecret = "S3CR3T"

// FuzzDecodeRequest feeds untrusted bodies to the JSON decoder of every
// request type. It must never panic, must answer a typed 400 or 413, and
// must never echo a credential value — whether the body is valid JSON,
// broken around the value, or the value is not a string at all.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"connector_key":"demo","label":"x","config":{"records":3},"schedule":"@every 1m","jitter":"5s"}`,
		`{"label":"x","config":null,"schedule":""}`,
		`{"values":{"DEMO_TOKEN":"abc"}}`,
		`{"values":{"A":1}}`, `{"values":[]}`, `{}`, ``, ` `, `[]`, `null`, `{"a":}`, `{"connector_key":"demo"}x`,
		`{"values":{"K":"\ud800"}}`, `{"values":{"K":"a","K":"b"}}`, `{"label":"a","label":"b"}`, "{\"values\":{\"K\":\"\xff\"}}", `{"connector_key":"` + strings.Repeat("a", 100) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []func() any{
			func() any { return &apitypes.ConnectionCreateRequest{} },
			func() any { return &apitypes.ConnectionUpdateRequest{} },
			func() any { return &apitypes.CredentialSetRequest{} },
		}
		for _, newDst := range targets {
			checkDecode(t, data, newDst())
		}
		// The fuzzed bytes as, around and after a credential value.
		for _, body := range [][]byte{
			[]byte(`{"values":{"K":"` + fuzzSecret + string(data) + `"}}`),
			[]byte(`{"values":{"K":` + fuzzSecret + string(data) + `}}`),
			[]byte(`{"values":{"K":"` + fuzzSecret + `"` + string(data)),
			[]byte(`{"values":{"K":` + string(data) + `"` + fuzzSecret + `"}}`),
		} {
			var dst apitypes.CredentialSetRequest
			err := checkDecode(t, body, &dst)
			if err != nil && strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("error quotes the credential value: %v", err)
			}
		}
	})
}

func checkDecode(t *testing.T, data []byte, dst any) error {
	t.Helper()
	err := api.Decode(bytes.NewReader(data), 4<<10, dst)
	if err == nil {
		return nil
	}
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("untyped error %T: %v", err, err)
	}
	if ae.Status != http.StatusBadRequest && ae.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d for %q", ae.Status, data)
	}
	if ae.Body.Code == "" || ae.Body.Message == "" {
		t.Fatalf("empty code or message: %+v", ae.Body)
	}
	return err
}
