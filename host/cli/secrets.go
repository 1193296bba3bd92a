package cli

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// maxCredentialInput bounds what `credential set` reads: a credential is a
// few named values, not a file upload.
const maxCredentialInput = 256 << 10

// annotationSecretArgs marks a command whose arguments are scanned for
// secrets before parsing (see refuseArgvSecrets): "set" for credential set
// (one positional argument, the id), "group" for its parent (a mistyped
// subcommand followed by a value).
const annotationSecretArgs = "connhost/refuse-secret-args"

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Reasons an input line is refused. An inputError carries one of these,
// a line number and at most a validated name: never any other text of the
// input, which holds secrets.
const (
	reasonNotAssignment = "is not NAME=VALUE (the line is not shown)"
	reasonBadName       = "does not start with a valid environment variable name (the line is not shown)"
	reasonEmptyValue    = "has an empty value"
	reasonDuplicate     = "repeats a name given earlier"
	reasonNotUTF8       = "has a value that is not valid UTF-8"
	reasonNUL           = "has a value containing a NUL byte"
	reasonNoValues      = "no NAME=VALUE lines in the input"
	reasonTooLarge      = "input is larger than 256 KiB"
)

// inputError is a refused credential input.
type inputError struct {
	Line   int    // 1-based; 0 for the whole input
	Name   string // a valid env name, or ""
	Reason string // one of the reason constants
}

func (e *inputError) Error() string {
	switch {
	case e.Line == 0:
		return e.Reason
	case e.Name != "":
		return fmt.Sprintf("line %d: %s %s", e.Line, e.Name, e.Reason)
	default:
		return fmt.Sprintf("line %d %s", e.Line, e.Reason)
	}
}

// readCredentialInput reads at most maxCredentialInput bytes of NAME=VALUE
// lines and parses them.
func readCredentialInput(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCredentialInput+1))
	defer clear(data)
	if err != nil {
		return nil, fmt.Errorf("read credential input: %w", err)
	}
	if len(data) > maxCredentialInput {
		return nil, &inputError{Reason: reasonTooLarge}
	}
	return parseCredentialLines(data)
}

// parseCredentialLines parses NAME=VALUE lines. Blank lines and lines
// starting with '#' (after leading spaces) are ignored; "\r\n" line ends
// are accepted; the name is trimmed of surrounding spaces; the value is
// everything after the first '=', verbatim, so it may contain '=' and
// spaces. Quotes are not interpreted. Each name may appear once, and no
// value may be empty: an empty value is what the host treats as absent.
func parseCredentialLines(data []byte) (map[string]string, error) {
	values := map[string]string{}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		line := string(bytes.TrimSuffix(raw, []byte("\r")))
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, &inputError{Line: n, Reason: reasonNotAssignment}
		}
		name = strings.TrimSpace(name)
		switch {
		case !envNameRE.MatchString(name):
			return nil, &inputError{Line: n, Reason: reasonBadName}
		case value == "":
			return nil, &inputError{Line: n, Name: name, Reason: reasonEmptyValue}
		case !utf8.ValidString(value):
			// JSON would silently replace the bad bytes: the stored
			// secret would not be the one given.
			return nil, &inputError{Line: n, Name: name, Reason: reasonNotUTF8}
		case strings.ContainsRune(value, 0):
			return nil, &inputError{Line: n, Name: name, Reason: reasonNUL}
		}
		if _, dup := values[name]; dup {
			return nil, &inputError{Line: n, Name: name, Reason: reasonDuplicate}
		}
		values[name] = value
	}
	if len(values) == 0 {
		return nil, &inputError{Reason: reasonNoValues}
	}
	return values, nil
}

// errSecretInArgv is the refusal of a credential value on the command
// line. It never repeats the argument.
func errSecretInArgv(what string) error {
	return newError(CodeSecretInArgv, ExitUsage,
		"%s; it was not used and is not shown. Credential values are never taken from the command line, "+
			"where shell history and process listings keep them: pipe NAME=VALUE lines on stdin "+
			"(connhost credential set ID < file) or use --from-file. Clear the value from your shell history", what)
}

// refuseArgvSecrets scans the command line of a command annotated with
// annotationSecretArgs before cobra parses it (cobra's errors quote
// arguments back). It refuses any positional argument beyond the first,
// any NAME=VALUE-looking argument or unknown flag, and reports unknown
// flags without quoting them.
//
// It returns the command found, for the usage hint.
func refuseArgvSecrets(root *cobra.Command, args []string) (*cobra.Command, error) {
	cmd, _, err := root.Find(args)
	if err != nil || cmd.Annotations[annotationSecretArgs] == "" {
		return root, nil
	}
	cmd.InitDefaultHelpFlag() // cobra adds --help lazily, at execution
	lookup := func(long, short string) *pflag.Flag {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
			if long != "" {
				if f := fs.Lookup(long); f != nil {
					return f
				}
			} else if f := fs.ShorthandLookup(short); f != nil {
				return f
			}
		}
		return nil
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		s := args[i]
		switch {
		case s == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(s, "--"):
			name, _, hasValue := strings.Cut(s[2:], "=")
			f := lookup(name, "")
			if f == nil {
				if hasValue || !envNameRE.MatchString(strings.ReplaceAll(name, "-", "_")) {
					return cmd, errSecretInArgv("an unknown flag carrying a value was given")
				}
				return cmd, usageErrorf("unknown flag --%s", name)
			}
			if !hasValue && f.NoOptDefVal == "" {
				i++ // the flag's value is the next argument
			}
		case strings.HasPrefix(s, "-") && len(s) > 1:
			f := lookup("", s[1:2])
			if f == nil {
				return cmd, errSecretInArgv("an unknown short flag was given")
			}
			if len(s) == 2 && f.NoOptDefVal == "" {
				i++
			}
		default:
			positional = append(positional, s)
		}
	}
	// Find succeeded, so the first positionals are the command path.
	depth := len(strings.Fields(cmd.CommandPath())) - 1
	if len(positional) < depth {
		return cmd, nil
	}
	rest := positional[depth:]
	for _, p := range rest {
		if strings.Contains(p, "=") {
			return cmd, errSecretInArgv("an argument of the form NAME=VALUE was given")
		}
	}
	if len(rest) > 1 && cmd.Annotations[annotationSecretArgs] == "set" {
		return cmd, errSecretInArgv(fmt.Sprintf("%s takes one argument, the connection id, and %d extra argument(s) were given", cmd.CommandPath(), len(rest)-1))
	}
	return cmd, nil
}

var _ error = (*inputError)(nil)
