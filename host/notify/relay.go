package notify

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/connhost/connhost/host/runevents"
	"github.com/hashicorp/go-hclog"
)

// Relay carries live run events between hosts, so `connhost run --follow`,
// the SSE stream and WatchRun work from any host whichever host runs the
// run: this host's events go out on the bus, the others' go into this
// host's hub.
//
// Sending never blocks a run. Status and end events always go out.
// Progress events and record counts are throttled each on its own, per
// run: at most one of a kind every ProgressEvery, the latest wins — one
// held back goes out when its interval is over (so a run's last count is
// never lost to a burst of progress), and before the run's end event.
// When the outgoing queue is full an intermediate event is dropped: a
// follower always gets the end, which it reads back from the store
// anyway.
type Relay struct {
	bus      Bus
	hub      *runevents.Hub
	log      hclog.Logger
	every    time.Duration
	queue    chan runevents.Event
	mu       sync.Mutex
	throttle map[throttleKey]*throttled
	wg       sync.WaitGroup
	stop     chan struct{}
}

// throttleKey is a run and a throttled kind of its events.
type throttleKey struct {
	run  string
	kind runevents.Kind
}

// throttled is what the relay holds for one throttleKey.
type throttled struct {
	sentAt time.Time
	// pending is the latest event held back; timer sends it when the
	// interval since sentAt is over.
	pending *runevents.Event
	timer   *time.Timer
}

// ProgressEvery is the least time between two progress events of one run
// that a Relay sends.
const ProgressEvery = 250 * time.Millisecond

// NewRelay subscribes to the other hosts' events and starts sending this
// host's. Close stops it.
func NewRelay(bus Bus, hub *runevents.Hub, log hclog.Logger) *Relay {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &Relay{bus: bus, hub: hub, log: log, every: ProgressEvery, queue: make(chan runevents.Event, 4096),
		throttle: map[throttleKey]*throttled{}, stop: make(chan struct{})}
	bus.Subscribe(RunEvent, r.receive)
	r.wg.Add(1)
	go r.send()
	return r
}

// Send queues ev for the other hosts.
func (r *Relay) Send(ev runevents.Event) {
	switch ev.Kind {
	case runevents.KindProgress, runevents.KindRecords:
		if r.hold(ev) {
			return
		}
	case runevents.KindEnd:
		// What was held back goes first: the follower's last counts.
		r.mu.Lock()
		for _, kind := range []runevents.Kind{runevents.KindProgress, runevents.KindRecords} {
			k := throttleKey{ev.RunID, kind}
			if t := r.throttle[k]; t != nil {
				if t.timer != nil {
					t.timer.Stop()
				}
				if t.pending != nil {
					r.enqueue(*t.pending)
				}
				delete(r.throttle, k)
			}
		}
		r.mu.Unlock()
	}
	r.enqueue(ev)
}

// hold reports whether ev is held back by its kind's throttle (it is
// then the one sent when the interval is over); false means send it now.
func (r *Relay) hold(ev runevents.Event) bool {
	k := throttleKey{ev.RunID, ev.Kind}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.throttle[k]
	if t == nil {
		t = &throttled{}
		r.throttle[k] = t
	}
	wait := r.every - now.Sub(t.sentAt)
	if t.sentAt.IsZero() || wait <= 0 {
		t.sentAt, t.pending = now, nil
		return false
	}
	t.pending = &ev
	if t.timer == nil {
		t.timer = time.AfterFunc(wait, func() { r.release(k) })
	}
	return true
}

// release sends the event held back for k, if any.
func (r *Relay) release(k throttleKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.throttle[k]
	if t == nil {
		return
	}
	t.timer = nil
	if t.pending != nil {
		r.enqueue(*t.pending)
		t.sentAt, t.pending = time.Now(), nil
	}
}

// enqueue queues ev without blocking: a full queue drops an intermediate
// event, and makes room for a status or end event.
func (r *Relay) enqueue(ev runevents.Event) {
	select {
	case r.queue <- ev:
	default:
		if ev.Kind == runevents.KindEnd || ev.Kind == runevents.KindStatus {
			// Make room: these must go out.
			select {
			case <-r.queue:
			default:
			}
			select {
			case r.queue <- ev:
			default:
			}
		}
	}
}

func (r *Relay) send() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case ev := <-r.queue:
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := r.bus.Publish(ctx, RunEvent, string(b)); err != nil {
				r.log.Debug("relay a run event", "run_id", ev.RunID, "error", err)
			}
			cancel()
		}
	}
}

func (r *Relay) receive(payload string) {
	var ev runevents.Event
	if err := json.Unmarshal([]byte(payload), &ev); err != nil || ev.RunID == "" {
		return
	}
	r.hub.Publish(ev)
}

// Close stops sending.
func (r *Relay) Close() {
	r.mu.Lock()
	for k, t := range r.throttle {
		if t.timer != nil {
			t.timer.Stop()
		}
		delete(r.throttle, k)
	}
	r.mu.Unlock()
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}
