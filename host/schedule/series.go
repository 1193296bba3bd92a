package schedule

import (
	"hash/fnv"
	"time"

	"github.com/robfig/cron/v3"
)

// cronParser is gocron's and the SDK's grammar: an optional seconds field
// and descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// series is the instants a spec is due at, computed alike on every host:
// an interval spec's instants are anchor + k·every (the anchor is the
// connection's creation time, which every host reads from the store), a
// cron spec's are the cron instants in UTC.
type series struct {
	every  time.Duration
	anchor time.Time
	cron   cron.Schedule
}

func newSeries(sp Spec, anchor time.Time) (series, error) {
	if sp.Every > 0 {
		return series{every: sp.Every, anchor: anchor.UTC()}, nil
	}
	c, err := cronParser.Parse(sp.Cron)
	if err != nil {
		return series{}, err
	}
	return series{cron: c}, nil
}

// next returns the first instant strictly after t.
func (s series) next(t time.Time) time.Time {
	if s.every > 0 {
		return s.anchor.Add(time.Duration(floorDiv(int64(t.Sub(s.anchor)), int64(s.every))+1) * s.every)
	}
	return s.cron.Next(t.UTC())
}

// latest returns the last instant at or before now. A cron series searches
// forward from from, which must be an instant of the series at or before
// now (the instant a job last fired for), so the search is as long as the
// stretch a host slept through.
func (s series) latest(from, now time.Time) time.Time {
	if s.every > 0 {
		return s.anchor.Add(time.Duration(floorDiv(int64(now.Sub(s.anchor)), int64(s.every))) * s.every)
	}
	t := from
	for {
		n := s.cron.Next(t)
		if n.IsZero() || n.After(now) {
			return t
		}
		t = n
	}
}

// between returns the instants of the series from first (an instant of
// it) up to and including until, at most max of them: the latest ones
// when there are more.
func (s series) between(first, until time.Time, max int) []time.Time {
	if first.After(until) {
		return nil
	}
	if s.every > 0 {
		last := s.latest(first, until)
		n := int(last.Sub(first)/s.every) + 1
		if n > max {
			first, n = last.Add(-time.Duration(max-1)*s.every), max
		}
		out := make([]time.Time, n)
		for i := range out {
			out[i] = first.Add(time.Duration(i) * s.every)
		}
		return out
	}
	var out []time.Time
	for t := first; !t.IsZero() && !t.After(until); t = s.cron.Next(t) {
		out = append(out, t)
		if len(out) > max {
			out = out[1:]
		}
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Offset is a connection's jitter: a stable offset in [0, jitter) derived
// from its id, the same on every host. An occurrence runs at its due
// instant plus the offset, so a jittered fleet spreads over the window
// without any host sleeping.
func Offset(connectionID string, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(connectionID))
	return time.Duration(h.Sum64() % uint64(jitter))
}
