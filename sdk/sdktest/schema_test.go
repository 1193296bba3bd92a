package sdktest_test

import (
	"strings"
	"testing"

	"github.com/connhost/connhost/sdk/sdktest"
)

type schemaConfig struct {
	Records int    `json:"records,omitempty"`
	Label   string `json:"label"`
	Skipped string `json:"-"`
	hidden  string // unexported: not a property
}

func TestSchemaMismatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, schema string
		config       any
		want         string // substring of the mismatch; "" = agree
		wantErr      bool
	}{
		{name: "agree", schema: `{"properties":{"records":{},"label":{}},"additionalProperties":false}`, config: schemaConfig{}},
		{name: "pointer config", schema: `{"properties":{"records":{},"label":{}}}`, config: &schemaConfig{}},
		{name: "missing from schema", schema: `{"properties":{"records":{}}}`, config: schemaConfig{}, want: "in the struct, not the schema: label"},
		{name: "missing from struct", schema: `{"properties":{"records":{},"label":{},"extra":{}}}`, config: schemaConfig{}, want: "in the schema, not the struct: extra"},
		{name: "additional properties", schema: `{"properties":{"records":{},"label":{}},"additionalProperties":true}`, config: schemaConfig{}, want: "allows additional properties"},
		{name: "schema not JSON", schema: `{`, config: schemaConfig{}, wantErr: true},
		{name: "config not a struct", schema: `{}`, config: 3, wantErr: true},
		{name: "nil config", schema: `{}`, config: nil, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := sdktest.SchemaMismatch(tc.schema, tc.config)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("mismatch %q, want %q", got, tc.want)
			}
		})
	}
}
