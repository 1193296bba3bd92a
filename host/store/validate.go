package store

import (
	"bytes"
	"encoding/json"
	"regexp"
	"unicode/utf8"
)

// Paging bounds shared by every List operation that takes a Limit.
const (
	// DefaultPageSize is used when a Limit is zero or negative.
	DefaultPageSize = 100
	// MaxPageSize caps a Limit; larger values are clamped.
	MaxPageSize = 1000
)

// PageLimit returns the effective page size for a requested limit.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	default:
		return limit
	}
}

// maxText bounds free-text and identifier fields so a caller cannot make the
// store hold unbounded strings through a surface that forgot a limit.
const maxText = 4096

var (
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	sha256RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func checkText(field, v string, required bool) error {
	switch {
	case required && v == "":
		return invalid(field, "required")
	case len(v) > maxText:
		return invalid(field, "longer than %d bytes", maxText)
	case !utf8.ValidString(v):
		return invalid(field, "not valid UTF-8")
	}
	return nil
}

// checkJSONObject requires raw to be one JSON object. Empty raw is allowed
// when optional (the store then stores "{}").
func checkJSONObject(field string, raw json.RawMessage, optional bool) error {
	if len(raw) == 0 {
		if optional {
			return nil
		}
		return invalid(field, "required")
	}
	if !json.Valid(raw) {
		return invalid(field, "not valid JSON")
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return invalid(field, "not a JSON object")
	}
	return nil
}
