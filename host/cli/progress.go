package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

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

// tally is what a follower knows of a run's records and time. Three
// numbers are distinct: the connector's own progress (done/total of a
// stream: what it says it has produced), the records the host received
// from it, and the records committed to the store (received records are
// committed in batches, at checkpoints and at the end). Time is the host's:
// elapsed runs from the first event after the queue (or the run's
// started_at) to the latest event (or its ended_at), so it does not depend
// on this machine's clock.
type tally struct {
	received, committed int64
	start, last         time.Time
}

func (t *tally) observe(ev apitypes.RunEvent) {
	t.received = max(t.received, ev.Received, ev.Records)
	t.committed = max(t.committed, ev.Records)
	at, err := time.Parse(time.RFC3339Nano, ev.At)
	if err != nil {
		return
	}
	if t.start.IsZero() && !(ev.Kind == "status" && ev.Status == StatusQueued) {
		t.start = at
	}
	if at.After(t.last) {
		t.last = at
	}
}

// finish takes the ended run's figures, which are authoritative.
func (t *tally) finish(run apitypes.Run) {
	t.committed = run.Records
	t.received = max(t.received, run.Records)
	start, err1 := time.Parse(time.RFC3339Nano, run.StartedAt)
	end, err2 := time.Parse(time.RFC3339Nano, run.EndedAt)
	if err1 == nil && err2 == nil && !end.Before(start) {
		t.start, t.last = start, end
	}
}

func (t *tally) elapsed() time.Duration {
	if t.start.IsZero() || t.last.Before(t.start) {
		return 0
	}
	return t.last.Sub(t.start)
}

// elapsedText is the elapsed time to the second: "12s", "1m5s".
func (t *tally) elapsedText() string {
	return t.elapsed().Round(time.Second).String()
}

// rateText is records received per second of elapsed time, "" before the
// first second.
func (t *tally) rateText() string {
	d := t.elapsed()
	if d < time.Second {
		return ""
	}
	r := float64(t.received) / d.Seconds()
	if r >= 100 {
		return fmt.Sprintf("%.0f/s", r)
	}
	return fmt.Sprintf("%.1f/s", r)
}

// lineProgress writes one line per event, for logs and pipes; a status
// event repeating the status already shown is skipped. Progress, records
// and end lines carry the elapsed time and, from the first second on, the
// receive rate:
//
//	2025-01-02T03:04:05Z status running
//	2025-01-02T03:04:05Z progress events 3/5 received=3 committed=0 elapsed=0s
//	2025-01-02T03:04:06Z records committed=5 received=5 elapsed=1s rate=5.0/s
//	2025-01-02T03:04:06Z end succeeded committed=5 elapsed=1s rate=5.0/s
type lineProgress struct {
	w      io.Writer
	t      tally
	status string // the last status shown
}

func (p *lineProgress) event(ev apitypes.RunEvent) {
	if ev.Kind == "status" {
		if ev.Status == p.status {
			return
		}
		p.status = ev.Status
	}
	p.t.observe(ev)
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
		if ev.Received > 0 || ev.Records > 0 {
			fmt.Fprintf(&b, " received=%d committed=%d", ev.Received, ev.Records)
		}
		p.timing(&b)
	case "records":
		fmt.Fprintf(&b, " committed=%d", ev.Records)
		if ev.Received > 0 {
			fmt.Fprintf(&b, " received=%d", ev.Received)
		}
		if ev.Stream != "" {
			fmt.Fprintf(&b, " %s", cell(ev.Stream))
		}
		p.timing(&b)
	case "end":
		fmt.Fprintf(&b, " %s", cell(ev.Status))
		if ev.FailureCode != "" {
			fmt.Fprintf(&b, " %s", cell(ev.FailureCode))
		}
		fmt.Fprintf(&b, " committed=%d", ev.Records)
		p.timing(&b)
	}
	b.WriteString("\n")
	io.WriteString(p.w, b.String())
}

// timing appends the elapsed time and, once known, the rate.
func (p *lineProgress) timing(b *strings.Builder) {
	fmt.Fprintf(b, " elapsed=%s", p.t.elapsedText())
	if r := p.t.rateText(); r != "" {
		fmt.Fprintf(b, " rate=%s", r)
	}
}

func (p *lineProgress) done(apitypes.Run) {}

// barWidth is the width of the drawn bar, and maxBarLine bounds the whole
// line so it never wraps on an 80-column terminal (a wrapped line cannot
// be redrawn with '\r').
const (
	barWidth   = 12
	maxBarLine = 79
)

// barProgress redraws one status line with '\r': the connector's progress
// (bar, percent, stream done/total), then the records the host received
// and committed, the elapsed time and the receive rate:
//
//	running [#####.......]  42% events 420/1000  recv 420  committed 400  21s 20.0/s
type barProgress struct {
	w       io.Writer
	t       tally
	status  string
	stream  string
	current int64
	total   int64
	last    int // runes drawn last time, to blank leftovers
}

func (p *barProgress) event(ev apitypes.RunEvent) {
	switch ev.Kind {
	case "status":
		if ev.Status == p.status {
			return // nothing new to draw
		}
		p.status = ev.Status
	case "end":
		p.status = ev.Status
	case "progress":
		if ev.Stream != "" {
			p.stream = ev.Stream
		}
		p.current, p.total = ev.Done, ev.Total
	case "records":
	default:
		return
	}
	p.t.observe(ev)
	p.draw()
}

func (p *barProgress) done(run apitypes.Run) {
	p.status = run.Status
	p.t.finish(run)
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
	fmt.Fprintf(&b, "  recv %d  committed %d  %s", p.t.received, p.t.committed, p.t.elapsedText())
	if r := p.t.rateText(); r != "" {
		fmt.Fprintf(&b, " %s", r)
	}
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
