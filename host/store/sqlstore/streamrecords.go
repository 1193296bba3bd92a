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
	var raw []byte
	switch v := src.(type) {
	case nil:
		*c.m = nil
		return nil
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		return fmt.Errorf("stream records: unexpected column type %T", src)
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
