package github

import (
	"errors"
	"fmt"

	"github.com/connhost/connhost/sdk"
)

// Sentinel errors. Run and Check return them wrapped, inside the typed SDK
// failures that decide how the host treats the run: a rate limit that
// outlasts the run and an API that stays unavailable are retryable
// (sdk.Retryable), a refused token is sdk.CredentialRejected, a config
// rule broken is invalid_config, and the rest fail the run with
// connector_failed, not retried, because retrying cannot fix them.
var (
	// ErrInvalidConfig wraps every rule a connection config breaks. It
	// wraps sdk.ErrInvalidConfig, so the host records invalid_config.
	ErrInvalidConfig = fmt.Errorf("github: %w", sdk.ErrInvalidConfig)
	// ErrInvalidConnector wraps every rule a Connector's settings break.
	ErrInvalidConnector = errors.New("github: invalid Connector settings")
	// ErrInvalidAPIURL is returned for a GITHUB_API_URL that is not an
	// absolute https URL (http only for loopback hosts).
	ErrInvalidAPIURL = errors.New("github: invalid GITHUB_API_URL")
	// ErrInvalidToken is returned for a GITHUB_TOKEN holding whitespace or
	// control characters, which cannot travel in a header. It is reported
	// as a rejected credential.
	ErrInvalidToken = errors.New("github: GITHUB_TOKEN holds whitespace or control characters")
	// ErrRateLimited is wrapped by the retryable failure of a rate limit
	// whose wait would outlast the run's deadline (or MaxWait).
	ErrRateLimited = errors.New("github: rate limited")
	// ErrUnavailable is wrapped by the retryable failure of a request that
	// kept failing with a 5xx status or a transport error.
	ErrUnavailable = errors.New("github: API unavailable")
	// ErrForbidden is returned for a 403 that is not a rate limit: the
	// token lacks a permission.
	ErrForbidden = errors.New("github: forbidden")
	// ErrNotFound is returned for a 404 or 410.
	ErrNotFound = errors.New("github: not found")
	// ErrUnexpectedResponse is returned for a response the connector
	// cannot use: another status, a body that is not the JSON expected, a
	// body too large, or a Link header that is malformed or leads off the
	// API's origin.
	ErrUnexpectedResponse = errors.New("github: unexpected response")
	// ErrStateTooLarge is returned when even the smallest checkpoint is
	// larger than the SDK allows.
	ErrStateTooLarge = errors.New("github: checkpoint too large")
)
