// Package configschema checks a connection's config against the JSON
// Schema its connector publishes (manifest config_schema) before the
// config is stored, so a config the connector cannot run is a typed 400
// at create and update — not a failure at every scheduled run.
//
// Schemas are compiled with github.com/santhosh-tekuri/jsonschema/v6
// (drafts 4 to 2020-12; a schema without $schema is read as 2020-12). A
// connector's schema may only refer to itself: every external $ref is
// refused at compile time, so a manifest can make the host read no file
// and reach no network.
package configschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Schema is a compiled config schema.
type Schema struct {
	s *jsonschema.Schema
	// doc is the schema as parsed, to read a failing subschema's
	// description.
	doc any
}

// ErrInvalid is wrapped by every *Error.
var ErrInvalid = errors.New("configschema: config does not match the connector's schema")

// Error is a config that does not match its schema: where (a JSON pointer
// into the config, "" for the whole config) and why.
type Error struct {
	Pointer string
	Reason  string
}

func (e *Error) Error() string {
	where := e.Pointer
	if where == "" {
		where = "/"
	}
	return fmt.Sprintf("config %s: %s", where, e.Reason)
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// resource is the URL the schema is compiled under.
const resource = "connhost:config-schema.json"

// Compile compiles a connector's config schema. An empty doc is no schema:
// Compile returns nil, and a nil *Schema accepts every config.
func Compile(doc string) (*Schema, error) {
	if strings.TrimSpace(doc) == "" {
		return nil, nil
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("configschema: not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(resource, v); err != nil {
		return nil, fmt.Errorf("configschema: %w", err)
	}
	s, err := c.Compile(resource)
	if err != nil {
		return nil, fmt.Errorf("configschema: %w", err)
	}
	return &Schema{s: s, doc: v}, nil
}

// refuseLoader loads nothing: a schema's $ref must stay inside it.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q: a config schema may refer only to itself", url)
}

// Validate checks config (a JSON object; empty means {}) and returns an
// *Error naming the first offending value by its JSON pointer.
func (s *Schema) Validate(config json.RawMessage) error {
	if s == nil {
		return nil
	}
	if len(bytes.TrimSpace(config)) == 0 {
		config = json.RawMessage("{}")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(config))
	if err != nil {
		return &Error{Reason: "is not valid JSON"}
	}
	err = s.s.Validate(v)
	var ve *jsonschema.ValidationError
	if err == nil {
		return nil
	}
	if !errors.As(err, &ve) {
		return &Error{Reason: err.Error()}
	}
	leaf := firstLeaf(ve)
	loc := leaf.InstanceLocation
	// A field the schema does not allow, or one it requires, is named by
	// its own pointer, not its object's.
	switch k := leaf.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		if len(k.Properties) > 0 {
			loc = append(slices.Clone(loc), k.Properties[0])
		}
	case *kind.Required:
		if len(k.Missing) > 0 {
			loc = append(slices.Clone(loc), k.Missing[0])
		}
	}
	return &Error{Pointer: pointer(loc), Reason: s.reason(leaf)}
}

// reason words a failure for an operator. Where the schema can only say
// "'not' failed" or quote a regular expression, the failing subschema's
// description, when it has one, says what was expected instead.
func (s *Schema) reason(e *jsonschema.ValidationError) string {
	desc := s.description(e.SchemaURL)
	switch k := e.ErrorKind.(type) {
	case *kind.Not, *kind.FalseSchema:
		if desc != "" {
			return desc
		}
	case *kind.Pattern:
		if desc != "" {
			return bounded(fmt.Sprintf("%q is not accepted: %s", k.Got, desc))
		}
	}
	return reason(e)
}

// description returns the "description" of the subschema schemaURL
// names (the one whose keyword failed: …#/properties/host), or "".
func (s *Schema) description(schemaURL string) string {
	_, frag, ok := strings.Cut(schemaURL, "#")
	if !ok {
		return ""
	}
	node := s.doc
	for _, t := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if t == "" {
			continue
		}
		t = strings.NewReplacer("~1", "/", "~0", "~").Replace(t)
		switch n := node.(type) {
		case map[string]any:
			node = n[t]
		case []any:
			i := -1
			if _, err := fmt.Sscanf(t, "%d", &i); err != nil || i < 0 || i >= len(n) {
				return ""
			}
			node = n[i]
		default:
			return ""
		}
	}
	m, _ := node.(map[string]any)
	d, _ := m["description"].(string)
	return d
}

// firstLeaf descends to the first cause that has none: the most precise
// complaint (the others are "does not validate with …" wrappers).
func firstLeaf(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	for len(e.Causes) > 0 {
		e = e.Causes[0]
	}
	return e
}

func reason(e *jsonschema.ValidationError) string {
	msg := e.Error()
	// The message starts with the location; the Error carries it apart.
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "at '") {
		msg = msg[i+2:]
	}
	return bounded(msg)
}

// bounded cuts a reason at 300 bytes, on a character boundary.
func bounded(msg string) string {
	if len(msg) > 300 {
		i := 300
		for i > 0 && !utf8.RuneStart(msg[i]) {
			i--
		}
		msg = msg[:i] + "…"
	}
	return msg
}

// pointer renders a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
