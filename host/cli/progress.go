package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
)

// progress shows a followed run's events.
type progress interface {
	// event shows one live event.
	event(ev apitypes.RunEvent)
	// done is called once with the ended run.
	done(run apitypes.Run)
}

// newProgress returns the display of run --follow: a redrawn bar on a
// terminal, plain lines otherwise. With -o json it writes to stderr, so
// stdout carries only the final run's JSON.
func (a *app) newProgress() progress {
	w, tty := a.rt.Stdout, a.rt.StdoutTerminal
	if a.json() {
		w, tty = a.rt.Stderr, a.rt.StderrTerminal
	}
	if tty {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w}
}

// noProgress shows nothing (run --wait).
type noProgress struct{}

func (noProgress) event(apitypes.RunEvent) {}
func (noProgress) done(apitypes.Run)       {}

// lineProgress writes one line per event, for logs and pipes:
//
//	2025-01-02T03:04:05Z status running
//	2025-01-02T03:04:05Z progress events 3/5
//	2025-01-02T03:04:06Z records 5 events
//	2025-01-02T03:04:06Z end succeeded records=5
type lineProgress struct{ w io.Writer }

func (p *lineProgress) event(ev apitypes.RunEvent) {
	var b strings.Builder
	at := ts(ev.At)
	if at == "" {
		at = "-"
	}
	b.WriteString(at)
	b.WriteString(" ")
	b.WriteString(cell(ev.Kind))
	switch ev.Kind {
	case "status":
		fmt.Fprintf(&b, " %s", cell(ev.Status))
	case "progress":
		if ev.Stream != "" {
			fmt.Fprintf(&b, " %s", cell(ev.Stream))
		}
		if ev.Total > 0 {
			fmt.Fprintf(&b, " %d/%d", ev.Done, ev.Total)
		} else {
			fmt.Fprintf(&b, " %d", ev.Done)
		}
		if ev.Message != "" {
			fmt.Fprintf(&b, " %s", cell(ev.Message))
		}
	case "records":
		fmt.Fprintf(&b, " %d", ev.Records)
		if ev.Stream != "" {
			fmt.Fprintf(&b, " %s", cell(ev.Stream))
		}
	case "end":
		fmt.Fprintf(&b, " %s", cell(ev.Status))
		if ev.FailureCode != "" {
			fmt.Fprintf(&b, " %s", cell(ev.FailureCode))
		}
		fmt.Fprintf(&b, " records=%d", ev.Records)
	}
	b.WriteString("\n")
	io.WriteString(p.w, b.String())
}

func (p *lineProgress) done(apitypes.Run) {}

// barWidth is the width of the drawn bar, and maxBarLine bounds the whole
// line so it never wraps on an 80-column terminal (a wrapped line cannot
// be redrawn with '\r').
const (
	barWidth   = 24
	maxBarLine = 79
)

// barProgress redraws one status line with '\r':
//
//	running [##########..............]  42% events 420/1000  120 records
type barProgress struct {
	w       io.Writer
	status  string
	stream  string
	current int64
	total   int64
	records int64
	last    int // runes drawn last time, to blank leftovers
}

func (p *barProgress) event(ev apitypes.RunEvent) {
	switch ev.Kind {
	case "status", "end":
		p.status = ev.Status
		if ev.Records > p.records {
			p.records = ev.Records
		}
	case "progress":
		if ev.Stream != "" {
			p.stream = ev.Stream
		}
		p.current, p.total = ev.Done, ev.Total
	case "records":
		if ev.Records > p.records {
			p.records = ev.Records
		}
	default:
		return
	}
	p.draw()
}

func (p *barProgress) done(run apitypes.Run) {
	p.status = run.Status
	p.records = run.Records
	if run.Status == StatusSucceeded && p.total > 0 {
		p.current = p.total
	}
	p.draw()
	io.WriteString(p.w, "\n")
}

func (p *barProgress) draw() {
	var b strings.Builder
	status := p.status
	if status == "" {
		status = StatusQueued
	}
	b.WriteString(cell(status))
	if p.total > 0 {
		frac := float64(p.current) / float64(p.total)
		frac = min(max(frac, 0), 1)
		n := int(frac * barWidth)
		fmt.Fprintf(&b, " [%s%s] %3d%%", strings.Repeat("#", n), strings.Repeat(".", barWidth-n), int(frac*100))
	}
	if p.stream != "" {
		fmt.Fprintf(&b, " %s", cell(p.stream))
	}
	if p.total > 0 {
		fmt.Fprintf(&b, " %d/%d", p.current, p.total)
	} else if p.current > 0 {
		fmt.Fprintf(&b, " %d", p.current)
	}
	fmt.Fprintf(&b, "  %d records", p.records)
	line := []rune(b.String())
	if len(line) > maxBarLine {
		line = line[:maxBarLine]
	}
	pad := max(p.last-len(line), 0)
	p.last = len(line)
	io.WriteString(p.w, "\r"+string(line)+strings.Repeat(" ", pad))
}

var (
	_ progress = noProgress{}
	_ progress = (*lineProgress)(nil)
	_ progress = (*barProgress)(nil)
)
