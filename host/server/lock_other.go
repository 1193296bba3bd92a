//go:build !unix

package server

// dirLock is a no-op where flock(2) is unavailable; connhost supports
// unix hosts only.
type dirLock struct{}

func lockDataDir(string) (*dirLock, error) { return &dirLock{}, nil }

func (*dirLock) release()     {}
func (*dirLock) dropCreated() {}
