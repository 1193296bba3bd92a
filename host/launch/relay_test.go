package launch

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// A relayed line keeps the plugin's pairs in one order whatever order
// go-plugin passes them in (it ranges over a map), and loses the
// "timestamp" pair go-plugin appends; a plugin's own timestamp pair stays.
func TestRelayOrdersPairsAndDropsTimestamp(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args []any
		want string
	}{
		"shuffled":           {[]any{"trigger", "manual", "records", 3, "timestamp", "2026-12-05T00:00:00.000Z"}, "line: records=3 trigger=manual\n"},
		"reversed":           {[]any{"records", 3, "trigger", "manual", "timestamp", "2026-12-05T00:00:00.000Z"}, "line: records=3 trigger=manual\n"},
		"the plugin's own":   {[]any{"timestamp", "mine", "a", 1, "timestamp", "2026-12-05T00:00:00.000Z"}, "line: a=1 timestamp=mine\n"},
		"only the timestamp": {[]any{"timestamp", "2026-12-05T00:00:00.000Z"}, "line\n"},
		"odd trailing arg":   {[]any{"b", 1, "a"}, "line: b=1 EXTRA_VALUE_AT_END=a\n"},
		"stdio stream":       {[]any{"stream", "stderr"}, "line: stream=stderr\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			inner := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, DisableTime: true})
			newRedactLogger(inner, newRedactor(nil), "plug").Named("plug").Info("line", tc.args...)
			if got := strings.TrimPrefix(buf.String(), "[INFO]  plug: "); got != tc.want {
				t.Errorf("relayed %q, want %q", got, tc.want)
			}
		})
	}
	// The host's own lines are not the relay's: their order is the host's.
	var buf bytes.Buffer
	inner := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, DisableTime: true})
	newRedactLogger(inner, newRedactor(nil), "plug").Info("host", "z", 1, "a", 2)
	if got := buf.String(); got != "[INFO]  host: z=1 a=2\n" {
		t.Errorf("host line %q", got)
	}
}

// Through a real plugin process: every relayed line has the same pairs in
// the same order, and none repeats the time as a field.
func TestRelayedPluginLinesKeepOneOrder(t *testing.T) {
	t.Parallel()
	l, logs := testLauncher(t, Config{})
	spec, _ := testSpec(t)
	if err := l.Run(context.Background(), spec, runConfig(map[string]any{"mode": "fields"}), func(wire.Message) error { return nil }); err != nil {
		t.Fatalf("Run: %v", err)
	}
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "fields line") {
			continue
		}
		n++
		// After the host's own pairs, the plugin's in its line's order.
		if want := fmt.Sprintf("fields line: connector=testconn run_id=run-1 alpha=a mid=m records=%d trigger=manual zeta=z", n-1); !strings.HasSuffix(line, want) || strings.Contains(line, "timestamp=") {
			t.Errorf("relayed line %q, want it to end %q", line, want)
		}
	}
	if n != 8 {
		t.Errorf("%d relayed lines, want 8:\n%s", n, logs)
	}
}

// The host killing a plugin process at the end of a call is not an error;
// a plugin dying on its own still is.
func TestPluginExitLevel(t *testing.T) {
	t.Parallel()
	l, logs := testLauncher(t, Config{})
	spec, _ := testSpec(t)
	ctx := context.Background()
	for _, mode := range []string{"records", "hang"} {
		rctx, cancel := context.WithCancel(ctx)
		err := l.Run(rctx, spec, runConfig(map[string]any{"mode": mode, "n": 2}), func(m wire.Message) error {
			if mode == "hang" && m.Kind == wire.KindRecords {
				cancel()
			}
			return nil
		})
		cancel()
		if (mode == "records") != (err == nil) {
			t.Fatalf("Run %s: %v", mode, err)
		}
	}
	if out := logs.String(); strings.Contains(out, "[ERROR]") || !strings.Contains(out, `[DEBUG] host: plugin process stopped by the host: connector=testconn run_id=run-1 plugin=testconn id=`) ||
		!strings.Contains(out, `exit="signal: killed"`) {
		t.Errorf("a run the host ended logged an error:\n%s", out)
	}

	crashed, crashLogs := testLauncher(t, Config{})
	err := crashed.Run(ctx, spec, runConfig(map[string]any{"mode": "crash"}), func(wire.Message) error { return nil })
	if failure.CodeOf(err) != failure.ConnectorCrashed {
		t.Fatalf("crash: %v", err)
	}
	if out := crashLogs.String(); !strings.Contains(out, "[ERROR] host: plugin process exited:") || strings.Contains(out, "stopped by the host") {
		t.Errorf("a crashed plugin's exit is not an error:\n%s", out)
	}
}

// A Describe asks a file whether it is a connector at all (the catalog's
// scan): its lines name the file, not a connector.
func TestDescribeLinesNameTheFile(t *testing.T) {
	t.Parallel()
	l, logs := testLauncher(t, Config{})
	spec, _ := testSpec(t)
	if _, err := l.Describe(context.Background(), pinned(t, spec.Path)); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	out := logs.String()
	if !strings.Contains(out, "file="+spec.Path) || strings.Contains(out, "connector=") {
		t.Errorf("Describe's lines do not name the file (or name a connector):\n%s", out)
	}
}
