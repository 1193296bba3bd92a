package console

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRunStreams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		declared []string
		counts   map[string]int64
		want     []runStream
	}{
		{"nothing committed", []string{"events", "env"}, nil,
			[]runStream{{Name: "events"}, {Name: "env"}}},
		{"declared order, untouched streams at 0", []string{"events", "env"}, map[string]int64{"env": 2},
			[]runStream{{Name: "events"}, {Name: "env", Committed: 2}}},
		{"undeclared streams last, by name", []string{"events"}, map[string]int64{"zeta": 1, "events": 3, "alpha": 4},
			[]runStream{{Name: "events", Committed: 3}, {Name: "alpha", Committed: 4, Undeclared: true}, {Name: "zeta", Committed: 1, Undeclared: true}}},
		{"connector not catalogued", nil, map[string]int64{"b": 1, "a": 2},
			[]runStream{{Name: "a", Committed: 2, Undeclared: true}, {Name: "b", Committed: 1, Undeclared: true}}},
		{"neither", nil, nil, []runStream{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if d := cmp.Diff(tc.want, runStreams(tc.declared, tc.counts)); d != "" {
				t.Errorf("runStreams (-want +got):\n%s", d)
			}
		})
	}
}
