package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/connhost/connhost/sdk/manifest"
	"github.com/go-co-op/gocron/v2"
)

// ErrInvalidSpec is wrapped by every schedule spec error.
var ErrInvalidSpec = errors.New("schedule: invalid spec")

// Spec is a parsed schedule spec.
type Spec struct {
	// Raw is the spec as written.
	Raw string
	// Every is set for "@every <duration>" specs.
	Every time.Duration
	// Cron is set for cron specs (five fields, six with seconds, or a
	// descriptor such as "@hourly").
	Cron string
}

// Parse parses a schedule spec: a cron spec with five fields, or six with a
// leading seconds field, a descriptor (@hourly, @daily, …), or
// "@every <duration>" (at least one second). Times are UTC. The grammar is
// the SDK's (manifest.CheckSchedule), so a connector whose manifest serves is
// one the host can schedule.
func Parse(s string) (Spec, error) {
	if err := manifest.CheckSchedule(s); err != nil {
		msg := strings.TrimPrefix(err.Error(), manifest.ErrInvalidSchedule.Error()+": ")
		return Spec{}, fmt.Errorf("%w: %s", ErrInvalidSpec, msg)
	}
	raw := strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(raw, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return Spec{}, fmt.Errorf("%w: %q", ErrInvalidSpec, raw)
		}
		return Spec{Raw: raw, Every: d}, nil
	}
	return Spec{Raw: raw, Cron: raw}, nil
}

// MaxJitter caps a schedule's jitter, whatever its period.
const MaxJitter = 24 * time.Hour

// Period returns the shortest time between two instants of the spec: an
// interval spec's interval, or the shortest gap among a cron spec's next
// 200 instants from a fixed day (deterministic, and enough to see a
// schedule's pattern over a week of hourly instants).
func Period(s string) (time.Duration, error) {
	sp, err := Parse(s)
	if err != nil {
		return 0, err
	}
	if sp.Every > 0 {
		return sp.Every, nil
	}
	c, err := cronParser.Parse(sp.Cron)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	t := c.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	shortest := time.Duration(0)
	for range 200 {
		n := c.Next(t)
		if n.IsZero() {
			break
		}
		if d := n.Sub(t); shortest == 0 || d < shortest {
			shortest = d
		}
		t = n
	}
	return shortest, nil
}

// CheckJitter reports a jitter the spec cannot take: longer than its
// period (each run would spill into the next period) or than MaxJitter.
func CheckJitter(spec string, jitter time.Duration) error {
	if jitter <= 0 {
		return nil
	}
	period, err := Period(spec)
	if err != nil {
		return err
	}
	limit := min(period, MaxJitter)
	if jitter > limit {
		return fmt.Errorf("jitter %s exceeds %s: at most the schedule's period (%s for %q), and never over %s",
			jitter, limit, period, spec, MaxJitter)
	}
	return nil
}

// Check reports whether s is a valid spec. It fits manifest.ScheduleChecker.
func Check(s string) error {
	_, err := Parse(s)
	return err
}

// definition returns the gocron job definition for the spec.
func (s Spec) definition() gocron.JobDefinition {
	if s.Every > 0 {
		return gocron.DurationJob(s.Every)
	}
	return gocron.CronJob(s.Cron, true)
}

// InForce is the spec a connection is scheduled by: its own spec, else
// its connector's default when that auto-enrolls (the enrollment gate's
// rule), else "" (manual runs only).
func InForce(own string, def manifest.Schedule) string {
	switch {
	case own != "":
		return own
	case def.Spec != "" && def.AutoEnroll:
		return def.Spec
	}
	return ""
}

// IntervalAt returns the time between the first two instants of spec
// strictly after at: an interval spec's interval, or the gap between a
// cron spec's next two instants (the period in force around at).
func IntervalAt(spec string, at time.Time) (time.Duration, error) {
	sp, err := Parse(spec)
	if err != nil {
		return 0, err
	}
	if sp.Every > 0 {
		return sp.Every, nil
	}
	c, err := cronParser.Parse(sp.Cron)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	first := c.Next(at.UTC())
	second := c.Next(first)
	if first.IsZero() || second.IsZero() {
		return 0, fmt.Errorf("%w: %q has no two instants after %s", ErrInvalidSpec, spec, at.UTC().Format(time.RFC3339))
	}
	return second.Sub(first), nil
}
