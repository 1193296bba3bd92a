package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/connhost/connhost/host/api/client"
	"github.com/connhost/connhost/host/server"
	"github.com/connhost/connhost/keysets"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// Environment variables the CLI reads.
const (
	EnvAddr    = "CONNHOST_ADDR"
	EnvToken   = "CONNHOST_TOKEN"
	EnvDataDir = "CONNHOST_DATA_DIR"
)

// Defaults of the global flags.
const (
	DefaultAddr    = "http://127.0.0.1:7480"
	DefaultDataDir = "./var"
)

// Runtime is everything the CLI touches outside itself: its streams, its
// environment, and the host functions `serve` and `keyset init` call.
// Main fills it from the process; tests fill what they need (nil fields
// get the process's defaults, except the streams, which default to empty
// input and discarded output).
type Runtime struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// StdinTerminal, StdoutTerminal and StderrTerminal report whether the
	// streams are terminals: a progress bar is drawn only on a terminal,
	// and `credential set` prompts only when stdin is one.
	StdinTerminal, StdoutTerminal, StderrTerminal bool
	// ReadPassword reads one line from the terminal on stdin without echo
	// (term.ReadPassword); nil when stdin is not a terminal.
	ReadPassword func() ([]byte, error)
	// LookupEnv reads the CLI's own settings (CONNHOST_ADDR, …).
	LookupEnv func(string) (string, bool)
	// Environ is the host environment `serve` hands the server.
	Environ func() []string
	// HTTPClient is the API client's transport (nil: a default client).
	HTTPClient *http.Client
	// Serve runs the host (server.Run).
	Serve func(context.Context, server.Config) error
	// InitKeyset creates the keyset (server.InitKeyset).
	InitKeyset func(ctx context.Context, dataDir string, kek keysets.Source, logger hclog.Logger) (keysets.Info, error)
	// ReadToken reads the operator token from a data dir (server.ReadToken).
	ReadToken func(dataDir string) (string, error)
	// PollInterval is how often run --wait/--follow re-reads a run when
	// its event stream is unavailable (default 500ms).
	PollInterval time.Duration
}

func (rt Runtime) withDefaults() Runtime {
	if rt.Stdin == nil {
		rt.Stdin = strings.NewReader("")
	}
	if rt.Stdout == nil {
		rt.Stdout = io.Discard
	}
	if rt.Stderr == nil {
		rt.Stderr = io.Discard
	}
	if rt.LookupEnv == nil {
		rt.LookupEnv = os.LookupEnv
	}
	if rt.Environ == nil {
		rt.Environ = os.Environ
	}
	if rt.Serve == nil {
		rt.Serve = server.Run
	}
	if rt.InitKeyset == nil {
		rt.InitKeyset = server.InitKeyset
	}
	if rt.ReadToken == nil {
		rt.ReadToken = server.ReadToken
	}
	if rt.PollInterval <= 0 {
		rt.PollInterval = defaultPollInterval
	}
	return rt
}

// Main runs the connhost command line with the process's arguments
// (without the program name), streams and environment, and returns the
// exit status. SIGINT and SIGTERM cancel the command's context (for serve:
// a graceful shutdown); a second signal kills the process.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal ends the process
	}()
	rt := Runtime{
		Stdin:          os.Stdin,
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		StdinTerminal:  term.IsTerminal(int(os.Stdin.Fd())),
		StdoutTerminal: term.IsTerminal(int(os.Stdout.Fd())),
		StderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
	if rt.StdinTerminal {
		rt.ReadPassword = func() ([]byte, error) { return term.ReadPassword(int(os.Stdin.Fd())) }
	}
	return Run(ctx, args, rt)
}

// Run runs the command line args against rt and returns the exit status.
// Errors are printed to rt.Stderr as "error: <code>: <message>" and, with
// -o json, also to rt.Stdout as {"error":{"code","message",…}}.
func Run(ctx context.Context, args []string, rt Runtime) int {
	a := &app{rt: rt.withDefaults()}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.rt.Stdin)
	root.SetOut(a.rt.Stdout)
	root.SetErr(a.rt.Stderr)

	// A credential value typed into argv must be refused before cobra
	// parses it: cobra's own errors would echo it back.
	if cmd, err := refuseArgvSecrets(root, args); err != nil {
		return a.report(cmd, err)
	}
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		return a.report(cmd, err)
	}
	return ExitOK
}

// report prints err and returns its exit status. This is the one place
// errors are shown: with -o json every failure is also a JSON object on
// stdout, {"error":{"code","message",…}}, unless the command already
// printed its result there (a run that did not succeed prints the run).
func (a *app) report(cmd *cobra.Command, err error) int {
	var ce *cmdError
	if !errors.As(err, &ce) {
		// Only RunE errors are classified (see app.wrap); anything else is
		// cobra rejecting the command line.
		ce = &cmdError{code: CodeUsage, msg: err.Error(), exit: ExitUsage}
	}
	if a.json() && !ce.printed {
		_ = printJSON(a.rt.Stdout, ce.jsonBody())
	}
	fmt.Fprintf(a.rt.Stderr, "error: %s: %s\n", ce.code, ce.msg)
	if ce.code == CodeUsage && cmd != nil {
		fmt.Fprintf(a.rt.Stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ce.exit
}

// app holds the global flags and the lazily built API client.
type app struct {
	rt      Runtime
	addr    string
	token   string
	dataDir string
	output  string

	root   *cobra.Command
	client *client.Client
	// tokenSource says where the operator token came from ("the --token
	// flag", …), for the message of a refused token; never the token.
	tokenSource string
}

func (a *app) rootCommand() *cobra.Command {
	root := group(&cobra.Command{
		Use:   "connhost",
		Short: "Run data connectors as plugins, on schedules, with stored encrypted credentials",
		Long: `connhost is a connector host: one binary that runs data connectors as plugin
subprocesses on schedules and on demand, with each connection's static secret
stored encrypted and resolved through one credential broker for every run.

"connhost serve" runs the host. Every other command talks to its HTTP API:
--addr (or CONNHOST_ADDR) says where, and the operator token comes from
--token, CONNHOST_TOKEN, or the token file the server wrote into its data dir
(--data-dir or CONNHOST_DATA_DIR, default ./var).

Secrets are never taken from arguments: "connhost credential set" reads
NAME=VALUE lines from stdin or a file.

Exit status: 0 success, 1 error reported by the host or a failure to reach
it, 2 usage error (bad flags, arguments or input), 3 a run waited for
(run --wait/--follow) ended, or was refused, without succeeding.

Errors are printed on stderr as "error: <code>: <message>". With -o json
every failure is also printed on stdout as one JSON object,
{"error":{"code","message","field","run_id","http_status","addr","exit_status"}}
(members without a value left out), except for a run that did not succeed:
stdout then holds the run itself (status, failure_code, failure_message).

Shell completion: see "connhost completion --help".`,
		Example: `  connhost serve --data-dir ./var --plugin-dir ./bin/plugins
  connhost connector list
  connhost connection create --connector demo --label quickstart --schedule "@every 1m" --config '{"records":5}'
  echo "DEMO_TOKEN=..." | connhost credential set CONNECTION_ID
  connhost run CONNECTION_ID --follow`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != OutputText && a.output != OutputJSON {
				return usageErrorf("-o/--output must be %s or %s", OutputText, OutputJSON)
			}
			return refuseEmptyRequired(cmd)
		},
	})
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cmdError{code: CodeUsage, msg: err.Error(), exit: ExitUsage}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.addr, "addr", DefaultAddr, "API address (env "+EnvAddr+")")
	pf.StringVar(&a.token, "token", "", "operator token (env "+EnvToken+"; default: read from the data dir)")
	pf.String("ca-file", "", "PEM CA certificate trusted for an https:// --addr, besides the system's (env "+EnvCAFile+")")
	pf.StringVar(&a.dataDir, "data-dir", DefaultDataDir, "data directory (env "+EnvDataDir+")")
	pf.StringVarP(&a.output, "output", "o", OutputText, "output format: text or json")

	root.AddGroup(
		&cobra.Group{ID: "host", Title: "Host:"},
		&cobra.Group{ID: "resources", Title: "Connectors, connections and credentials:"},
		&cobra.Group{ID: "runs", Title: "Runs and data:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("host", a.serveCommand(), a.hostsCommand(), a.keysetCommand(), a.enrollmentCommand(), a.attentionCommand(), a.auditCommand(), a.versionCommand(),
		a.uiCommand(), a.completionCommand())
	add("resources", a.connectorCommand(), a.connectionCommand(), a.credentialCommand())
	add("runs", a.runCommand(), a.runsCommand(), a.recordsCommand())
	root.SetHelpCommandGroupID("host")
	a.root = root
	a.registerCompletions(root)
	markNonEmpty(root, nonEmptyFlags...)
	return root
}

// nonEmptyFlags are flags that are never valid empty, on whichever command
// has them, required or not (connection update --label "" too).
var nonEmptyFlags = []string{"label"}

// annotationNonEmpty marks a string flag that may not be given empty.
const annotationNonEmpty = "connhost/non-empty"

// markNonEmpty annotates the named flags of every command under c.
func markNonEmpty(c *cobra.Command, names ...string) {
	for _, sub := range c.Commands() {
		markNonEmpty(sub, names...)
	}
	for _, n := range names {
		if c.LocalNonPersistentFlags().Lookup(n) != nil {
			_ = c.Flags().SetAnnotation(n, annotationNonEmpty, []string{"true"})
		}
	}
}

// refuseEmptyRequired refuses a required (or non-empty) string flag given
// an empty or blank value (--label ""): cobra counts it as set.
func refuseEmptyRequired(cmd *cobra.Command) error {
	var empty string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if empty != "" || !f.Changed || f.Value.Type() != "string" || strings.TrimSpace(f.Value.String()) != "" {
			return
		}
		for _, a := range []string{cobra.BashCompOneRequiredFlag, annotationNonEmpty} {
			if v := f.Annotations[a]; len(v) > 0 && v[0] == "true" {
				empty = f.Name
			}
		}
	})
	if empty != "" {
		return usageErrorf("--%s is empty: it needs a value", empty)
	}
	return nil
}

// setting resolves a global setting: the flag when given, else the
// environment variable when set and not empty, else the flag's default.
func (a *app) setting(flag, env string) string {
	f := a.root.PersistentFlags().Lookup(flag)
	if f.Changed {
		return f.Value.String()
	}
	if v, ok := a.rt.LookupEnv(env); ok && v != "" {
		return v
	}
	return f.DefValue
}

// addrSource says where the resolved --addr came from.
func (a *app) addrSource() string {
	if a.root.PersistentFlags().Lookup("addr").Changed {
		return "from --addr"
	}
	if v, ok := a.rt.LookupEnv(EnvAddr); ok && v != "" {
		return "from " + EnvAddr
	}
	return "the default"
}

// dataDirectory is the resolved --data-dir.
func (a *app) dataDirectory() string { return a.setting("data-dir", EnvDataDir) }

// api returns the API client, built on first use.
func (a *app) api() (*client.Client, error) {
	if a.client != nil {
		return a.client, nil
	}
	token, err := a.operatorToken()
	if err != nil {
		return nil, err
	}
	hc, err := a.httpClient()
	if err != nil {
		return nil, err
	}
	c, err := client.New(a.setting("addr", EnvAddr), token, hc)
	if err != nil {
		return nil, usageErrorf("--addr: %v", err)
	}
	a.client = c
	return c, nil
}

// operatorToken resolves the token: --token, CONNHOST_TOKEN, then the
// token file in the data dir.
func (a *app) operatorToken() (string, error) {
	if f := a.root.PersistentFlags().Lookup("token"); f.Changed {
		if a.token == "" {
			return "", usageErrorf("--token is empty")
		}
		a.tokenSource = "the --token flag"
		return a.token, nil
	}
	if v, ok := a.rt.LookupEnv(EnvToken); ok && v != "" {
		a.tokenSource = "the " + EnvToken + " environment variable"
		return v, nil
	}
	dir := a.dataDirectory()
	a.tokenSource = "the token file " + filepath.Join(dir, server.TokenFile)
	tok, err := a.rt.ReadToken(dir)
	switch {
	case err == nil:
	case errors.Is(err, server.ErrNoToken) && !fileExists(filepath.Join(dir, server.TokenFile)):
		return "", newError(CodeNoToken, ExitError,
			"no operator token: there is no token file %s (a host writes it at its first start in that data dir): pass --token, set %s, or point --data-dir (%s) at the server's data dir",
			filepath.Join(dir, server.TokenFile), EnvToken, EnvDataDir)
	default:
		return "", newError(CodeNoToken, ExitError,
			"no usable operator token: %s: fix the file, pass --token, or set %s", sentence(err), EnvToken)
	}
	return tok, nil
}

// json reports whether -o json was asked.
func (a *app) json() bool { return a.output == OutputJSON }

// wrap adapts a command body to cobra, classifying its errors so Run can
// tell them from cobra's usage errors.
func (a *app) wrap(fn func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd.Context(), args); err != nil {
			return a.classify(err)
		}
		return nil
	}
}

// group makes cmd a command group: without arguments it prints its help;
// with one it reports an unknown command (exit 2) rather than printing
// help and succeeding, as cobra does for a command without a Run.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %s for %s", shown(args[0]), c.CommandPath())
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

var wordRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// shown quotes a command word, or says it is not shown when it does not
// look like one: a mistyped secret must not be echoed.
func shown(arg string) string {
	if wordRE.MatchString(arg) {
		return strconv.Quote(arg)
	}
	return "(argument not shown)"
}

// args checks the positional arguments against names, without echoing
// them (an argument can be a mistyped secret).
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		if len(got) != len(names) {
			if len(names) == 0 {
				return usageErrorf("%s takes no arguments (got %d)", cmd.CommandPath(), len(got))
			}
			return usageErrorf("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(got))
		}
		for i, g := range got {
			if strings.TrimSpace(g) == "" {
				return usageErrorf("%s is empty", names[i])
			}
		}
		return nil
	}
}

// fileExists reports whether path names something that exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
