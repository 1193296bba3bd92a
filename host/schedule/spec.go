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
