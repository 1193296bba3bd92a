package broker

import "errors"

// Errors.
var (
	// ErrNoKeyset is returned by Capture and Rotate when no keyset is
	// loaded.
	ErrNoKeyset = errors.New("broker: no keyset loaded")
	// ErrInvalidValues is wrapped by every capture validation error.
	ErrInvalidValues = errors.New("broker: invalid credential values")
	// ErrValueTooShort is wrapped (with ErrInvalidValues) by the error
	// for a value shorter than MinValueBytes.
	ErrValueTooShort = errors.New("broker: credential value too short")

	errUndecryptable = errors.New("broker: credential does not decrypt")
)
