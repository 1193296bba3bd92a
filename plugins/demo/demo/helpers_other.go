//go:build !unix

package demo

import "fmt"

// startHelpers is a Unix test knob.
func startHelpers(n int) error {
	if n > 0 {
		return fmt.Errorf("%w: helpers: needs a Unix system", ErrInvalidConfig)
	}
	return nil
}
