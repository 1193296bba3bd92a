package console

import (
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
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

func TestRetriesIn(t *testing.T) {
	t.Parallel()
	runs := []apitypes.Run{
		{ID: "run_4", RetryOf: "run_1"},
		{ID: "run_3", RetryOf: "run_2"},
		{ID: "run_2", RetryOf: "run_1"},
	}
	for _, tc := range []struct {
		name string
		id   string
		want []string
	}{
		{"retried twice, newest first", "run_1", []string{"run_4", "run_2"}},
		{"retried once", "run_2", []string{"run_3"}},
		{"not retried", "run_3", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, r := range retriesIn(tc.id, runs) {
				got = append(got, r.ID)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("retriesIn(%s) (-want +got):\n%s", tc.id, d)
			}
		})
	}
}
