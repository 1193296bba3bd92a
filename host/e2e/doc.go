// Package e2e holds connhost's end-to-end tests: they build the real
// connhost and demo binaries, run `connhost serve` as a subprocess with a
// temporary data dir, and drive it only through the `connhost` CLI binary,
// as an operator would. They prove the seed's scenarios across process
// restarts and grep every output, every server log line and every byte of
// the data dir for the secret. They run with `go test ./...` (no build tag)
// and take a few seconds once the Go build cache is warm.
//
// TestChaos is the fault suite (`make chaos`): kill -9 of the host in the
// middle of a run whose plugin has left setsid and same-group helpers
// behind, CHAOS_CYCLES times (5 by default, 30 in make chaos), checking
// after each restart for orphans, the run's host_crashed, stale leases, a
// checkpoint ahead of its records, duplicate keys, the next run and the
// runtime dir; then damaged data dirs, each of which serve must refuse
// with no byte changed. It prints one summary line.
//
// TestConsoleInBrowser drives the web console at /ui/ in headless
// Chromium (Debian's chromium package, through chromedp; CONNHOST_CHROMIUM
// names another binary): sign-in through `connhost ui`'s one-time link, a
// demo connection created, its credential typed into the credential form,
// a run watched live to succeeded, its records, the credential revoked, the
// attention entry and the refused run. It checks every page's HTML, every
// response body and live event the browser received, the host's log and
// the data dir for the typed secret, and writes a screenshot of each main
// page to $CONNHOST_SCREENSHOTS (or under the test's temp dir). Without
// Chromium it skips, but under CI=true it fails.
//
// The package has no non-test code.
package e2e
