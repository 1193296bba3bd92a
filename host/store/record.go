package store

import (
	"encoding/json"
	"time"
)

// Record is one record a connector emitted, identified within its connection
// by stream and key.
type Record struct {
	Stream string
	Key    string
	Data   json.RawMessage // any JSON value
}

// Validate checks the fields.
func (r Record) Validate() error {
	if err := checkText("stream", r.Stream, true); err != nil {
		return err
	}
	if err := checkText("key", r.Key, true); err != nil {
		return err
	}
	if !validJSON(r.Data) {
		return invalid("data", "not valid JSON")
	}
	return nil
}

// StoredRecord is a record as stored: the last version written for its key.
type StoredRecord struct {
	ConnectionID string
	Stream       string
	Key          string
	Data         json.RawMessage
	RunID        string // run that last wrote it
	UpdatedAt    time.Time
}

// Checkpoint is a connection's last committed checkpoint: opaque bytes
// the connector wrote (JSON by the SDK's convention), the run that
// committed them, and when.
type Checkpoint struct {
	ConnectionID string
	State        []byte
	RunID        string
	UpdatedAt    time.Time
}

// RecordQuery selects a page of one connection's records, ordered by stream
// then by the connector's emit order (the order each key was first
// written). Stream "" means all streams.
type RecordQuery struct {
	ConnectionID string
	Stream       string
	Cursor       string // RecordPage.Next of the previous page
	Limit        int    // see PageLimit
}

// RecordPage is one page of records. Next is "" on the last page.
type RecordPage struct {
	Records []StoredRecord
	Next    string
}
