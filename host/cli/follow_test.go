package cli_test

import (
	"strings"
	"testing"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/cli"
)

// TestFollowShowsEachStatusOnce: the event stream may repeat a status (the
// host's snapshot on subscribing, then the runner's own event); --follow
// shows each status change once, on stdout and (-o json) on stderr.
func TestFollowShowsEachStatusOnce(t *testing.T) {
	t.Parallel()
	sse := "event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:05Z\",\"status\":\"queued\"}\n\n" +
		"event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:05Z\",\"status\":\"queued\"}\n\n" +
		"event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:06Z\",\"status\":\"running\"}\n\n" +
		"event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:06Z\",\"status\":\"running\"}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:08Z\",\"status\":\"succeeded\",\"records\":5}\n\n"
	routes := map[string][]reply{
		"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
		"GET /v1/runs/r1/events":       {{sse: true, body: sse}},
		"GET /v1/runs/r1":              {{body: queuedRunJSON}, {body: doneRunJSON}},
	}
	for _, args := range [][]string{{"run", "c1", "--follow"}, {"run", "c1", "--follow", "-o", "json"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, newFakeAPI(routes), options{}, args...)
			out := res.stdout
			if len(args) == 5 {
				out = res.stderr
			}
			want := "2025-01-02T03:04:05Z status queued\n" +
				"2025-01-02T03:04:06Z status running\n" +
				"2025-01-02T03:04:08Z end succeeded committed=5 elapsed=2s rate=2.5/s\n"
			if res.code != 0 || !strings.HasPrefix(out, want) {
				t.Errorf("exit %d, progress:\n%s\nwant:\n%s", res.code, out, want)
			}
		})
	}
	t.Run("bar", func(t *testing.T) {
		t.Parallel()
		res := runCLI(t, newFakeAPI(routes), options{terminal: true}, "run", "c1", "--follow")
		if n := strings.Count(res.stdout, "\rqueued"); n != 1 {
			t.Errorf("queued drawn %d times:\n%q", n, res.stdout)
		}
		if n := strings.Count(res.stdout, "\rrunning"); n != 1 {
			t.Errorf("running drawn %d times:\n%q", n, res.stdout)
		}
	})
}

// TestFollowWhenTheHostGoesKeepsTheStart: a run followed from the queue
// whose host goes away after its end event is shown with the start its
// events reported, not as a run that never started; when the events did
// not say, the start is "unknown", not "-".
func TestFollowWhenTheHostGoesKeepsTheStart(t *testing.T) {
	t.Parallel()
	running := "event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:05Z\",\"status\":\"queued\"}\n\n" +
		"event: status\ndata: {\"run_id\":\"r1\",\"kind\":\"status\",\"at\":\"2025-01-02T03:04:07Z\",\"status\":\"running\"}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:09Z\",\"status\":\"succeeded\",\"records\":3}\n\n"
	progressOnly := "event: progress\ndata: {\"run_id\":\"r1\",\"kind\":\"progress\",\"at\":\"2025-01-02T03:04:08Z\",\"stream\":\"events\",\"done\":1,\"total\":3}\n\n" +
		"event: end\ndata: {\"run_id\":\"r1\",\"kind\":\"end\",\"at\":\"2025-01-02T03:04:09Z\",\"status\":\"succeeded\",\"records\":3}\n\n"
	for _, tt := range []struct {
		name, sse, started, text string
	}{
		{"running event", running, "2025-01-02T03:04:07Z", "started at: 2025-01-02T03:04:07Z\n"},
		{"progress event", progressOnly, "2025-01-02T03:04:08Z", "started at: 2025-01-02T03:04:08Z\n"},
		{"end only", succeededSSE, "", "started at: unknown\n"},
	} {
		for _, mode := range []string{"--follow", "--wait"} {
			api := func() *hangupAfter {
				return &hangupAfter{path: "/v1/runs/r1", n: 1, api: newFakeAPI(map[string][]reply{
					"POST /v1/connections/c1/runs": {{status: 202, body: queuedRunJSON}},
					"GET /v1/runs/r1/events":       {{sse: true, body: tt.sse}},
					"GET /v1/runs/r1":              {{body: queuedRunJSON}},
				})}
			}
			t.Run(tt.name+" "+mode, func(t *testing.T) {
				t.Parallel()
				res := runCLI(t, api(), options{}, "run", "c1", mode)
				if res.code != cli.ExitOK || !strings.Contains(res.stdout, tt.text) || !strings.Contains(res.stdout, "ended at:   2025-01-02T03:04:09Z") {
					t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
				}
				res = runCLI(t, api(), options{}, "run", "c1", mode, "-o", "json")
				var run apitypes.Run
				oneJSON(t, res.stdout, &run)
				if res.code != cli.ExitOK || run.Status != "succeeded" || run.StartedAt != tt.started {
					t.Errorf("exit %d, run %+v", res.code, run)
				}
			})
		}
	}
}
