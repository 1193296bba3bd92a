package runevents

import (
	"sync"
	"testing"
)

func collect(ch <-chan Event) []Event {
	var out []Event
	for ev := range ch {
		out = append(out, ev)
	}
	return out
}

func TestHub(t *testing.T) {
	t.Parallel()
	tests := map[string]func(t *testing.T){
		"follower sees events in order and the end closes it": func(t *testing.T) {
			var h Hub
			ch, cancel := h.Subscribe("run_1")
			defer cancel()
			h.Publish(Event{RunID: "run_1", Kind: KindStatus, Status: "running"})
			h.Publish(Event{RunID: "run_1", Kind: KindProgress, Done: 5})
			h.Publish(Event{RunID: "run_2", Kind: KindProgress, Done: 99})
			h.Publish(Event{RunID: "run_1", Kind: KindEnd, Status: "succeeded"})
			got := collect(ch)
			if len(got) != 3 || got[0].Status != "running" || got[1].Done != 5 || got[2].Kind != KindEnd {
				t.Fatalf("events = %+v", got)
			}
		},
		"late follower gets the end event": func(t *testing.T) {
			var h Hub
			h.Publish(Event{RunID: "run_1", Kind: KindEnd, Status: "failed", FailureCode: "connector_failed"})
			ch, cancel := h.Subscribe("run_1")
			defer cancel()
			got := collect(ch)
			if len(got) != 1 || got[0].FailureCode != "connector_failed" {
				t.Fatalf("events = %+v", got)
			}
		},
		"slow follower still gets the end event": func(t *testing.T) {
			var h Hub
			ch, cancel := h.Subscribe("run_1")
			defer cancel()
			for i := 0; i < subscriberBuffer*3; i++ {
				h.Publish(Event{RunID: "run_1", Kind: KindProgress, Done: int64(i)})
			}
			h.Publish(Event{RunID: "run_1", Kind: KindEnd, Status: "succeeded"})
			got := collect(ch)
			if len(got) == 0 || got[len(got)-1].Kind != KindEnd {
				t.Fatalf("last event = %+v", got[len(got)-1])
			}
			if len(got) > subscriberBuffer {
				t.Fatalf("got %d events, buffer is %d", len(got), subscriberBuffer)
			}
		},
		"cancel closes and is idempotent": func(t *testing.T) {
			var h Hub
			ch, cancel := h.Subscribe("run_1")
			cancel()
			cancel()
			if _, ok := <-ch; ok {
				t.Fatal("channel still open after cancel")
			}
			h.Publish(Event{RunID: "run_1", Kind: KindEnd}) // no panic on a closed follower
		},
		"ended memory is bounded": func(t *testing.T) {
			var h Hub
			for i := 0; i < maxEnded+10; i++ {
				h.Publish(Event{RunID: string(rune('a'+i%26)) + string(rune(i)), Kind: KindEnd})
			}
			if len(h.ended) > maxEnded || len(h.order) > maxEnded {
				t.Fatalf("ended=%d order=%d", len(h.ended), len(h.order))
			}
		},
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { t.Parallel(); fn(t) })
	}
}

func TestHubConcurrent(t *testing.T) {
	t.Parallel()
	var h Hub
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		ch, cancel := h.Subscribe("run_c")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			evs := collect(ch)
			if len(evs) == 0 || evs[len(evs)-1].Kind != KindEnd {
				t.Errorf("follower missed the end: %d events", len(evs))
			}
		}()
	}
	for i := 0; i < 1000; i++ {
		h.Publish(Event{RunID: "run_c", Kind: KindProgress, Done: int64(i)})
	}
	h.Publish(Event{RunID: "run_c", Kind: KindEnd})
	wg.Wait()
}
