package compare

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/connhost/connhost/host/internal/benchcompare/floor"
	"github.com/connhost/connhost/host/internal/benchcompare/hostproc"
	"github.com/connhost/connhost/host/internal/benchcompare/stats"
)

// wholeRunGroup: a manual run of the demo (1 record) on a real `connhost
// serve` (SQLite), from the HTTP trigger to the final run row, beside
// the bare go-plugin floor with AutoMTLS. Each run uses a connection of
// its own (the demo resumes from its checkpoint: a second run of one
// connection would emit nothing).
func (e *bench) wholeRunGroup(ctx context.Context) (_ []stats.Row, err error) {
	h, err := hostproc.Start(ctx, hostproc.Config{
		Bin: e.b.connhost, PluginDir: e.b.pluginDir, DataDir: filepath.Join(e.work, "run"),
		LogPath: filepath.Join(e.s.out, "serve-run.log"),
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := h.Stop(); err == nil {
			err = serr
		}
	}()
	n := e.s.rounds*e.s.runs + 2
	ids := make([]string, n)
	for i := range ids {
		if ids[i], err = h.NewDemo(ctx, fmt.Sprintf("run-%d", i), 1); err != nil {
			return nil, err
		}
	}
	progress("[run] host ready (pid %d), %d connections", h.Pid(), n)
	next := 0
	var runs []hostproc.Run
	connhost := variant{"connhost", func(ctx context.Context) (time.Duration, error) {
		r, err := h.TriggerAndWait(ctx, ids[next], 1)
		next++
		runs = append(runs, r)
		return r.Elapsed, err
	}}
	fl := variant{"floor", func(ctx context.Context) (time.Duration, error) { return floor.Launch(ctx, e.b.floor, true) }}
	vs := []variant{connhost, fl}
	if _, err := interleave(ctx, 2, vs); err != nil { // warm-up
		return nil, err
	}
	var client, created, started, ref []float64
	for r := range e.s.rounds {
		runs = runs[:0]
		samples, err := interleave(ctx, e.s.runs, vs)
		if err != nil {
			return nil, err
		}
		var c, s []float64
		for _, run := range runs {
			c = append(c, ms(run.CreatedToEnded))
			s = append(s, ms(run.StartedToEnded))
		}
		client = append(client, stats.Median(samples["connhost"]))
		created = append(created, stats.Median(c))
		started = append(started, stats.Median(s))
		ref = append(ref, stats.Median(samples["floor"]))
		progress("[run] round %d/%d (%d runs each): POST → final row %.1f ms (row created→ended %.1f, started→ended %.1f), floor AutoMTLS %.1f ms",
			r+1, e.s.rounds, e.s.runs, last(client), last(created), last(started), last(ref))
	}
	const g = "run"
	return rows(
		row(g, "whole manual run, 1 record: POST → final row seen by the client", stats.Millis, client, "floor AutoMTLS", ref).
			note("the client sends POST /v1/connections/{id}/runs and reads GET /v1/runs/{id}/events until its end event, which the host sends once the run row is final (SQLite store, stored credential, fresh connection per run)"),
		row(g, "whole manual run, 1 record: run row created_at → ended_at", stats.Millis, created, "floor AutoMTLS", ref),
		row(g, "whole manual run, 1 record: run row started_at → ended_at", stats.Millis, started, "floor AutoMTLS", ref),
	)
}
