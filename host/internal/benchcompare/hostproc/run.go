package hostproc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
)

// Token is the demo credential the bench stores (not a secret).
const Token = "bench-demo-token-51c2"

func encodeBase64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// ErrRunFailed is returned for a run that did not succeed with the records
// it was asked for.
var ErrRunFailed = errors.New("hostproc: run did not succeed")

// ErrRunTimeout is returned for a run whose end did not come within
// Config.RunWait.
var ErrRunTimeout = errors.New("hostproc: run timed out")

// NewDemo creates a demo connection emitting records per run and stores
// its DEMO_TOKEN. Its schedule is a day, so no scheduled run lands in a
// measurement.
func (h *Host) NewDemo(ctx context.Context, label string, records int64) (string, error) {
	c, err := h.Client.CreateConnection(ctx, apitypes.ConnectionCreateRequest{
		ConnectorKey: "demo", Label: label, Schedule: "@every 24h",
		Config: map[string]any{"records": records},
	})
	if err != nil {
		return "", h.Fail("create connection", err)
	}
	if _, err := h.Client.SetCredential(ctx, c.ID, apitypes.CredentialSetRequest{Values: map[string]string{"DEMO_TOKEN": Token}}); err != nil {
		return "", h.Fail("set credential", err)
	}
	return c.ID, nil
}

// Run is one manual run as the client saw it.
type Run struct {
	// Elapsed is from sending the trigger to reading the run's end event,
	// which the host sends once the run row is final.
	Elapsed time.Duration
	// Row is the final run row (GET /v1/runs/{id} after the end).
	Row apitypes.Run
	// CreatedToEnded and StartedToEnded are from the row's own stamps, as
	// the store holds them (the API prints them to the second).
	CreatedToEnded, StartedToEnded time.Duration
}

// TriggerAndWait triggers a manual run of the connection and follows its
// event stream to the end. It fails unless the run succeeded with
// wantRecords records.
func (h *Host) TriggerAndWait(ctx context.Context, connectionID string, wantRecords int64) (Run, error) {
	start := time.Now()
	r, err := h.Client.TriggerRun(ctx, connectionID)
	if err != nil {
		return Run{}, h.Fail("trigger run", err)
	}
	return h.Wait(ctx, r.ID, start, wantRecords)
}

// Trigger sends the trigger only.
func (h *Host) Trigger(ctx context.Context, connectionID string) (string, error) {
	r, err := h.Client.TriggerRun(ctx, connectionID)
	if err != nil {
		return "", h.Fail("trigger run", err)
	}
	return r.ID, nil
}

// Wait follows the run's events to the end; start is when its trigger
// was sent.
func (h *Host) Wait(ctx context.Context, runID string, start time.Time, wantRecords int64) (Run, error) {
	wait := h.cfg.RunWait
	if wait <= 0 {
		wait = DefaultRunWait
	}
	ctx, cancel := context.WithTimeoutCause(ctx, wait, fmt.Errorf("%w: run %s did not end within %v", ErrRunTimeout, runID, wait))
	defer cancel()
	es, err := h.Client.RunEvents(ctx, runID)
	if err != nil {
		return Run{}, h.Fail("run events", err)
	}
	defer es.Close()
	for {
		ev, err := es.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return Run{}, h.Fail("run events", err)
		}
		if ev.Kind == client.EventKindEnd {
			break
		}
	}
	out := Run{Elapsed: time.Since(start)}
	out.Row, err = h.Client.GetRun(ctx, runID)
	if err != nil {
		return Run{}, h.Fail("get run", err)
	}
	if out.Row.Status != "succeeded" || out.Row.Records != wantRecords {
		return Run{}, h.Fail("run "+runID, fmt.Errorf("%w: status %s, %d records (want %d), failure %s %s",
			ErrRunFailed, out.Row.Status, out.Row.Records, wantRecords, out.Row.FailureCode, out.Row.FailureMessage))
	}
	created, started, ended, err := h.stamps(ctx, runID)
	if err != nil {
		return Run{}, fmt.Errorf("hostproc: run %s stamps: %w", runID, err)
	}
	out.CreatedToEnded, out.StartedToEnded = ended.Sub(created), ended.Sub(started)
	return out, nil
}
