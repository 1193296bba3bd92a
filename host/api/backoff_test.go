package api_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/failure"
	"github.com/connhost/connhost/host/internal/hosttest"
	"github.com/connhost/connhost/host/store"
)

// The next run shown, in show and in list, is the backed-off one: the
// first schedule instant at or after the connection's backoff; a held
// connection, not enrolled, shows none.
func TestNextRunShowsTheBackoffAndHeldShowsNone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, hosttest.Options{HostEnv: map[string]string{"PATH": os.Getenv("PATH")}})
	ctx := context.Background()
	c := e.createDemo(map[string]any{"records": 1}, "@every 10m")
	e.setToken(c.ID, "tok-12345678")
	t0 := e.h.Clock.Now().UTC()

	nextOf := func() (show, list string) {
		t.Helper()
		var got apitypes.Connection
		e.ok(http.StatusOK, "GET", "/v1/connections/"+c.ID, nil, &got)
		var l apitypes.List[apitypes.Connection]
		e.ok(http.StatusOK, "GET", "/v1/connections", nil, &l)
		for _, it := range l.Items {
			if it.ID == c.ID {
				list = it.NextRun
			}
		}
		return got.NextRun, list
	}
	want := func(at time.Time) string { return at.UTC().Format(time.RFC3339) }
	if show, list := nextOf(); show != want(t0.Add(10*time.Minute)) || list != show {
		t.Fatalf("next run = %q / %q, want %s", show, list, want(t0.Add(10*time.Minute)))
	}

	finish := func(res store.RunResult) {
		t.Helper()
		run, err := e.h.Store.CreateRun(ctx, store.NewRun{ConnectionID: c.ID, Trigger: store.TriggerManual, HostID: "host_test"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.h.Store.FinishRun(ctx, run.ID, res); err != nil {
			t.Fatal(err)
		}
	}
	// Backed off until 35m: the instants at 10m … 30m are skipped.
	finish(store.RunResult{Status: store.RunFailed, FailureCode: failure.ConnectorFailed, FailureMessage: "x",
		BackoffUntil: t0.Add(35 * time.Minute)})
	if show, list := nextOf(); show != want(t0.Add(40*time.Minute)) || list != show {
		t.Fatalf("backed-off next run = %q / %q, want %s", show, list, want(t0.Add(40*time.Minute)))
	}
	// A backoff on an instant runs at that instant.
	finish(store.RunResult{Status: store.RunFailed, FailureCode: failure.ConnectorFailed, FailureMessage: "x",
		BackoffUntil: t0.Add(time.Hour)})
	if show, _ := nextOf(); show != want(t0.Add(time.Hour)) {
		t.Fatalf("next run = %q, want %s", show, want(t0.Add(time.Hour)))
	}

	// Held: not enrolled, no next run.
	finish(store.RunResult{Status: store.RunRefused, FailureCode: failure.StaticSecretUnavailable, FailureMessage: "x", Hold: true})
	e.h.Control.Reevaluate(ctx, c.ID)
	if show, list := nextOf(); show != "" || list != "" {
		t.Fatalf("a held connection shows next run %q / %q", show, list)
	}
}
