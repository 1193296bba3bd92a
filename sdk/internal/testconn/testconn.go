// Package testconn is a connector for the SDK's own tests: each behaviour
// the SDK must handle (failures, panics, blocking, logging, leaking a
// secret into an error) is one config field, so one connector serves the
// in-process and the subprocess tests alike. cmd/probe serves it.
package testconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/connhost/connhost/sdk"
	"github.com/connhost/connhost/sdk/manifest"
)

// Manifest values.
const (
	Key         = "probe"
	TokenEnv    = "PROBE_TOKEN"
	UserEnv     = "PROBE_USER"
	BaseEnv     = "PROBE_BASE"
	StreamItems = "items"
	StreamEnv   = "env"
)

// Config selects the behaviour of a run.
type Config struct {
	// Records is the number of items to emit, keyed "0", "1", ….
	Records int `json:"records,omitempty"`
	// Checkpoint sends {"n":Records} after the items.
	Checkpoint bool `json:"checkpoint,omitempty"`
	// Fail ends the run after the items: "plain" (an error),
	// "retryable", "rejected" (CredentialRejected), "code" (Fail with code
	// "probe_code"), "panic", or "leak" (an error quoting the token).
	Fail string `json:"fail,omitempty"`
	// Block waits for the run's context to end after the items.
	Block bool `json:"block,omitempty"`
	// Log logs this message at info with the token as a field.
	Log string `json:"log,omitempty"`
	// Env emits one record per name on stream "env" saying whether the
	// name is set.
	Env []string `json:"env,omitempty"`
}

// Probe is the test connector.
type Probe struct{}

// Manifest declares two credentials, so tests can see the order in which
// missing names are reported.
func (Probe) Manifest() manifest.Manifest {
	return manifest.Manifest{
		ConnectorKey: Key,
		Version:      "0.0.1",
		DisplayName:  "Probe",
		Auth: manifest.Auth{
			Kind:     manifest.AuthStaticSecret,
			Required: []string{TokenEnv, UserEnv},
		},
		EnvPassthrough: []string{BaseEnv},
		Streams: []manifest.Stream{
			{Name: StreamItems, KeyFields: []string{"n"}},
			{Name: StreamEnv, KeyFields: []string{"name"}},
		},
		DefaultSchedule: manifest.Schedule{Spec: "*/5 * * * *"},
		ConfigSchema:    `{"type":"object"}`,
	}
}

// Run does what the config says.
func (Probe) Run(ctx context.Context, r *sdk.Run) error {
	var cfg Config
	if err := r.Config(&cfg); err != nil {
		return err
	}
	token := r.Credential(TokenEnv)
	if cfg.Log != "" {
		r.Logger().Info(cfg.Log, "token", token)
	}
	for _, n := range cfg.Env {
		_, ok := r.LookupEnv(n)
		if err := r.Emit(StreamEnv, n, map[string]any{"name": n, "present": ok}); err != nil {
			return err
		}
	}
	for i := range cfg.Records {
		if err := r.Emit(StreamItems, strconv.Itoa(i), map[string]int{"n": i}); err != nil {
			return err
		}
	}
	if cfg.Checkpoint {
		if err := r.Checkpoint(map[string]int{"n": cfg.Records}); err != nil {
			return err
		}
	}
	if cfg.Block {
		<-ctx.Done()
		return ctx.Err()
	}
	switch cfg.Fail {
	case "":
		return nil
	case "plain":
		return errors.New("plain failure")
	case "retryable":
		return sdk.Retryable(errors.New("try again"))
	case "rejected":
		return sdk.CredentialRejected("provider said 401")
	case "code":
		return sdk.Fail("probe_code", "coded failure")
	case "panic":
		panic("probe panicked")
	case "leak":
		return fmt.Errorf("request with token %s failed", token)
	}
	return fmt.Errorf("probe: unknown fail %q", cfg.Fail)
}

// Check reports PROBE_USER as the identity, or rejects user "nobody".
func (Probe) Check(_ context.Context, c *sdk.Check) (string, error) {
	var cfg Config
	if err := c.Config(&cfg); err != nil {
		return "", err
	}
	user := c.Credential(UserEnv)
	if user == "nobody" {
		return "", sdk.CredentialRejected("unknown user")
	}
	return user, nil
}

var _ sdk.ConnectorWithCheck = Probe{}
