package cli

import (
	"context"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/spf13/cobra"
)

func (a *app) connectorCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "connector",
		Short: "List and inspect the connectors the host has catalogued",
		Long: `Connectors are the plugin binaries the host found in its plugin directory
at boot, each with its manifest and pinned SHA-256.`,
		Example: `  connhost connector list
  connhost connector show demo -o json`,
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List connectors",
		Long:  `List the catalogued connectors: key, version, auth requirement, streams and default schedule.`,
		Example: `  connhost connector list
  connhost connector list -o json | jq '.[].connector_key'`,
		Args: args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			cs, err := c.ListConnectors(ctx)
			if err != nil {
				return err
			}
			if a.json() {
				return printJSON(a.rt.Stdout, items(cs))
			}
			rows := make([][]string, 0, len(cs))
			for _, k := range cs {
				rows = append(rows, []string{k.ConnectorKey, k.Version, k.Auth.Kind, list(k.Auth.Required),
					streamNames(k.Streams), k.DefaultSchedule, yesNo(k.AutoEnroll)})
			}
			return table(a.rt.Stdout, []string{"KEY", "VERSION", "AUTH", "REQUIRED", "STREAMS", "DEFAULT SCHEDULE", "AUTO-ENROLL"}, rows)
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
