package sqlstore

import (
	"encoding/json"
	"fmt"
)

// encodeStreamRecords renders a run's counts by stream for the
// stream_records column: a JSON object; nil (or empty) is NULL, "no count
// kept".
func encodeStreamRecords(counts map[string]int64) (any, error) {
	if len(counts) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(counts)
	if err != nil {
		return nil, fmt.Errorf("encode stream records: %w", err)
	}
	return string(b), nil
}

// streamRecordsCol scans the stream_records column; NULL scans as nil.
type streamRecordsCol struct{ m *map[string]int64 }

func (c streamRecordsCol) Scan(src any) error {
	raw, err := jsonColumn(src, "stream records")
	if err != nil || raw == nil {
		*c.m = nil
		return err
	}
	var m map[string]int64
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("stream records: %w", err)
	}
	if len(m) == 0 {
		m = nil
	}
	*c.m = m
	return nil
}

// jsonColumn returns the bytes of a JSON text column as the driver gave
// them (string or []byte); nil for NULL. what names the column in errors.
func jsonColumn(src any, what string) ([]byte, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	default:
		return nil, fmt.Errorf("%s: unexpected column type %T", what, src)
	}
}
