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
// Sending never blocks a run. Status and end events always go out;
// progress and record counts of one run go out at most every
// ProgressEvery (the latest wins), and when the outgoing queue is full
// an intermediate event is dropped — a follower always gets the end,
// which it reads back from the store anyway.
type Relay struct {
	bus    Bus
	hub    *runevents.Hub
	log    hclog.Logger
	every  time.Duration
	queue  chan runevents.Event
	mu     sync.Mutex
	sentAt map[string]time.Time
	wg     sync.WaitGroup
	stop   chan struct{}
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
		sentAt: map[string]time.Time{}, stop: make(chan struct{})}
	bus.Subscribe(RunEvent, r.receive)
	r.wg.Add(1)
	go r.send()
	return r
}

// Send queues ev for the other hosts.
func (r *Relay) Send(ev runevents.Event) {
	if ev.Kind == runevents.KindProgress || ev.Kind == runevents.KindRecords {
		r.mu.Lock()
		last, ok := r.sentAt[ev.RunID]
		if ok && time.Since(last) < r.every {
			r.mu.Unlock()
			return
		}
		r.sentAt[ev.RunID] = time.Now()
		r.mu.Unlock()
	}
	if ev.Kind == runevents.KindEnd {
		r.mu.Lock()
		delete(r.sentAt, ev.RunID)
		r.mu.Unlock()
	}
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
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}
