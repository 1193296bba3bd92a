package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
)

// MinEvery is the shortest "@every" interval accepted.
const MinEvery = time.Second

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
// "@every <duration>" (at least one second). Times are UTC.
func Parse(s string) (Spec, error) {
	raw := strings.TrimSpace(s)
	if raw == "" {
		return Spec{}, fmt.Errorf("%w: empty", ErrInvalidSpec)
	}
	if len(raw) > 256 {
		return Spec{}, fmt.Errorf("%w: longer than 256 bytes", ErrInvalidSpec)
	}
	if rest, ok := strings.CutPrefix(raw, "@every"); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || strings.TrimSpace(rest) == "" {
			return Spec{}, fmt.Errorf("%w: %q: want \"@every <duration>\" such as \"@every 30s\"", ErrInvalidSpec, raw)
		}
		if d < MinEvery {
			return Spec{}, fmt.Errorf("%w: %q: interval below %s", ErrInvalidSpec, raw, MinEvery)
		}
		return Spec{Raw: raw, Every: d}, nil
	}
	if strings.HasPrefix(raw, "TZ=") || strings.HasPrefix(raw, "CRON_TZ=") {
		return Spec{}, fmt.Errorf("%w: %q: time zones are not accepted; schedules run in UTC", ErrInvalidSpec, raw)
	}
	if n := len(strings.Fields(raw)); !strings.HasPrefix(raw, "@") && n != 5 && n != 6 {
		return Spec{}, fmt.Errorf("%w: %q: want five cron fields, or six with seconds, got %d", ErrInvalidSpec, raw, n)
	}
	if err := gocron.NewDefaultCron(true).IsValid(raw, time.UTC, time.Now()); err != nil {
		return Spec{}, fmt.Errorf("%w: %q: %v", ErrInvalidSpec, raw, cronReason(err))
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

// cronReason strips gocron's wrapping down to the parser's message.
func cronReason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "\n"); i >= 0 {
		msg = msg[i+1:]
	}
	return msg
}
