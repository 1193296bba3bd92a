package cli

import (
	"context"

	"github.com/spf13/cobra"
)

func (a *app) hostsCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "hosts",
		Short: "List the hosts working on this store",
		Long: `Every "connhost serve" process registers on its store and heartbeats. On a
PostgreSQL store several hosts share the work; a host that stops
heartbeating for the host TTL is marked crashed, its runs fail with
host_crashed and its work goes back to the others. A host that shuts down
cleanly is marked stopped. Rows of stopped and crashed hosts are kept for 7
days.`,
		Example: `  connhost hosts list
  connhost hosts list -o json`,
	})
	list := &cobra.Command{
		Use:   "list",
		Short: "List the hosts, newest start first",
		Long: `List the hosts with their status (live, stopped, crashed), the address their
API listens on, their version, when they started, their last heartbeat and
how many runs they had then.`,
		Example: `  connhost hosts list -o json`,
		Args:    args(),
		RunE: a.wrap(func(ctx context.Context, _ []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			l, err := c.ListHosts(ctx)
			if err != nil {
				return err
			}
			hosts := items(l.Hosts)
			if a.json() {
				return printJSON(a.rt.Stdout, hosts)
			}
			rows := make([][]string, 0, len(hosts))
			for _, h := range hosts {
				rows = append(rows, []string{h.ID, h.Status, h.Addr, h.Version, ts(h.StartedAt), ts(h.LastSeen), itoa(h.RunsActive)})
			}
			return table(a.rt.Stdout, []string{"ID", "STATUS", "ADDR", "VERSION", "STARTED", "LAST SEEN", "RUNS"}, rows)
		}),
	}
	cmd.AddCommand(list)
	return cmd
}
