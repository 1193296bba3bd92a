//go:build !unix

package server

// lockDataDir is a no-op where flock(2) is unavailable; connhost supports
// unix hosts only.
func lockDataDir(string) (func(), error) { return func() {}, nil }
