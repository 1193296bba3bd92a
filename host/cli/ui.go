package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) uiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ui",
		Short: "Print a one-time sign-in link for the web console",
		Long: `Print a one-time sign-in link for the host's web console (served at /ui/ on
the API's address). Open it in a browser: it signs that browser in, once,
within a few minutes, and the browser then holds a session cookie that
lasts the host's --ui-session-lifetime (12h by default) or until Sign out.
The link holds a one-time code, never the operator token; the host logs
request paths only. Run it again for a new link, or sign in on the console
with the operator token.`,
		Example: `  connhost ui
  connhost ui --addr https://connhost.example:7480 --ca-file ca.pem
  connhost ui -o json`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			si, err := c.ConsoleSignIn(ctx)
			if err != nil {
				return err
			}
			link := strings.TrimSuffix(c.Addr(), "/") + si.Path
			if a.json() {
				return printJSON(a.rt.Stdout, struct {
					URL       string `json:"url"`
					ExpiresAt string `json:"expires_at"`
				}{link, si.ExpiresAt})
			}
			valid := "for a few minutes"
			if si.ExpiresAt != "" {
				valid = "until " + ts(si.ExpiresAt)
			}
			_, err = fmt.Fprintf(a.rt.Stdout, "Open this link in a browser to sign in to the console (it works once, %s):\n\n  %s\n\n", valid, link)
			return err
		}),
	}
}
