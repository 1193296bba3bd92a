package imapconn

import (
	"errors"
	"fmt"

	"github.com/connhost/connhost/sdk"
)

// Sentinel errors. Run and Check return them wrapped inside the typed SDK
// failures that decide how the host treats the run: a login the server
// refuses is sdk.CredentialRejected (the host marks the credential invalid
// and does not retry); a network or TLS failure, and a server that says it
// is unavailable, are retryable (sdk.Retryable); a config rule broken is
// invalid_config; the rest fail the run with connector_failed.
var (
	// ErrInvalidConfig wraps every rule a connection config breaks. It
	// wraps sdk.ErrInvalidConfig, so the host records invalid_config.
	ErrInvalidConfig error = &wrapped{msg: "imap: invalid config", err: sdk.ErrInvalidConfig}
	// ErrInvalidConnector wraps every rule a Connector's settings break.
	ErrInvalidConnector = errors.New("imap: invalid Connector settings")
	// ErrInvalidCredential is returned for an IMAP_USERNAME or
	// IMAP_PASSWORD holding a control character (CR or LF would end the
	// LOGIN command early). It is reported as a rejected credential.
	ErrInvalidCredential = errors.New("imap: IMAP_USERNAME or IMAP_PASSWORD holds a control character")
	// ErrLoginRefused is wrapped by the credential_rejected failure of a
	// LOGIN the server answered NO.
	ErrLoginRefused = errors.New("imap: the server refused the login")
	// ErrNetwork is wrapped by the retryable failure of a connection that
	// could not be made, timed out or was lost.
	ErrNetwork = errors.New("imap: network")
	// ErrTLS is wrapped by the retryable failure of a TLS handshake: a
	// certificate not trusted or not for the host, or a server that does
	// not speak TLS where the config says it does.
	ErrTLS = errors.New("imap: TLS")
	// ErrUnavailable is wrapped by the retryable failure of a command the
	// server refused as temporarily unavailable ([UNAVAILABLE], BYE).
	ErrUnavailable = errors.New("imap: server unavailable")
	// ErrNoMailbox is returned when a mailbox the config names does not
	// exist or cannot be selected. It wraps ErrInvalidConfig.
	ErrNoMailbox = fmt.Errorf("%w: mailbox not found", ErrInvalidConfig)
	// ErrProtocol is returned for an answer the connector cannot use: a
	// command refused for another reason, a SELECT without UIDVALIDITY, a
	// server without STARTTLS when the config asks for it.
	ErrProtocol = errors.New("imap: unexpected server response")
	// ErrOtherAccount is wrapped by the invalid_config failure of a run
	// whose checkpoint was collected from another server or login.
	ErrOtherAccount = errors.New("imap: the checkpoint belongs to another account")
	// ErrStateTooLarge is returned when the checkpoint of every mailbox
	// does not fit the SDK's limit.
	ErrStateTooLarge = errors.New("imap: checkpoint too large")
)

// wrapped is a sentinel that wraps another without repeating its text:
// "imap: invalid config", not "imap: sdk: invalid config".
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }
