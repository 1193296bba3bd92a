//go:build !unix

package keysets

import "context"

// lockPath is a no-op where flock(2) is unavailable; connhost supports unix
// hosts only, and concurrent rotations there are an operator error.
func lockPath(context.Context, string) (func(), error) { return func() {}, nil }
