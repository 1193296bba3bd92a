package configschema_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/configschema"
	"github.com/connhost/connhost/plugins/demo/demo"
)

// The demo's own schema refuses the configs that today are stored and
// fail at every run, each naming the offending field's JSON pointer.
func TestValidateAgainstTheDemoSchema(t *testing.T) {
	t.Parallel()
	s, err := configschema.Compile(demo.ConfigSchema)
	if err != nil {
		t.Fatal(err)
	}
	// The demo requires nothing; a schema that does, for the one case.
	required, err := configschema.Compile(`{"type": "object", "required": ["name"]}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		config  string
		pointer string // "-": valid
		says    string
	}{
		"valid":              {`{"records": 5}`, "-", ""},
		"empty is {}":        {``, "-", ""},
		"a misspelled field": {`{"recrods": 5}`, "/recrods", "recrods"},
		"a missing field":    {`{}`, "/name", "missing"},
		"negative":           {`{"records": -1}`, "/records", "minimum"},
		"a string number":    {`{"records": "5"}`, "/records", "integer"},
		"too large":          {`{"records": 1e30}`, "/records", "maximum"},
		"deep in an array":   {`{"echo_env": ["OK", "not a name"]}`, "/echo_env/1", "pattern"},
		"not an object":      {`[1]`, "", "object"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			schema := s
			if name == "a missing field" {
				schema = required
			}
			err := schema.Validate(json.RawMessage(tc.config))
			if tc.pointer == "-" {
				if err != nil {
					t.Fatalf("a valid config refused: %v", err)
				}
				return
			}
			var ce *configschema.Error
			if !errors.As(err, &ce) || !errors.Is(err, configschema.ErrInvalid) {
				t.Fatalf("Validate = %v, want a *configschema.Error", err)
			}
			if ce.Pointer != tc.pointer || !strings.Contains(ce.Reason, tc.says) {
				t.Fatalf("got pointer %q reason %q, want %q containing %q", ce.Pointer, ce.Reason, tc.pointer, tc.says)
			}
		})
	}
}

// Where the schema can only say "'not' failed" or quote a regular
// expression, the failing subschema's description says what it expected;
// without one, the library's own words stay.
func TestReasonUsesTheDescription(t *testing.T) {
	t.Parallel()
	s, err := configschema.Compile(`{
	  "type": "object",
	  "properties": {
	    "host": {"type": "string", "description": "a DNS name, without a port", "pattern": "^[a-z.]+$"},
	    "bare": {"type": "string", "pattern": "^[a-z]+$"},
	    "plain": {"type": "boolean"},
	    "tls": {"type": "string"}
	  },
	  "allOf": [{"if": {"required": ["plain"]}, "then": {"properties": {"tls": {"description": "plain cannot be combined with tls", "not": {}}}}}]
	}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		config, pointer, reason string
	}{
		"pattern with a description": {`{"host": "a.b:993"}`, "/host", `"a.b:993" is not accepted: a DNS name, without a port`},
		"not with a description":     {`{"plain": true, "tls": "x"}`, "/tls", "plain cannot be combined with tls"},
		"pattern without":            {`{"bare": "A"}`, "/bare", "does not match pattern"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ce *configschema.Error
			if err := s.Validate(json.RawMessage(tc.config)); !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a *configschema.Error", err)
			}
			if ce.Pointer != tc.pointer || !strings.Contains(ce.Reason, tc.reason) {
				t.Errorf("got %q %q, want %q containing %q", ce.Pointer, ce.Reason, tc.pointer, tc.reason)
			}
		})
	}
}

// A schema may refer only to itself: an external $ref — a file, a URL —
// is refused when the connector is catalogued, and nothing is read.
func TestCompileRefusesExternalRefs(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"a file":    `{"$ref": "file:///etc/passwd"}`,
		"a URL":     `{"properties": {"a": {"$ref": "https://example.com/s.json"}}}`,
		"not JSON":  `{"type":`,
		"bad draft": `{"type": 12}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := configschema.Compile(doc); err == nil {
				t.Fatal("compiled")
			}
		})
	}
	// A local $ref is fine; no schema accepts everything.
	s, err := configschema.Compile(`{"$defs": {"n": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/n"}}}`)
	if err != nil || s.Validate(json.RawMessage(`{"n": "x"}`)) == nil {
		t.Fatalf("local $ref: %v", err)
	}
	var none *configschema.Schema
	if err := none.Validate(json.RawMessage(`{"anything": true}`)); err != nil {
		t.Fatal(err)
	}
}
