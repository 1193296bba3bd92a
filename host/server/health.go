package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/health"
	"github.com/connhost/connhost/host/runner"
	"github.com/connhost/connhost/host/store"
)

// healthObserver is the runner's observer that also pokes the health
// monitor when a run ends (the run's FinishRun changed the streak).
type healthObserver struct {
	runner.Observer
	poke func()
}

func (o healthObserver) RunEnded(trigger string, status store.RunStatus, code failure.Code, d time.Duration) {
	o.Observer.RunEnded(trigger, status, code, d)
	o.poke()
}

// pokeOnWrite pokes the health monitor after every request that may have
// changed something (any method but GET, HEAD and OPTIONS: connection
// and credential changes, rescans, keyset changes, gRPC calls). The
// monitor debounces, so a burst costs one scan.
func pokeOnWrite(next http.Handler, poke func()) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			poke()
		}
	})
}

// healthLoop runs the health monitor until stop.
type healthLoop struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startHealth(m *health.Monitor) *healthLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &healthLoop{cancel: cancel}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		m.Run(ctx)
	}()
	return l
}

// stop ends the loop and waits for a scan in progress.
func (l *healthLoop) stop() {
	if l == nil {
		return
	}
	l.cancel()
	l.done.Wait()
}
