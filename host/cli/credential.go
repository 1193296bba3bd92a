package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

func (a *app) credentialCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "credential",
		Aliases: []string{"credentials"},
		Short:   "Capture, rotate, inspect, revoke and delete a connection's credential",
		Long: `A connection's credential holds the named secret values its connector needs
(for the demo connector: DEMO_TOKEN). It is stored encrypted, and every run of
the connection, scheduled or manual, gets exactly these values.

Values are read from stdin or a file, never from arguments. Reads show
metadata only: names, state and timestamps, never a value.`,
		Example: `  printf 'DEMO_TOKEN=%s\n' "$DEMO_TOKEN" | connhost credential set CONNECTION_ID   # the service's token, not the operator token
  connhost credential set CONNECTION_ID --from-file ./demo.env
  connhost credential show CONNECTION_ID -o json`,
		Annotations: map[string]string{annotationSecretArgs: "group"},
	})
	cmd.AddCommand(
		a.credentialSetCommand(),
		a.credentialReadCommand("show", "Show a credential's metadata (never its values)",
			`Show whether the connection has a credential, its state (none, active, revoked,
deleted, quarantined), value names, capture and rotation times and the last
validity check. Values are never shown.`,
			(*client.Client).GetCredential),
		a.credentialReadCommand("revoke", "Revoke a credential: future runs are refused",
			`Revoke keeps the encrypted credential but refuses every future run of the
connection with static_secret_credential_unavailable, without falling back to
any other secret. Capture a new credential with "credential set" to run again.`,
			(*client.Client).RevokeCredential),
		a.credentialReadCommand("delete", "Delete a credential's encrypted values",
			`Delete removes the encrypted values and keeps a tombstone, so runs are refused
with static_secret_credential_unavailable (not treated as "never stored").
Capture a new credential with "credential set" to run again.`,
			(*client.Client).DeleteCredential),
	)
	return cmd
}

func (a *app) credentialSetCommand() *cobra.Command {
	var fromFile string
	cmd := &cobra.Command{
		Use:   "set ID [--from-file FILE]",
		Short: "Capture or rotate a credential from NAME=VALUE lines on stdin",
		Long: `Capture the connection's credential, or rotate it if one is active, from
NAME=VALUE lines read on stdin (or from --from-file; "-" is stdin).

The value is everything after the first '=', verbatim (it may contain '=' and
spaces; quotes are not removed). Blank lines and lines starting with '#' are
ignored; a name may appear once. A value is at least 8 bytes: connhost
redacts every value from what a connector writes, and a shorter one would
match inside ordinary words, so the marks would spell it out (the host
answers secret_too_short, naming the NAME). On a terminal the lines are read
without echo, until an empty line.

Values given as arguments are refused and never echoed. Only metadata is
printed: names, state and timestamps, and the outcome of the connector's
check that follows the capture. Only a verdict (valid, or the credential
rejected) is recorded as the credential's validity; a check that could not
tell (a network or TLS failure, a config the connector refuses, a crash or
timeout) prints "check: inconclusive: …" and records no validity: the new
credential stays unchecked until a check or run can tell. A revoked connection's credential
cannot be set: the host refuses it (connection_revoked) before any plugin
starts.`,
		Example: `  printf 'DEMO_TOKEN=%s\n' "$DEMO_TOKEN" | connhost credential set CONNECTION_ID   # the service's token, not the operator token
  connhost credential set CONNECTION_ID --from-file ./demo.env -o json`,
		Args:        args("ID"),
		Annotations: map[string]string{annotationSecretArgs: "set"},
	}
	cmd.RunE = a.wrap(func(ctx context.Context, args []string) error {
		values, err := a.readCredential(fromFile)
		if err != nil {
			return err
		}
		c, err := a.api()
		if err != nil {
			return err
		}
		cred, err := c.SetCredential(ctx, args[0], apitypes.CredentialSetRequest{Values: values})
		for k := range values {
			values[k] = ""
		}
		if err != nil {
			return err
		}
		return a.printCredential(args[0], cred)
	})
	cmd.Flags().StringVar(&fromFile, "from-file", "", `read NAME=VALUE lines from this file ("-" is stdin)`)
	return cmd
}

// readCredential reads the NAME=VALUE input of credential set.
func (a *app) readCredential(fromFile string) (map[string]string, error) {
	var r io.Reader
	switch {
	case fromFile != "" && fromFile != "-":
		f, err := os.Open(fromFile)
		if err != nil {
			// Not the path: a value mistakenly given as --from-file=VALUE
			// would be echoed by the *PathError.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, newError(CodeInvalidInput, ExitUsage, "cannot open --from-file: %v", err)
		}
		defer f.Close()
		r = f
	case a.rt.StdinTerminal && a.rt.ReadPassword != nil:
		return a.promptCredential()
	default:
		r = a.rt.Stdin
	}
	values, err := readCredentialInput(r)
	if err != nil {
		var ie *inputError
		if errors.As(err, &ie) {
			return nil, newError(CodeInvalidInput, ExitUsage, "credential input: %v", ie)
		}
		return nil, err
	}
	return values, nil
}

// promptCredential reads NAME=VALUE lines from a terminal without echo,
// until an empty line.
func (a *app) promptCredential() (map[string]string, error) {
	var lines []string
	defer func() { clear(lines) }()
	fmt.Fprint(a.rt.Stderr, "Enter NAME=VALUE lines (input is hidden); an empty line ends.\n")
	for {
		fmt.Fprint(a.rt.Stderr, "> ")
		line, err := a.rt.ReadPassword()
		fmt.Fprint(a.rt.Stderr, "\n")
		if err != nil {
			return nil, newError(CodeInvalidInput, ExitUsage, "read from terminal: %v", err)
		}
		if len(line) == 0 {
			break
		}
		lines = append(lines, string(line))
		clear(line)
	}
	values, err := parseCredentialLines([]byte(strings.Join(lines, "\n")))
	if err != nil {
		return nil, newError(CodeInvalidInput, ExitUsage, "credential input: %v", err)
	}
	return values, nil
}

func (a *app) credentialReadCommand(name, short, long string, call func(*client.Client, context.Context, string) (apitypes.Credential, error)) *cobra.Command {
	return &cobra.Command{
		Use:     name + " ID",
		Short:   short,
		Long:    long,
		Example: "  connhost credential " + name + " CONNECTION_ID -o json",
		Args:    args("ID"),
		RunE: a.wrap(func(ctx context.Context, args []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			cred, err := call(c, ctx, args[0])
			if err != nil {
				return err
			}
			return a.printCredential(args[0], cred)
		}),
	}
}

func (a *app) printCredential(connectionID string, k apitypes.Credential) error {
	if a.json() {
		if k.Names == nil {
			k.Names = []string{}
		}
		return printJSON(a.rt.Stdout, k)
	}
	names := slices.Clone(k.Names)
	slices.Sort(names)
	kv := [][2]string{
		{"connection", connectionID},
		{"present", yesNo(k.Present)},
		{"kind", k.Kind},
		{"state", k.State},
		{"names", list(names)},
		{"key id", keyID(k.KeyID)},
		{"captured at", ts(k.CapturedAt)},
		{"rotated at", ts(k.RotatedAt)},
	}
	if k.RevokedAt != "" {
		kv = append(kv, [2]string{"revoked at", ts(k.RevokedAt)})
	}
	if k.DeletedAt != "" {
		kv = append(kv, [2]string{"deleted at", ts(k.DeletedAt)})
	}
	if v := k.Validity; v != nil {
		valid := "valid"
		if !v.Valid {
			valid = "invalid"
		}
		if v.Message != "" {
			valid += ": " + v.Message
		}
		kv = append(kv, [2]string{"validity", valid + " (checked " + ts(v.CheckedAt) + ")"})
	}
	if c := k.Check; c != nil {
		kv = append(kv, [2]string{"check", checkLine(c)})
	}
	return fields(a.rt.Stdout, kv)
}

// checkLine describes the check that followed a capture: a verdict is
// the credential's validity now; an inconclusive check is not recorded.
func checkLine(c *apitypes.CredentialCheck) string {
	switch {
	case !c.Verdict:
		return "inconclusive: " + orText(c.Message, "no verdict") + " (validity not recorded)"
	case c.Valid:
		return orText(c.Message, "valid")
	}
	return "invalid: " + orText(c.Message, "the connector rejected the credential")
}

// orText is s, or def when s is empty.
func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func keyID(id uint32) string {
	if id == 0 {
		return ""
	}
	return itoa(id)
}
