package sdktest

import (
	"bytes"
	"sync"
)

// LogBuffer collects what a connector logs (give it as
// Options.LogOutput) for assertions, such as a secret that must not
// appear. It is safe for the concurrent writes of a run's goroutines and
// of a subprocess's log relay; the zero value is ready to use.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
