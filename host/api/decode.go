package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/store"
)

// Decode reads one JSON object from body into dst, at most limit bytes.
// Unknown fields, trailing data, an empty body and a body over the limit
// are errors. Every error is an *Error whose message names a byte offset
// or a field and never quotes the input, since the input may be a secret.
func Decode(body io.Reader, limit int64, dst any) error {
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		return invalid("", "request body could not be read")
	}
	// The body may hold secrets (a credential): wipe the buffer once
	// decoded.
	defer clear(data)
	if int64(len(data)) > limit {
		return tooLarge(limit)
	}
	return decodeBytes(data, dst)
}

func tooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge,
		Body: errBody(apitypes.CodePayloadTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit), "")}
}

func decodeBytes(data []byte, dst any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return invalid("", "request body is required")
	}
	if trimmed[0] != '{' {
		return invalid("", "request body must be a JSON object")
	}
	if !utf8.Valid(trimmed) {
		return invalid("", "request body is not valid UTF-8")
	}
	if path, dup := duplicateKey(trimmed); dup {
		where := "the request body"
		if path != "" {
			where = path
		}
		return invalid(path, "%s has the same key twice", where)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	// A number in free-form JSON (a connection's config) stays as
	// written: an int64 beyond 2^53 must not be rounded through a float64.
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return invalid("", "request body has data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("", "request body has data after the JSON object")
	}
	return nil
}

// duplicateKey reports an object of data with a key given twice (Go's
// decoder keeps the last silently, so what is stored would differ from
// what a reader of the body sees), and the path of that object: the keys
// of the objects above it, never the duplicated key, which may be a
// secret pasted as a name. Malformed JSON is left to the decoder.
func duplicateKey(data []byte) (string, bool) {
	type frame struct {
		keys   map[string]bool // nil for an array
		key    string          // the key whose value is being read
		index  int             // how many elements an array has begun
		expect bool            // an object expects a key next
	}
	var stack []*frame
	value := func() { // a value of the innermost object or array begins
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.keys != nil {
			f.expect = true
		} else {
			f.index++
		}
	}
	path := func() string {
		var b strings.Builder
		for _, f := range stack[:len(stack)-1] {
			if f.keys == nil {
				fmt.Fprintf(&b, "[%d]", f.index-1)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
		return b.String()
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			value()
			f := &frame{}
			if tok == json.Delim('{') {
				f.keys, f.expect = map[string]bool{}, true
			}
			stack = append(stack, f)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "", false
			}
			continue
		}
		if f := stack[len(stack)-1]; f.keys != nil && f.expect {
			k, _ := tok.(string)
			if f.keys[k] {
				return path(), true
			}
			f.keys[k], f.key, f.expect = true, k, false
			continue
		}
		value()
	}
}

// jsonError turns a decoding error into an *Error without quoting input.
func jsonError(err error) *Error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return invalid("", "invalid JSON at byte offset %d", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return invalid("", "request body must be a JSON object")
		}
		return invalid(field, "%s must be %s", field, jsonKind(typ.Type.Kind().String()))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return invalid("", "request body ends before the JSON object does")
	}
	// DisallowUnknownFields: `json: unknown field "name"`. The name is a
	// key the caller chose, not a value; still, cap and quote it.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		if len(name) > 64 || !utf8.ValidString(name) {
			name = name[:min(len(name), 64)]
			name = strings.ToValidUTF8(name, "")
		}
		return invalid(name, "unknown field %q", name)
	}
	return invalid("", "request body is not valid JSON")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "ptr":
		return "an object"
	}
	if strings.HasPrefix(k, "int") || strings.HasPrefix(k, "uint") || strings.HasPrefix(k, "float") {
		return "a number"
	}
	return "of another type"
}

// decode reads r's body into dst under limit.
func decode(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	// MaxBytesReader also tells the server to close the connection after
	// an oversize body instead of draining it.
	return Decode(http.MaxBytesReader(w, r.Body, limit), limit, dst)
}

// marshal is json.Marshal without HTML escaping: a label or a record
// holding "> fortune" is sent as written, not "\u003e fortune". The API
// serves application/json with nosniff, never HTML.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes v with status. Encoding apitypes values cannot fail.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"response encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// queryLimit parses the "limit" parameter: absent is the store's default,
// above store.MaxPageSize is clamped, anything else not positive is 400.
func queryLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, invalid("limit", "limit must be a positive integer")
	}
	return store.PageLimit(n), nil
}

// knownParams rejects query parameters a route does not take, so a typo
// ("?conection=") is an error instead of an unfiltered list.
func knownParams(q url.Values, allowed ...string) error {
	for k := range q {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			name := k
			if len(name) > 64 {
				name = name[:64]
			}
			return invalid(strings.ToValidUTF8(name, ""), "unknown query parameter %q", strings.ToValidUTF8(name, ""))
		}
	}
	return nil
}
