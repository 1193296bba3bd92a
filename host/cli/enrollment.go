package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) enrollmentCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "enrollment",
		Short: "Show which connections are on a schedule, and why the others are not",
		Long: `Show the enrollment report: for every connection, whether it is enrolled
on its schedule or skipped, with the typed reason (skipped_env,
skipped_paused, skipped_revoked, skipped_no_schedule,
skipped_unknown_connector, skipped_held, ...). A connection whose connector needs a
credential is enrolled when it holds an active stored credential or the
host environment provides every required variable. A connection is
skipped_held after a scheduled run was refused or rejected for a reason
only a person can fix; the reason names the code, when, and what
releases it (capture a credential, fix the config, bring the connector
back).`,
		Example: `  connhost enrollment
  connhost enrollment -o json`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			rep, err := c.Enrollment(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				rep.Connections = items(rep.Connections)
				return printJSON(a.rt.Stdout, rep)
			}
			rows := make([][]string, 0, len(rep.Connections))
			for _, e := range rep.Connections {
				rows = append(rows, []string{e.ConnectionID, e.ConnectorKey, e.Outcome, e.Reason, ts(e.EvaluatedAt)})
			}
			return table(a.rt.Stdout, []string{"CONNECTION", "CONNECTOR", "OUTCOME", "REASON", "EVALUATED"}, rows)
		}),
	}
}

func (a *app) attentionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "attention",
		Short: "List the connections that need a person, oldest first, with the action",
		Long: `List every connection whose health needs a person, oldest first: what is
wrong (the verdict: credential_unavailable, needs_credential,
credential_rejected, invalid_config, connector_missing, or failing 3 runs
in a row), why, since when, and the action to take. The host logs a
one-line summary of this list at start and whenever it changes. Nothing is
decrypted and no secret is shown.`,
		Example: `  connhost attention
  connhost attention -o json`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			l, err := c.Attention(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				// One JSON array of the items, as every list command
				// prints; the whole list is one page, so no cursor.
				return printJSON(a.rt.Stdout, items(l.Items))
			}
			if len(l.Items) == 0 {
				_, err := fmt.Fprintln(a.rt.Stdout, "no connection needs a person")
				return err
			}
			rows := make([][]string, 0, len(l.Items))
			for _, it := range l.Items {
				rows = append(rows, []string{it.ConnectionID, it.ConnectorKey, it.Label, it.Verdict, ts(it.Since), it.Reason, it.Action})
			}
			return table(a.rt.Stdout, []string{"CONNECTION", "CONNECTOR", "LABEL", "HEALTH", "SINCE", "REASON", "ACTION"}, rows)
		}),
	}
}
