package manifest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// MinEvery is the shortest "@every" interval CheckSchedule accepts.
const MinEvery = time.Second

// ErrInvalidSchedule is wrapped by every error CheckSchedule returns.
var ErrInvalidSchedule = errors.New("manifest: invalid schedule spec")

// cronParser is the grammar gocron's default cron uses with seconds enabled,
// so a spec the SDK accepts is one the host's scheduler can run.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour |
	cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CheckSchedule is the SDK's ScheduleChecker. It accepts a cron spec with
// five fields (or six with a leading seconds field), a descriptor such as
// "@hourly", or "@every <duration>" of at least MinEvery. Specs run in UTC,
// so a TZ= or CRON_TZ= prefix is refused. The rules match the host's
// scheduler (host/schedule.Parse): a connector that serves is one the host
// can schedule.
func CheckSchedule(spec string) error {
	raw := strings.TrimSpace(spec)
	switch {
	case raw == "":
		return fmt.Errorf("%w: empty", ErrInvalidSchedule)
	case len(raw) > 256:
		return fmt.Errorf("%w: longer than 256 bytes", ErrInvalidSchedule)
	}
	if rest, ok := strings.CutPrefix(raw, "@every"); ok {
		rest = strings.TrimSpace(rest)
		d, err := time.ParseDuration(rest)
		if err != nil || rest == "" {
			return fmt.Errorf("%w: %q: want \"@every <duration>\" such as \"@every 30s\"", ErrInvalidSchedule, trunc(raw))
		}
		if d < MinEvery {
			return fmt.Errorf("%w: %q: interval below %s", ErrInvalidSchedule, trunc(raw), MinEvery)
		}
		return nil
	}
	if strings.HasPrefix(raw, "TZ=") || strings.HasPrefix(raw, "CRON_TZ=") {
		return fmt.Errorf("%w: %q: time zones are not accepted; schedules run in UTC", ErrInvalidSchedule, trunc(raw))
	}
	if n := len(strings.Fields(raw)); !strings.HasPrefix(raw, "@") && n != 5 && n != 6 {
		return fmt.Errorf("%w: %q: want five cron fields, or six with seconds, got %d", ErrInvalidSchedule, trunc(raw), n)
	}
	s, err := cronParser.Parse("CRON_TZ=UTC " + raw)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidSchedule, trunc(raw), err)
	}
	// A spec such as "0 0 30 2 *" parses but never fires.
	if s.Next(time.Now()).IsZero() {
		return fmt.Errorf("%w: %q: never fires", ErrInvalidSchedule, trunc(raw))
	}
	return nil
}

var _ ScheduleChecker = CheckSchedule
