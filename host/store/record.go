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

	// checked is the Data that Check found valid JSON (its first byte and
	// length): Validate does not parse that Data again.
	checked    *byte
	checkedLen int
}

// Validate checks the fields. Data is parsed unless it is the very slice
// Check accepted (see Check).
func (r Record) Validate() error {
	if err := checkText("stream", r.Stream, true); err != nil {
		return err
	}
	if err := checkText("key", r.Key, true); err != nil {
		return err
	}
	if r.dataChecked() {
		return nil
	}
	if !validJSON(r.Data) {
		return invalid("data", "not valid JSON")
	}
	return nil
}

// Check validates r as Validate does and returns it marked as checked, so
// a caller that validates records as they arrive (the runner, on its
// receive goroutine) spares the commit path a second parse of each one.
// The mark covers Data only as the slice Check saw: a record whose Data is
// replaced by another slice (another start or length) is parsed again; one
// whose bytes are changed in place is not, so the caller must not change
// them.
func (r Record) Check() (Record, error) {
	r.checked, r.checkedLen = nil, 0
	if err := r.Validate(); err != nil {
		return r, err
	}
	r.checked, r.checkedLen = &r.Data[0], len(r.Data)
	return r, nil
}

func (r Record) dataChecked() bool {
	return r.checked != nil && len(r.Data) == r.checkedLen && &r.Data[0] == r.checked
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

// CountStreams adds each of recs to its stream's count in counts, making
// counts when it is nil and recs are not empty, and returns it.
func CountStreams(counts map[string]int64, recs []Record) map[string]int64 {
	for _, r := range recs {
		if counts == nil {
			counts = make(map[string]int64)
		}
		counts[r.Stream]++
	}
	return counts
}
