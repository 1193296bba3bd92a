// Package e2e holds connhost's end-to-end tests: they build the real
// connhost and demo binaries, run `connhost serve` as a subprocess with a
// temporary data dir, and drive it only through the `connhost` CLI binary,
// as an operator would. They prove the seed's scenarios across process
// restarts and grep every output, every server log line and every byte of
// the data dir for the secret. They run with `go test ./...` (no build tag)
// and take a few seconds once the Go build cache is warm.
//
// The package has no non-test code.
package e2e
