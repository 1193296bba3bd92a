package cli

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "audit",
		Short: "Read the audit log",
		Long: `The audit log records every operator action and host decision that changes
what runs: connection and credential lifecycle, keyset rotation and rewrap,
plugin registration. It never holds secret values.`,
		Example: `  connhost audit list --target CONNECTION_ID`,
	})
	var filter client.AuditFilter
	list := &cobra.Command{
		Use:   "list [--target ID] [--operation OP]",
		Short: "List audit events, newest first",
		Long: `List audit events, one page at a time (--limit, --cursor). When more events
exist, the cursor of the next page is printed on stderr.`,
		Example: `  connhost audit list
  connhost audit list --target CONNECTION_ID --operation credential.revoke -o json`,
		Args: args(),
	}
	list.RunE = a.wrap(func(ctx context.Context, _ []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		page, err := c.ListAudit(ctx, filter)
		if err != nil {
			return err
		}
		return printPage(a, page, []string{"AT", "ACTOR", "OPERATION", "TARGET", "OUTCOME", "DETAIL"},
			func(e apitypes.AuditEvent) []string {
				return []string{ts(e.At), e.Actor, e.Operation, e.TargetKind + ":" + e.TargetID, e.Outcome, detail(e.Detail)}
			})
	})
	f := list.Flags()
	f.StringVar(&filter.Target, "target", "", "only events about this target id")
	f.StringVar(&filter.Operation, "operation", "", "only events of this operation")
	f.IntVar(&filter.Limit, "limit", 0, "page size (default: the server's)")
	f.StringVar(&filter.Cursor, "cursor", "", "the cursor of the page to read, from a previous list")
	cmd.AddCommand(list)
	return cmd
}

// detail renders audit detail as sorted k=v pairs.
func detail(d map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(d)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + d[k])
	}
	return b.String()
}
