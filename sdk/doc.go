// Package sdk is what a connhost connector is written with. A connector is
// a small program that the connhost host starts as a plugin subprocess for
// each run; it reads data from somewhere (an API, a file, a database) and
// sends it to the host as records in named streams, with checkpoints that
// let the next run resume where this one stopped. The SDK hides the
// plugin protocol (go-plugin over gRPC), batching, backpressure and
// cancellation.
//
// # Getting started
//
// The SDK is a Go module of its own, github.com/connhost/connhost/sdk: a
// connector depends on it (and through it on go-plugin, gRPC, protobuf and
// hclog), never on the host. Start a connector with the host's CLI, from a
// connhost checkout where "make build" has run:
//
//	bin/connhost connector init tickets --dir ../tickets
//	cd ../tickets
//	go mod tidy
//	go test ./...
//	make build
//
// It writes a module of its own (go.mod, main.go, connector.go with the
// manifest and Run, connector_test.go with sdktest.Acceptance, a Makefile).
// The SDK is not published yet, so its go.mod replaces the SDK with the
// checkout's sdk/ directory (--sdk DIR chooses another). "make build"
// builds the plugin into the checkout's bin/plugins, the plugin directory
// that "make run" serves; a running host catalogues it on "connhost
// connector rescan" (or SIGHUP), a starting one at boot.
//
// A connector is a type with two methods, and a main that serves it:
//
//	package main
//
//	import (
//		"context"
//
//		"github.com/connhost/connhost/sdk"
//		"github.com/connhost/connhost/sdk/manifest"
//	)
//
//	type tickets struct{}
//
//	func (tickets) Manifest() manifest.Manifest {
//		return manifest.Manifest{
//			ConnectorKey: "tickets",
//			Version:      "0.1.0",
//			Auth:         manifest.Auth{Kind: manifest.AuthStaticSecret, Required: []string{"TICKETS_TOKEN"}},
//			Streams:      []manifest.Stream{{Name: "tickets", KeyFields: []string{"id"}}},
//		}
//	}
//
//	func (tickets) Run(ctx context.Context, r *sdk.Run) error {
//		token := r.Credential("TICKETS_TOKEN")
//		// … fetch tickets with token, then for each one:
//		return r.Emit("tickets", "T-1", map[string]any{"id": "T-1", "title": "Printer on fire"})
//	}
//
//	func main() { sdk.Serve(tickets{}) }
//
// Build it into the host's plugin directory (CGO_ENABLED=0 go build -o
// bin/plugins/tickets . for the bin/plugins of a checkout that "make run"
// serves, or the directory given to connhost serve --plugin-dir); the host
// catalogues it at start-up.
//
// # The manifest
//
// The manifest (package manifest) is declared in Go next to the code it
// describes. It names the connector (ConnectorKey, a short key such as
// "github", never a URL), its auth capability (Auth.Kind "static_secret"
// with the environment names of the secret in Auth.Required, or "none"),
// the non-secret variables it reads (EnvPassthrough), its streams and
// their key fields, a default schedule, and a JSON Schema for its config.
// Serve validates the manifest (manifest.Validate, with
// manifest.CheckSchedule for the schedule) before serving and exits with
// a message if it is invalid. Manifest is called once and must not depend
// on the environment.
//
// # The lifecycle
//
// For every run the host starts the plugin, and the SDK:
//
//  1. reads every name in Auth.Required from the environment. If any is
//     absent or empty it sends a credentials_required interaction naming
//     them (names only) and fails the run with code credentials_required,
//     without calling Run: connector code never sees an empty secret;
//  2. calls Connector.Run with the run's context and a *Run;
//  3. flushes pending records and reports Run's result: nil is success; an
//     error fails the run (see Failures); if the host cancelled the run or
//     its deadline passed, the outcome is the cancellation.
//
// Check (ConnectorWithCheck, optional) follows the same first step. The
// host calls it after an operator stores or rotates a credential, to
// record whether the provider accepts it. A connector without Check is
// reported valid as soon as its credentials are present.
//
// # Run
//
// A *Run carries the request: RunID, ConnectionID, Trigger ("scheduled",
// "retry" or "manual"), the connection's config (Config decodes it
// strictly into a struct; unknown fields are an error), and State, the
// last committed checkpoint. It sends:
//
//   - Emit(stream, key, value): one record, upserted by the host under
//     (connection, stream, key). value is marshalled with encoding/json.
//     Records are batched (MaxBatchRecords, MaxBatchBytes); Emit blocks
//     while the host applies backpressure and returns the context's error
//     once the run is cancelled, so a loop over Emit stops on its own.
//   - Checkpoint(state): flushes pending records, then the state the next
//     run resumes from. The host commits a checkpoint together with the
//     records before it, so a crash never skips records.
//   - Progress(stream, done, total, message): shown live to operators.
//
// Logger returns an hclog.Logger whose JSON lines reach the host's log
// with run_id and connection_id. Write logs there, not to stdout or
// stderr, which the plugin protocol owns.
//
// # Credentials
//
// Run.Credential(name) returns a secret declared in Auth.Required; asking
// for an undeclared name panics, as a typo would otherwise read nothing.
// The host resolves the secret (a value stored encrypted for the
// connection, or the host's environment when allowed) and puts it in the
// child's environment. Secrets must not appear in records, logs, or error
// messages; as a safety net the SDK replaces the run's credential values
// with [REDACTED] in its logger's output and in failure messages.
// Run.LookupEnv reads non-secret variables such as EnvPassthrough names.
//
// # Checkpoints
//
// A checkpoint is opaque to the host: any JSON value (or raw bytes) up to
// MaxCheckpointBytes. Read it back with DecodeState:
//
//	var st struct{ Since time.Time `json:"since"` }
//	if _, err := r.DecodeState(&st); err != nil {
//		return err
//	}
//	// … emit what changed after st.Since, then
//	return r.Checkpoint(struct{ Since time.Time `json:"since"` }{newest})
//
// Checkpoint after records are emitted, never before: a run that fails
// after a checkpoint resumes from it.
//
// # Failures
//
// A plain error fails the run with code connector_failed and the error's
// text, not retried. Fail(code, message) chooses the code;
// Retryable(err) asks the host to retry with backoff (a retry re-resolves
// the credential); CredentialRejected(message) reports that the provider
// refused the credential (for example HTTP 401), which an operator must fix
// by rotating it. A panic in Run fails the run with connector_failed and
// logs the stack.
//
// # Running locally
//
// A plugin binary refuses to run by hand: the host starts it with a
// handshake. To run a connector, put its binary in a plugin directory
// (bin/plugins under "make run") and start the host (connhost serve
// --plugin-dir DIR), or run "connhost connector rescan" if it is already
// serving, then create a
// connection, store its credential and trigger a run (connhost run CONN
// --follow). For quick iteration use package sdktest instead.
//
// # Testing with sdktest
//
// Package sdktest runs a connector in-process (sdktest.Run, sdktest.Check)
// through the same adapter Serve uses, with an environment given by the
// test, and as a real plugin subprocess (sdktest.Build, sdktest.RunPlugin,
// sdktest.Acceptance):
//
//	res := sdktest.Run(t, tickets{}, sdktest.Options{
//		Env: map[string]string{"TICKETS_TOKEN": "test-token"},
//	})
//	if res.Err != nil {
//		t.Fatal(res.Err)
//	}
//	if got := len(res.RecordsOf("tickets")); got != 1 {
//		t.Fatalf("got %d tickets, want 1", got)
//	}
//
// The demo connector (plugins/demo) is a complete example.
package sdk
