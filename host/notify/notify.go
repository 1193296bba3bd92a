// Package notify carries the cluster's control messages between the hosts
// of a shared store: new work in the dispatch queue, a connection whose
// schedule or state changed, a run to cancel, a run's live events, a
// rotated keyset. A message reaches every OTHER host within milliseconds;
// the publishing host acts on its own change directly.
//
// Delivery is at most once: a host whose listening connection drops
// misses what was sent meanwhile, so every consumer also has a way to
// catch up — OnReconnect handlers run after each (re)connection, and the
// dispatch queue and run rows are durable in the store.
//
// None is the bus of a single host (the SQLite store): there is nobody
// to tell. Postgres is LISTEN/NOTIFY on the shared database.
package notify

import (
	"context"
	"encoding/json"
	"errors"
)

// Topic names a kind of message; it is the PostgreSQL channel name.
type Topic string

// The topics.
const (
	// Dispatch: occurrences became due; claim. Payload: empty.
	Dispatch Topic = "connhost_dispatch"
	// Connection: a connection's schedule, state or credential changed;
	// re-evaluate it. Payload: the connection id.
	Connection Topic = "connhost_connection"
	// Cancel: cancel a run if it is yours. Payload: the run id.
	Cancel Topic = "connhost_cancel"
	// RunEvent: a run's live event, for followers on other hosts.
	// Payload: a JSON runevents.Event.
	RunEvent Topic = "connhost_run_event"
	// Keyset: the keyset file was rotated; reload it. Payload: empty.
	Keyset Topic = "connhost_keyset"
)

// Topics lists every topic.
var Topics = []Topic{Dispatch, Connection, Cancel, RunEvent, Keyset}

// MaxPayload bounds a payload (PostgreSQL's NOTIFY limit is 8000 bytes,
// less the envelope).
const MaxPayload = 7000

// ErrPayloadTooLarge is returned for a payload over MaxPayload.
var ErrPayloadTooLarge = errors.New("notify: payload too large")

// Bus sends messages to the other hosts and receives theirs.
type Bus interface {
	// Publish sends payload on topic to every other host.
	Publish(ctx context.Context, topic Topic, payload string) error
	// Subscribe calls fn for every message on topic from another host.
	// fn runs on the bus's receiving goroutine: it must not block.
	Subscribe(topic Topic, fn func(payload string))
	// OnReconnect calls fn after every (re)connection of the receiving
	// side, so the host catches up on what it may have missed.
	OnReconnect(fn func())
}

// None is the bus of a host alone on its store.
type None struct{}

// Publish does nothing: there is no other host.
func (None) Publish(context.Context, Topic, string) error { return nil }

// Subscribe does nothing: no message ever arrives.
func (None) Subscribe(Topic, func(string)) {}

// OnReconnect does nothing: there is no connection to lose.
func (None) OnReconnect(func()) {}

// envelope is what travels: the payload and the host that sent it, so a
// host skips its own messages.
type envelope struct {
	Origin  string `json:"o"`
	Payload string `json:"p"`
}

func encode(origin, payload string) (string, error) {
	if len(payload) > MaxPayload {
		return "", ErrPayloadTooLarge
	}
	b, err := json.Marshal(envelope{Origin: origin, Payload: payload})
	return string(b), err
}

func decode(msg string) (envelope, error) {
	var e envelope
	err := json.Unmarshal([]byte(msg), &e)
	return e, err
}

var _ Bus = None{}
