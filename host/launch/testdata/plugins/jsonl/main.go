// Command jsonl is the comparison point of the launcher's throughput
// benchmark: a Singer/Airbyte-style connector that writes its records as
// JSON lines on stdout for the host to parse. It emits the same events as
// the demo connector ({"id","seq","connection_id"} on stream "events") and
// a STATE message after every 1,000th record, as the demo checkpoints.
//
// Usage: jsonl N
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
)

type event struct {
	ID           int64  `json:"id"`
	Seq          int64  `json:"seq"`
	ConnectionID string `json:"connection_id"`
}

type message struct {
	Type   string `json:"type"`
	Stream string `json:"stream,omitempty"`
	Key    string `json:"key,omitempty"`
	Record any    `json:"record,omitempty"`
	Value  any    `json:"value,omitempty"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: jsonl N")
		os.Exit(2)
	}
	n, err := strconv.ParseInt(os.Args[1], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	enc := json.NewEncoder(w)
	for i := range n {
		m := message{Type: "RECORD", Stream: "events", Key: strconv.FormatInt(i, 10), Record: event{ID: i, Seq: i, ConnectionID: "conn-bench"}}
		if err := enc.Encode(m); err != nil {
			os.Exit(1)
		}
		if (i+1)%1000 == 0 || i == n-1 {
			if err := enc.Encode(message{Type: "STATE", Value: map[string]int64{"next": i + 1}}); err != nil {
				os.Exit(1)
			}
		}
	}
	if err := w.Flush(); err != nil {
		os.Exit(1)
	}
}
