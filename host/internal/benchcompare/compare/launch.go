package compare

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/connhost/connhost/host/internal/benchcompare/floor"
	"github.com/connhost/connhost/host/internal/benchcompare/launchbench"
	"github.com/connhost/connhost/host/internal/benchcompare/stats"
)

// variant is one thing measured in a group, returning one sample.
type variant struct {
	name string
	run  func(context.Context) (time.Duration, error)
}

// interleave runs n iterations of every variant, the order rotating each
// iteration, and returns each variant's samples in ms.
func interleave(ctx context.Context, n int, vs []variant) (map[string][]float64, error) {
	out := map[string][]float64{}
	for i := range n {
		for j := range vs {
			v := vs[(i+j)%len(vs)]
			d, err := v.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.name, err)
			}
			out[v.name] = append(out[v.name], ms(d))
		}
	}
	return out, nil
}

// launchGroup: connhost launch → first Run message (AutoMTLS on and off)
// beside the bare go-plugin floor (on and off) and a fork/exec of the demo
// to exit.
func (e *bench) launchGroup(ctx context.Context) ([]stats.Row, error) {
	tmp := filepath.Join(e.work, "l")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	on, err := launchbench.New(e.b.demo, true, tmp)
	if err != nil {
		return nil, err
	}
	off, err := launchbench.New(e.b.demo, false, tmp)
	if err != nil {
		return nil, err
	}
	vs := []variant{
		{"connhost_mtls", on.FirstMessage},
		{"connhost_nomtls", off.FirstMessage},
		{"floor_mtls", func(ctx context.Context) (time.Duration, error) { return floor.Launch(ctx, e.b.floor, true) }},
		{"floor_nomtls", func(ctx context.Context) (time.Duration, error) { return floor.Launch(ctx, e.b.floor, false) }},
		{"forkexec", on.ForkExec},
	}
	if _, err := interleave(ctx, 2, vs); err != nil { // warm-up: page cache, first-exec costs
		return nil, err
	}
	med := map[string][]float64{}
	for r := range e.s.rounds {
		samples, err := interleave(ctx, e.s.launches, vs)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			med[v.name] = append(med[v.name], stats.Median(samples[v.name]))
		}
		progress("[launch] round %d/%d (%d launches each): connhost %.1f / %.1f ms, floor %.1f / %.1f ms (AutoMTLS on / off), fork/exec %.1f ms",
			r+1, e.s.rounds, e.s.launches, last(med["connhost_mtls"]), last(med["connhost_nomtls"]),
			last(med["floor_mtls"]), last(med["floor_nomtls"]), last(med["forkexec"]))
	}
	diff := func(a, b []float64) []float64 {
		out := make([]float64, len(a))
		for i := range a {
			out[i] = a[i] - b[i]
		}
		return out
	}
	const g = "launch"
	return rows(
		row(g, "launch → first Run message, AutoMTLS", stats.Millis, med["connhost_mtls"], "floor AutoMTLS", med["floor_mtls"]),
		row(g, "launch → first Run message, AutoMTLS off", stats.Millis, med["connhost_nomtls"], "floor no TLS", med["floor_nomtls"]),
		row(g, "launch → first Run message, AutoMTLS", stats.Millis, med["connhost_mtls"], "fork/exec demo", med["forkexec"]),
		row(g, "launch → first Run message, AutoMTLS off", stats.Millis, med["connhost_nomtls"], "fork/exec demo", med["forkexec"]),
		row(g, "AutoMTLS cost per launch (on − off)", stats.Millis, diff(med["connhost_mtls"], med["connhost_nomtls"]),
			"floor on − off", diff(med["floor_mtls"], med["floor_nomtls"])),
	)
}

func last(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}

// rowSpec defers NewRow's error to rows.
type rowSpec struct {
	r   stats.Row
	err error
}

func row(group, measure string, unit stats.Unit, connhost []float64, refName string, ref []float64) rowSpec {
	r, err := stats.NewRow(group, measure, unit, connhost, refName, ref)
	return rowSpec{r, err}
}

func (r rowSpec) note(n string) rowSpec {
	r.r.Note = n
	return r
}

func rows(specs ...rowSpec) ([]stats.Row, error) {
	out := make([]stats.Row, 0, len(specs))
	for _, s := range specs {
		if s.err != nil {
			return out, s.err
		}
		out = append(out, s.r)
	}
	return out, nil
}
