package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/connhost/connhost/host/api/apitypes"
	"github.com/connhost/connhost/host/api/client"
	"github.com/spf13/cobra"
)

// Output formats of -o/--output.
const (
	OutputText = "text"
	OutputJSON = "json"
)

// printJSON writes v as indented JSON and a newline: the API's JSON, field
// for field, so `-o json` output can be piped to jq.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// items returns s, or an empty slice for nil, so a list prints as [] and
// never as null.
func items[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// table writes an aligned table: a header row and one row per item.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	writeRow(tw, header)
	for _, r := range rows {
		writeRow(tw, r)
	}
	return tw.Flush()
}

// fields writes "key: value" lines with the values aligned.
func fields(w io.Writer, kv [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	for _, p := range kv {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], cell(p[1]))
	}
	return tw.Flush()
}

func writeRow(w io.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		io.WriteString(w, cell(c))
	}
	io.WriteString(w, "\n")
}

// cell makes a value safe for one table cell on a terminal: "-" for
// empty, and control characters (tabs, newlines, escape sequences that a
// connector or a label could carry) replaced, so server data can neither
// break the alignment nor drive the terminal (nor reorder it with bidi
// controls).
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '?'
		}
		return r
	}, s)
}

// ts formats an API timestamp as RFC 3339 in UTC, to the second. An empty
// timestamp (not reached) is "".
func ts(s string) string {
	if s == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format(time.RFC3339)
}

// list joins names with commas.
func list(s []string) string { return strings.Join(s, ",") }

func itoa[T ~int | ~int64 | ~uint32](n T) string { return strconv.FormatInt(int64(n), 10) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// marshalJSON is json.Marshal without HTML escaping: "> fortune" stays
// "> fortune", not "\u003e fortune". Every JSON the CLI prints goes
// through it or printJSON.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// compactJSON renders raw JSON (a record's data, a config, a schema, a
// checkpoint) as one line, cut to max runes: compacted, never decoded, so
// keys keep their order and numbers their digits. Empty is "".
func compactJSON(raw json.RawMessage, max int) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	s := buf.String()
	if max > 0 && len([]rune(s)) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// idCommand builds a command that takes one id, calls the API with it and
// prints the result: "connection pause ID", "runs show RUN_ID", ….
func idCommand[T any](a *app, path, arg, short, long string,
	call func(*client.Client, context.Context, string) (T, error), print func(T) error) *cobra.Command {
	name := path[strings.LastIndex(path, " ")+1:]
	return &cobra.Command{
		Use:     name + " " + arg,
		Short:   short,
		Long:    long,
		Example: "  connhost " + path + " " + arg,
		Args:    args(arg),
		RunE: a.wrap(func(ctx context.Context, argv []string) error {
			c, err := a.api()
			if err != nil {
				return err
			}
			v, err := call(c, ctx, argv[0])
			if err != nil {
				return err
			}
			return print(v)
		}),
	}
}

// printPage prints one page of a list: the items as a JSON array with -o
// json, else a table, and on stderr the cursor of the next page if any.
func printPage[T any](a *app, page apitypes.List[T], header []string, row func(T) []string) error {
	var err error
	if a.json() {
		err = printJSON(a.rt.Stdout, items(page.Items))
	} else {
		rows := make([][]string, 0, len(page.Items))
		for _, it := range page.Items {
			rows = append(rows, row(it))
		}
		err = table(a.rt.Stdout, header, rows)
	}
	a.nextPage(page.Next)
	return err
}
