package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/spf13/cobra"
)

func (a *app) connectorCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "connector",
		Short: "List, inspect and rescan the connectors the host has catalogued",
		Long: `Connectors are the plugin binaries the host found in its plugin directory
(at boot, and at each rescan), each with its manifest and pinned SHA-256.`,
		Example: `  connhost connector list
  connhost connector list --all
  connhost connector show demo -o json
  connhost connector rescan`,
	})
	var all bool
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List connectors (--all: and the plugin files the host rejected)",
		Long: `List the catalogued connectors: key, version, auth requirement, streams and default schedule.
With --all, also the files of the plugin dir the host did not catalogue, each
with the manifest field at fault and the reason.

-o json prints an array of connectors, as every list command prints an array
of its items. With --all it prints {"connectors":[…],"rejected":[…]}: the same
array under "connectors" and the rejected files under "rejected" (both always
present, [] when empty). The catalog is one page: there is never a cursor.`,
		Example: `  connhost connector list
  connhost connector list --all
  connhost connector list -o json | jq '.[].connector_key'
  connhost connector list --all -o json | jq '.rejected[].file'`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			var cs []apitypes.Connector
			var rejected []apitypes.RejectedPlugin
			if all {
				l, err := c.ListConnectorsAll(ctx)
				if err != nil {
					return err
				}
				cs, rejected = l.Items, l.Rejected
				if a.json() {
					return printJSON(a.rt.Stdout, connectorListAll{Connectors: items(cs), Rejected: items(rejected)})
				}
			} else {
				if cs, err = c.ListConnectors(ctx); err != nil {
					return err
				}
				if a.json() {
					return printJSON(a.rt.Stdout, items(cs))
				}
			}
			rows := make([][]string, 0, len(cs))
			for _, k := range cs {
				rows = append(rows, []string{k.ConnectorKey, k.Version, k.Auth.Kind, list(k.Auth.Required),
					streamNames(k.Streams), k.DefaultSchedule, yesNo(k.AutoEnroll)})
			}
			if err := table(a.rt.Stdout, []string{"KEY", "VERSION", "AUTH", "REQUIRED", "STREAMS", "DEFAULT SCHEDULE", "AUTO-ENROLL"}, rows); err != nil {
				return err
			}
			if !all {
				return nil
			}
			return printRejected(a, rejected)
		}),
	}
	listCmd.Flags().BoolVar(&all, "all", false, "also list the plugin files the host rejected, with the field at fault and the reason")
	cmd.AddCommand(listCmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "rescan",
		Short: "Re-scan the host's plugin dir: register new and rebuilt connectors",
		Long: `Ask the host to describe every plugin in its plugin dir again, register new
and changed connectors (audited connector.register and connector.reregister,
as at boot), re-evaluate enrollment and serve the new catalog — without a
restart. Runs in flight keep the binary they started with. Sending the host
SIGHUP does the same. A rescan is the addressed host's only: hosts sharing a
PostgreSQL store each scan their own plugin dir, so rescan each of them.`,
		Example: `  make build && connhost connector rescan
  connhost connector rescan -o json
  kill -HUP $(pgrep -f 'connhost serve')`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			rep, err := c.RescanConnectors(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.rt.Stdout, rep)
			}
			if err := fields(a.rt.Stdout, [][2]string{
				{"plugin dir", rep.PluginDir},
				{"connectors", strconv.Itoa(rep.Connectors)},
				{"added", list(rep.Added)},
				{"re-registered", list(rep.Reregistered)},
				{"removed", list(rep.Removed)},
				{"rejected", strconv.Itoa(len(rep.Rejected))},
			}); err != nil {
				return err
			}
			if len(rep.Rejected) == 0 {
				return nil
			}
			return printRejected(a, rep.Rejected)
		}),
	})
	cmd.AddCommand(&cobra.Command{
		Use:     "show KEY",
		Short:   "Show one connector",
		Long:    `Show a connector's manifest: auth requirement, passthrough env, streams, default schedule, config schema and binary checksum.`,
		Example: `  connhost connector show demo`,
		Args:    args("KEY"),
		RunE: a.wrap(func(ctx context.Context, args []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			k, err := c.GetConnector(ctx, args[0])
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.rt.Stdout, k)
			}
			return fields(a.rt.Stdout, [][2]string{
				{"key", k.ConnectorKey},
				{"version", k.Version},
				{"name", k.DisplayName},
				{"description", k.Description},
				{"auth", k.Auth.Kind},
				{"required env", list(k.Auth.Required)},
				{"env passthrough", list(k.EnvPassthrough)},
				{"streams", streamNames(k.Streams)},
				{"default schedule", k.DefaultSchedule},
				{"auto-enroll", yesNo(k.AutoEnroll)},
				{"sha256", k.SHA256},
				{"config schema", compactJSON(k.ConfigSchema, 0)},
			})
		}),
	})
	cmd.AddCommand(a.connectorInitCommand())
	return cmd
}

// connectorListAll is connector list --all -o json: the catalogued
// connectors (the array connector list -o json prints) and the rejected
// plugin files. It has no cursor: the catalog is one page.
type connectorListAll struct {
	Connectors []apitypes.Connector      `json:"connectors"`
	Rejected   []apitypes.RejectedPlugin `json:"rejected"`
}

// printRejected prints the rejected plugin files as a second table.
func printRejected(a *app, rejected []apitypes.RejectedPlugin) error {
	fmt.Fprintf(a.rt.Stdout, "\nrejected plugin files: %d\n", len(rejected))
	if len(rejected) == 0 {
		return nil
	}
	rows := make([][]string, 0, len(rejected))
	for _, r := range rejected {
		rows = append(rows, []string{r.File, orDash(r.Field), orDash(r.Code), r.Reason})
	}
	return table(a.rt.Stdout, []string{"FILE", "FIELD", "CODE", "REASON"}, rows)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// streamNames renders streams as "name(key,…)".
func streamNames(ss []apitypes.Stream) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s.Name + "(" + list(s.KeyFields) + ")"
	}
	return out
}
