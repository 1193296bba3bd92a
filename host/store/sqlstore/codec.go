package sqlstore

import (
	"bytes"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/connhost/connhost/host/store"
)

// TimeLayout is how times are stored as text: RFC 3339 in UTC with exactly
// nine fractional digits, so every value has the same width and text order
// is time order.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// FormatTime renders t in TimeLayout, in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// ParseTime parses a time stored as text (any RFC 3339 form) into UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// bindTime returns the bind value of a non-zero time.
func (s *Store) bindTime(t time.Time) any {
	if s.d.TimeAsText {
		return FormatTime(t)
	}
	return t.UTC()
}

// truncZero truncates a non-zero time to the dialect's precision, in UTC.
func (s *Store) truncZero(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return s.trunc(t)
}

// bindNullTime binds the zero time as NULL.
func (s *Store) bindNullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.bindTime(t)
}

// timeCol scans a time column stored as text or as a native timestamp;
// NULL scans as the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case string:
		t, err := ParseTime(v)
		if err != nil {
			return fmt.Errorf("sqlstore: scan time: %w", err)
		}
		*c.t = t
	case []byte:
		return c.Scan(string(v))
	default:
		return fmt.Errorf("sqlstore: scan time: unsupported type %T", src)
	}
	return nil
}

var _ sql.Scanner = timeCol{}

// bindJSON binds a JSON document as text, which both a TEXT and a jsonb
// column accept. Empty raw binds def.
func bindJSON(raw json.RawMessage, def string) string {
	if len(raw) == 0 {
		return def
	}
	return string(raw)
}

// jsonEqual reports whether a and b are the same JSON value, so a backend
// that normalizes JSON (jsonb) does not look like a change.
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// errCursor reports a cursor this store did not issue; errOtherCursor one
// it issued for another list.
var (
	errCursor      = &store.InvalidError{Field: "cursor", Reason: "malformed: use the next value of a previous page"}
	errOtherCursor = &store.InvalidError{Field: "cursor", Reason: "is the cursor of another list: use the next value of a previous page of this one"}
)

// encodeCursor makes an opaque page cursor of a list (its kind: "runs",
// "records", …) from the sort key of the last row of a page.
func encodeCursor(kind string, parts ...string) string {
	b, _ := json.Marshal(append([]string{kind}, parts...)) // a []string always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reverses encodeCursor, requiring a cursor of kind with n
// parts.
func decodeCursor(cursor, kind string, n int) ([]string, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	var parts []string
	if err == nil {
		err = json.Unmarshal(b, &parts)
	}
	if err != nil || len(parts) == 0 {
		return nil, errCursor
	}
	if parts[0] != kind {
		return nil, errOtherCursor
	}
	if len(parts) != n+1 {
		return nil, errCursor
	}
	return parts[1:], nil
}

// timeCursor decodes a (time, id) cursor of kind.
func timeCursor(cursor, kind string) (time.Time, string, error) {
	parts, err := decodeCursor(cursor, kind, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	t, err := ParseTime(parts[0])
	if err != nil {
		return time.Time{}, "", errCursor
	}
	return t, parts[1], nil
}
