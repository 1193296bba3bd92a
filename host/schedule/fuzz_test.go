package schedule

import (
	"errors"
	"testing"
)

// FuzzParse: a schedule spec arrives in API bodies; Parse must never panic
// and must either accept or return ErrInvalidSpec.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"@every 30s", "*/5 * * * *", "0 */10 * * * *", "@daily", "@every -1s", "* * *", "TZ=x * * * * *", "@every 1000000h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidSpec", s, err)
			}
			return
		}
		if (sp.Every > 0) == (sp.Cron != "") {
			t.Fatalf("Parse(%q) = %+v: exactly one of Every and Cron must be set", s, sp)
		}
	})
}
