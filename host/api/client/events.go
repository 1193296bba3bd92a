package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/connhost/connhost/host/api/apitypes"
)

// maxEventLine bounds one line of an event stream. Run events are a few
// hundred bytes; a longer line means the stream is not ours.
const maxEventLine = 1 << 20

// EventKindEnd is the kind of a run's last event.
const EventKindEnd = "end"

// RunEvents opens GET /v1/runs/{id}/events, the live event stream of a run.
// Close the stream when done; cancelling ctx closes it too.
func (c *Client) RunEvents(ctx context.Context, runID string) (*EventStream, error) {
	if runID == "" {
		return nil, errEmptyID("run id")
	}
	req, err := c.newRequest(ctx, http.MethodGet, pathOf("v1", "runs", runID, "events"), nil, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return &EventStream{body: resp.Body, r: newSSEReader(resp.Body)}, nil
}

// EventStream reads the events of one run. It is not safe for concurrent
// use, except Close.
type EventStream struct {
	body      io.ReadCloser
	r         *sseReader
	ended     bool
	closeOnce sync.Once
}

// Next returns the next event. After the "end" event it returns io.EOF; a
// stream that closes before "end" returns ErrStreamEnded. Events of kinds
// this client does not know are returned as they are.
func (s *EventStream) Next() (apitypes.RunEvent, error) {
	if s.ended {
		return apitypes.RunEvent{}, io.EOF
	}
	name, data, err := s.r.next()
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return apitypes.RunEvent{}, ErrStreamEnded
	case errors.Is(err, ErrBadResponse):
		return apitypes.RunEvent{}, err
	case err != nil:
		// A read error on an open stream: the connection broke or the
		// caller's context ended.
		return apitypes.RunEvent{}, fmt.Errorf("%w: %w", ErrStreamEnded, err)
	}
	var ev apitypes.RunEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return apitypes.RunEvent{}, fmt.Errorf("%w: run event %q: %w", ErrBadResponse, name, err)
	}
	if ev.Kind == "" {
		ev.Kind = name
	}
	if ev.Kind == EventKindEnd {
		s.ended = true
	}
	return ev, nil
}

// Close closes the stream.
func (s *EventStream) Close() error {
	var err error
	s.closeOnce.Do(func() { err = s.body.Close() })
	return err
}

// sseReader parses a text/event-stream (the WHATWG Server-Sent Events
// format): "field: value" lines, events separated by a blank line, data
// lines joined with "\n", comment lines starting with ':' ignored. Only
// the "event" and "data" fields matter here; "id" and "retry" are
// accepted and ignored.
type sseReader struct {
	r *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4096)}
}

// next returns the next dispatched event: its name ("message" when the
// stream gives none) and data. It returns io.EOF at the end of the stream
// (an incomplete last event is dropped, as the format requires) and an
// error wrapping ErrBadResponse for a line over maxEventLine.
func (p *sseReader) next() (name string, data []byte, err error) {
	var (
		buf     bytes.Buffer
		hasData bool
	)
	for {
		line, err := p.line()
		if err != nil {
			return "", nil, err
		}
		if len(line) == 0 {
			if !hasData {
				name = ""
				continue
			}
			if name == "" {
				name = "message"
			}
			return name, buf.Bytes(), nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if hasData {
				buf.WriteByte('\n')
			}
			buf.Write(value)
			hasData = true
		}
	}
}

// line reads one line without its terminator ("\n" or "\r\n").
func (p *sseReader) line() ([]byte, error) {
	var out []byte
	for {
		chunk, err := p.r.ReadSlice('\n')
		if len(out)+len(chunk) > maxEventLine {
			return nil, fmt.Errorf("%w: event stream line longer than %d bytes", ErrBadResponse, maxEventLine)
		}
		out = append(out, chunk...)
		switch {
		case err == nil:
			out = bytes.TrimSuffix(out[:len(out)-1], []byte("\r"))
			return out, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}
