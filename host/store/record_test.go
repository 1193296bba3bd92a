package store_test

import (
	"encoding/json"
	"testing"

	"github.com/connhost/connhost/host/store"
)

// TestRecordCheck: Check validates as Validate does, and Validate then
// trusts the checked Data slice only — another slice in its place is
// parsed again, so a copy of a checked record cannot smuggle bad JSON.
func TestRecordCheck(t *testing.T) {
	t.Parallel()
	good := store.Record{Stream: "s", Key: "k", Data: json.RawMessage(`{"a":1}`)}
	checked, err := good.Check()
	if err != nil || checked.Validate() != nil {
		t.Fatalf("check %v, validate %v", err, checked.Validate())
	}
	for _, tc := range []struct {
		name    string
		r       store.Record
		wantErr bool
	}{
		{"not JSON", store.Record{Stream: "s", Key: "k", Data: json.RawMessage(`{"a":`)}, true},
		{"no key", store.Record{Stream: "s", Data: json.RawMessage(`1`)}, true},
		{"no data", store.Record{Stream: "s", Key: "k"}, true},
		{"checked, other data put in", func() store.Record { r := checked; r.Data = json.RawMessage(`{"a":`); return r }(), true},
		{"checked, data cut short", func() store.Record { r := checked; r.Data = r.Data[:3]; return r }(), true},
		{"checked, key emptied", func() store.Record { r := checked; r.Key = ""; return r }(), true},
		{"checked, as checked", checked, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := tc.r.Validate(); (err != nil) != tc.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tc.wantErr)
			}
		})
	}
	if _, err := (store.Record{Stream: "s", Key: "k", Data: json.RawMessage(`nope`)}).Check(); err == nil {
		t.Error("Check accepted invalid JSON")
	}
}
