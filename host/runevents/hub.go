// Package runevents fans live run events out to followers (the HTTP event
// stream, the gRPC WatchRun, `connhost run --follow`).
//
// Publishing never blocks the run: a follower that cannot keep up loses
// intermediate progress events but always receives the final event, which
// carries the run's terminal status. Events never hold record data or
// secrets — only counts, names and statuses.
package runevents

import (
	"sync"
	"time"
)

// Kind is the type of an event.
type Kind string

// Event kinds.
const (
	KindStatus   Kind = "status"   // the run changed status (queued, running)
	KindProgress Kind = "progress" // the connector reported progress
	KindRecords  Kind = "records"  // records were committed
	KindEnd      Kind = "end"      // the run ended; Status is terminal
)

// Event is one live event of a run.
type Event struct {
	RunID        string    `json:"run_id"`
	ConnectionID string    `json:"connection_id"`
	Kind         Kind      `json:"kind"`
	At           time.Time `json:"at"`
	Status       string    `json:"status,omitempty"`
	FailureCode  string    `json:"failure_code,omitempty"`
	Stream       string    `json:"stream,omitempty"`
	Done         int64     `json:"done,omitempty"`
	Total        int64     `json:"total,omitempty"`
	Message      string    `json:"message,omitempty"`
	// Records is the run's committed record count so far (KindProgress,
	// KindRecords, KindEnd).
	Records int64 `json:"records,omitempty"`
	// Received is how many records the host has received from the
	// connector so far, committed or still pending (KindProgress,
	// KindRecords): Received - Records are being committed or wait in the
	// run's receive buffer.
	Received int64 `json:"received,omitempty"`
	// StreamRecords is Records by stream name (KindRecords); a copy the
	// publisher no longer writes.
	StreamRecords map[string]int64 `json:"stream_records,omitempty"`
}

// subscriberBuffer bounds each follower's queue.
const subscriberBuffer = 256

// Hub is an in-memory publish/subscribe of run events keyed by run id.
// The zero value is ready to use.
type Hub struct {
	mu   sync.Mutex
	subs map[string]map[*sub]struct{}
	// ended remembers recently ended runs so a follower that subscribes
	// just after the end still gets the final event.
	ended map[string]Event
	order []string
}

type sub struct {
	ch     chan Event
	closed bool
}

// maxEnded bounds the memory of ended runs.
const maxEnded = 1024

// Subscribe follows runID. The channel closes after the end event or when
// cancel is called. If the run already ended (recently), the channel
// yields its end event and closes.
func (h *Hub) Subscribe(runID string) (<-chan Event, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &sub{ch: make(chan Event, subscriberBuffer)}
	if ev, ok := h.ended[runID]; ok {
		s.ch <- ev
		close(s.ch)
		return s.ch, func() {}
	}
	if h.subs == nil {
		h.subs = map[string]map[*sub]struct{}{}
	}
	if h.subs[runID] == nil {
		h.subs[runID] = map[*sub]struct{}{}
	}
	h.subs[runID][s] = struct{}{}
	return s.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[runID][s]; ok {
			delete(h.subs[runID], s)
			if len(h.subs[runID]) == 0 {
				delete(h.subs, runID)
			}
			s.close()
		}
	}
}

// Publish delivers ev to runID's followers without blocking. An end event
// closes every follower's channel.
func (h *Hub) Publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	subs := h.subs[ev.RunID]
	if ev.Kind == KindEnd {
		for s := range subs {
			// Make room for the end event: it must always arrive.
			select {
			case s.ch <- ev:
			default:
				select {
				case <-s.ch:
				default:
				}
				s.ch <- ev
			}
			s.close()
		}
		delete(h.subs, ev.RunID)
		h.remember(ev)
		return
	}
	for s := range subs {
		select {
		case s.ch <- ev:
		default: // slow follower: drop this intermediate event
		}
	}
}

func (h *Hub) remember(ev Event) {
	if h.ended == nil {
		h.ended = map[string]Event{}
	}
	h.ended[ev.RunID] = ev
	h.order = append(h.order, ev.RunID)
	if len(h.order) > maxEnded {
		delete(h.ended, h.order[0])
		h.order = h.order[1:]
	}
}

func (s *sub) close() {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}
