package server

import (
	"time"

	"github.com/jonboulle/clockwork"
)

// offsetClock is the real clock shifted by offset: what --clock-offset
// gives a host in clock-skew tests. Timers and tickers wait real
// durations; only readings move.
func offsetClock(offset time.Duration) clockwork.Clock {
	real := clockwork.NewRealClock()
	if offset == 0 {
		return real
	}
	return shifted{Clock: real, offset: offset}
}

type shifted struct {
	clockwork.Clock
	offset time.Duration
}

func (s shifted) Now() time.Time                  { return s.Clock.Now().Add(s.offset) }
func (s shifted) Since(t time.Time) time.Duration { return s.Now().Sub(t) }
func (s shifted) Until(t time.Time) time.Duration { return t.Sub(s.Now()) }
