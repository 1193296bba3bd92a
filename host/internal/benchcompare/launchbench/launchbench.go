// Package launchbench measures a connhost launch as the launch package's
// BenchmarkLaunch does, through the package's exported API: from the Run
// call to the first message of plugins/demo (a run of one record), and a
// bare fork/exec of the same binary running to exit (the demo exits at
// once when not started by a host).
//
// spec.go is the one place that knows how a launch names its binary: a
// change of that API touches only it.
package launchbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/connhost/connhost/host/launch"
	"github.com/connhost/connhost/sdk/wire"
	"github.com/hashicorp/go-hclog"
)

// token is the demo's credential in these launches (not a secret).
const token = "bench-demo-token-51c2"

// ErrNoMessage is returned when a run ended without a message.
var ErrNoMessage = errors.New("launchbench: the run emitted no message")

// ErrRanWithoutHost is returned when the demo, exec'd without a host,
// exited 0: it should refuse to run.
var ErrRanWithoutHost = errors.New("launchbench: the demo ran without a host")

// Launcher launches the demo binary with one AutoMTLS setting.
type Launcher struct {
	l    *launch.Launcher
	spec launch.Spec
	req  wire.RunRequest
	path string
	env  []string
}

// New prepares launches of the demo binary at demoPath. tempDir holds the
// launches' socket directories.
func New(demoPath string, autoMTLS bool, tempDir string) (*Launcher, error) {
	l, err := launch.New(launch.Config{DisableAutoMTLS: !autoMTLS, Logger: hclog.NewNullLogger(), TempDir: tempDir})
	if err != nil {
		return nil, err
	}
	env := launch.BuildEnv(os.Environ(), launch.EnvSpec{
		Allowlist: launch.DefaultAllowlist, AuthRequired: []string{"DEMO_TOKEN"},
		Source: launch.SourceStored, Credential: map[string]string{"DEMO_TOKEN": token},
		ConnectionID: "conn-bench", RunID: "run-bench", Trigger: wire.TriggerManual,
	})
	spec, err := demoSpec(demoPath, env, []string{token})
	if err != nil {
		return nil, err
	}
	return &Launcher{
		l: l, spec: spec, path: demoPath, env: env,
		req: wire.RunRequest{RunID: "run-bench", ConnectionID: "conn-bench", Trigger: wire.TriggerManual,
			Config: json.RawMessage(`{"records":1}`)},
	}, nil
}

// FirstMessage runs the demo once and returns the time from the Run call
// to its first message (the whole call, graceful stop included, is not
// counted).
func (x *Launcher) FirstMessage(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var first time.Duration
	err := x.l.Run(ctx, x.spec, x.req, func(wire.Message) error {
		if first == 0 {
			first = time.Since(start)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("launchbench: run: %w", err)
	}
	if first == 0 {
		return 0, ErrNoMessage
	}
	return first, nil
}

// ForkExec runs the demo binary without a host, with the same
// environment, and returns the time to its exit.
func (x *Launcher) ForkExec(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	cmd := exec.CommandContext(ctx, x.path)
	cmd.Env = x.env
	err := cmd.Run()
	d := time.Since(start)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, ErrRanWithoutHost
	case !errors.As(err, &exit):
		return 0, fmt.Errorf("launchbench: fork/exec %s: %w", x.path, err)
	}
	return d, nil
}
