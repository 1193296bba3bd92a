package cli

import (
	"context"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

// recordDataWidth bounds the data column of the records table.
const recordDataWidth = 80

func (a *app) recordsCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "records",
		Short:   "Read a connection's collected records",
		Long:    `Records are what a connection's runs collected, keyed by stream and key; a later run's record with the same key replaces the earlier one.`,
		Example: `  connhost records list CONNECTION_ID --stream events --limit 10`,
	})
	var filter client.RecordFilter
	list := &cobra.Command{
		Use:   "list CONNECTION_ID [--stream S] [--limit N]",
		Short: "List a connection's records",
		Long: `List a connection's records, one page at a time (--limit, --cursor). Records
come by stream, then in the order the connector first emitted each key (a
record written again keeps its place), so the demo's events read 0, 1, 2, …
When more records exist, the cursor of the next page is printed on stderr.
-o json prints the records with their full data. A --stream the connector
does not declare (and that has no records) is an error, not an empty list.`,
		Example: `  connhost records list CONNECTION_ID
  connhost records list CONNECTION_ID --stream events --limit 100 -o json`,
		Args: args("CONNECTION_ID"),
	}
	list.RunE = a.wrap(func(ctx context.Context, args []string) error {
		c, err := a.api()
		if err != nil {
			return err
		}
		page, err := c.ListRecords(ctx, args[0], filter)
		if err != nil {
			return err
		}
		return printPage(a, page, []string{"STREAM", "KEY", "RUN", "UPDATED", "DATA"},
			func(r apitypes.Record) []string {
				return []string{r.Stream, r.Key, r.RunID, ts(r.UpdatedAt), compactJSON(r.Data, recordDataWidth)}
			})
	})
	f := list.Flags()
	f.StringVar(&filter.Stream, "stream", "", "only records of this stream")
	f.IntVar(&filter.Limit, "limit", 0, "page size (default: the server's)")
	f.StringVar(&filter.Cursor, "cursor", "", "the cursor of the page to read, from a previous list")
	cmd.AddCommand(list)
	return cmd
}
