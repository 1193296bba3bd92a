package cli

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

// completionTimeout bounds the API call behind one dynamic completion: a
// shell waits for it on every <TAB>.
const completionTimeout = 3 * time.Second

// completionLimit is how many connections or runs a completion offers.
const completionLimit = 200

func (a *app) completionCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "completion",
		Short: "Print a shell completion script: bash, zsh, fish or powershell",
		Long: `Print the completion script of connhost for a shell on stdout. Commands, flags
and fixed values complete offline; connection ids, run ids and connector keys
complete from the host, read with the same --addr and token as any command
(nothing is offered when the host cannot be reached).

  bash:  source <(connhost completion bash)    (e.g. in ~/.bashrc; works in a bare
         bash: the bash-completion package is used when loaded, not needed)
         or, with the bash-completion package:
         connhost completion bash > /etc/bash_completion.d/connhost
  zsh:   connhost completion zsh > "${fpath[1]}/_connhost"   (then start a new shell;
         "autoload -U compinit; compinit" must be in ~/.zshrc)
  fish:  connhost completion fish > ~/.config/fish/completions/connhost.fish`,
		Example: `  source <(connhost completion bash)
  connhost completion zsh > "${fpath[1]}/_connhost"
  connhost completion fish > ~/.config/fish/completions/connhost.fish`,
	})
	shells := []struct {
		name, how string
		gen       func(root *cobra.Command, w io.Writer) error
	}{
		{"bash", "source <(connhost completion bash)", genBash},
		{"zsh", `connhost completion zsh > "${fpath[1]}/_connhost"`, func(r *cobra.Command, w io.Writer) error { return r.GenZshCompletion(w) }},
		{"fish", "connhost completion fish > ~/.config/fish/completions/connhost.fish", func(r *cobra.Command, w io.Writer) error { return r.GenFishCompletion(w, true) }},
		{"powershell", "connhost completion powershell | Out-String | Invoke-Expression", func(r *cobra.Command, w io.Writer) error { return r.GenPowerShellCompletionWithDesc(w) }},
	}
	for _, sh := range shells {
		cmd.AddCommand(&cobra.Command{
			Use:               sh.name,
			Short:             "Print the " + sh.name + " completion script",
			Long:              "Print the " + sh.name + " completion script of connhost on stdout.",
			Example:           "  " + sh.how,
			Args:              args(),
			ValidArgsFunction: cobra.NoFileCompletions,
			RunE: a.wrap(func(context.Context, []string) error {
				return sh.gen(a.root, a.rt.Stdout)
			}),
		})
	}
	return cmd
}

// bashInitFallback replaces the fallback that cobra's bash script uses
// when the bash-completion package is not loaded: cobra's still calls
// _get_comp_words_by_ref, which only that package defines ("command not
// found" on a bare bash). This one uses the package when it is there, and
// otherwise splits the line up to the cursor on blanks itself, keeping
// "=" and ":" inside words as the script's "-n =:" asks. Defined after
// cobra's, it is the one bash keeps.
const bashInitFallback = `
# connhost: the word splitting the script needs, without the
# bash-completion package (cobra's own fallback calls that package's
# _get_comp_words_by_ref).
__connhost_init_completion()
{
    COMPREPLY=()
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref "$@" cur prev words cword
        return
    fi
    local line="${COMP_LINE:0:COMP_POINT}"
    read -r -a words <<< "$line"
    if [[ -z "$line" || "$line" == *[[:space:]] ]]; then
        words+=("")
    fi
    cword=$(( ${#words[@]} - 1 ))
    cur="${words[cword]}"
    prev=""
    if (( cword > 0 )); then
        prev="${words[cword-1]}"
    fi
}
`

// genBash writes cobra's V2 bash completion script (with descriptions)
// and the fallback that makes it work without the bash-completion
// package.
func genBash(root *cobra.Command, w io.Writer) error {
	if err := root.GenBashCompletionV2(w, true); err != nil {
		return err
	}
	_, err := io.WriteString(w, strings.ReplaceAll(bashInitFallback, "__connhost_", "__"+root.Name()+"_"))
	return err
}

// registerCompletions adds dynamic completion to every command whose
// argument is a connection id, run id or connector key, and to the
// --connection and --connector flags, so commands other files add get it
// too.
func (a *app) registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.ValidArgsFunction == nil {
			if fn := a.argCompletion(c); fn != nil {
				c.ValidArgsFunction = func(_ *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
					if len(args) > 0 {
						return nil, cobra.ShellCompDirectiveNoFileComp
					}
					return fn(prefix)
				}
			}
		}
		for flag, fn := range map[string]func(string) ([]cobra.Completion, cobra.ShellCompDirective){
			"connection": a.completeConnections, "connector": a.completeConnectors,
		} {
			if c.LocalNonPersistentFlags().Lookup(flag) != nil {
				_ = c.RegisterFlagCompletionFunc(flag, func(_ *cobra.Command, _ []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
					return fn(prefix)
				})
			}
		}
	}
	walk(root)
}

// argCompletion picks the completion of c's first argument from its Use
// ("show ID", "run CONNECTION_ID …").
func (a *app) argCompletion(c *cobra.Command) func(string) ([]cobra.Completion, cobra.ShellCompDirective) {
	words := strings.Fields(c.Use)
	if len(words) < 2 {
		return nil
	}
	parent := ""
	if c.HasParent() {
		parent = c.Parent().Name()
	}
	switch arg := words[1]; {
	case arg == "CONNECTION_ID":
		return a.completeConnections
	case arg == "ID" && (parent == "connection" || parent == "credential" || parent == "records"):
		return a.completeConnections
	case arg == "RUN_ID":
		return a.completeRuns
	case arg == "KEY" && parent == "connector":
		return a.completeConnectors
	}
	return nil
}

// completing runs one API call for a completion, bounded by
// completionTimeout; any failure offers nothing.
func (a *app) completing(prefix string, call func(context.Context, *client.Client) ([]cobra.Completion, error)) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, err := a.api()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	all, err := call(ctx, c)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]cobra.Completion, 0, len(all))
	for _, comp := range all {
		if strings.HasPrefix(comp, prefix) {
			out = append(out, comp)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completion formats one candidate with its description ("id\tlabel"),
// the description made safe for a terminal.
func completion(value, desc string) cobra.Completion {
	if desc == "" {
		return value
	}
	return cobra.CompletionWithDesc(value, cell(desc))
}

func (a *app) completeConnections(prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.completing(prefix, func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
		page, err := c.ListConnections(ctx, client.ConnectionFilter{Limit: completionLimit})
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, k := range page.Items {
			out = append(out, completion(k.ID, k.Label+" ("+k.ConnectorKey+", "+k.State+")"))
		}
		return out, nil
	})
}

func (a *app) completeRuns(prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.completing(prefix, func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
		page, err := c.ListRuns(ctx, client.RunFilter{Limit: completionLimit})
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, r := range page.Items {
			out = append(out, completion(r.ID, r.Status+" "+r.ConnectionID+" "+ts(r.CreatedAt)))
		}
		return out, nil
	})
}

func (a *app) completeConnectors(prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return a.completing(prefix, func(ctx context.Context, c *client.Client) ([]cobra.Completion, error) {
		list, err := c.ListConnectors(ctx)
		if err != nil {
			return nil, err
		}
		var out []cobra.Completion
		for _, k := range list {
			out = append(out, completion(k.ConnectorKey, k.DisplayName))
		}
		return out, nil
	})
}
