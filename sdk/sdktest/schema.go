package sdktest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// SchemaMismatch reports how a connector's config JSON schema (the
// manifest's ConfigSchema) and its config struct disagree: property names
// only one of them has, or a schema that allows additional properties while
// the SDK decodes config strictly. config is the struct or a pointer to it;
// its fields' json tags name the properties. The result is "" when they
// agree; the error reports a schema that is not a JSON object or a config
// that is not a struct.
//
//	if msg, err := sdktest.SchemaMismatch(myconn.ConfigSchema, myconn.Config{}); err != nil || msg != "" {
//		t.Errorf("config schema: %s %v", msg, err)
//	}
func SchemaMismatch(schema string, config any) (string, error) {
	var s struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties bool                       `json:"additionalProperties"`
	}
	if err := json.Unmarshal([]byte(schema), &s); err != nil {
		return "", fmt.Errorf("sdktest: config schema: %w", err)
	}
	ct := reflect.TypeOf(config)
	for ct != nil && ct.Kind() == reflect.Pointer {
		ct = ct.Elem()
	}
	if ct == nil || ct.Kind() != reflect.Struct {
		return "", fmt.Errorf("sdktest: config is %v, not a struct", reflect.TypeOf(config))
	}
	fromStruct := map[string]bool{}
	for i := range ct.NumField() {
		f := ct.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fromStruct[name] = true
	}
	var problems []string
	if only := missing(fromStruct, s.Properties); len(only) > 0 {
		problems = append(problems, "in the struct, not the schema: "+strings.Join(only, ", "))
	}
	if only := missing(s.Properties, fromStruct); len(only) > 0 {
		problems = append(problems, "in the schema, not the struct: "+strings.Join(only, ", "))
	}
	if s.AdditionalProperties {
		problems = append(problems, "the schema allows additional properties; config is decoded strictly")
	}
	return strings.Join(problems, "; "), nil
}

// missing returns the sorted keys of a that b lacks.
func missing[A, B any](a map[string]A, b map[string]B) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
