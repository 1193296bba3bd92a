package client

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type sseEvent struct {
	Name string
	Data string
}

func readAll(s string) ([]sseEvent, error) {
	p := newSSEReader(strings.NewReader(s))
	var out []sseEvent
	for {
		name, data, err := p.next()
		if err != nil {
			return out, err
		}
		out = append(out, sseEvent{name, string(data)})
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{name: "empty", in: ""},
		{name: "one event", in: "event: a\ndata: 1\n\n", want: []sseEvent{{"a", "1"}}},
		{name: "default name", in: "data: x\n\n", want: []sseEvent{{"message", "x"}}},
		{name: "multi-line data", in: "data: a\ndata: b\n\n", want: []sseEvent{{"message", "a\nb"}}},
		{name: "crlf", in: "event: e\r\ndata: d\r\n\r\n", want: []sseEvent{{"e", "d"}}},
		{name: "no space after colon", in: "event:e\ndata:d\n\n", want: []sseEvent{{"e", "d"}}},
		{name: "comments and unknown fields", in: ": ping\nid: 7\nfoo: bar\ndata: z\n\n", want: []sseEvent{{"message", "z"}}},
		{name: "event without data is not dispatched", in: "event: a\n\ndata: b\n\n", want: []sseEvent{{"message", "b"}}},
		{name: "unterminated last event dropped", in: "data: a\n\ndata: b\n", want: []sseEvent{{"message", "a"}}},
		{name: "empty data line", in: "data\n\n", want: []sseEvent{{"message", ""}}},
		{name: "colon in value kept", in: "data: {\"a\":\"b: c\"}\n\n", want: []sseEvent{{"message", `{"a":"b: c"}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readAll(tt.in)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("err = %v, want io.EOF", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzSSEReader: the event-stream parser reads bytes from the network; it
// must not panic, must end, and must never return more data than it read.
func FuzzSSEReader(f *testing.F) {
	f.Add("event: status\ndata: {\"kind\":\"status\"}\n\n")
	f.Add("data: a\r\ndata: b\r\n\r\n: c\n")
	f.Add(":\n\n\n\ndata\n\nevent\n")
	f.Fuzz(func(t *testing.T, in string) {
		p := newSSEReader(strings.NewReader(in))
		total := 0
		for range len(in) + 1 {
			name, data, err := p.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrBadResponse) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			total += len(name) + len(data)
			if total > 2*len(in) {
				t.Fatalf("read %d bytes of events from %d bytes of input", total, len(in))
			}
		}
		t.Fatalf("more events than input bytes")
	})
}
