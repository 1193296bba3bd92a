package stats

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Unit says how a row's values print.
type Unit string

// Units of the rows.
const (
	Millis  Unit = "ms"        // durations in milliseconds
	Micros  Unit = "us"        // durations in microseconds
	Seconds Unit = "s"         // durations in seconds
	Rate    Unit = "records/s" // throughput
	Bytes   Unit = "bytes"     // sizes on disk
	MiB     Unit = "MiB"       // memory
)

// Row is one measure: connhost's value per round and, when there is one,
// the reference's value per round, taken interleaved with it.
type Row struct {
	Group     string   `json:"group"`
	Measure   string   `json:"measure"`
	Unit      Unit     `json:"unit"`
	Connhost  Summary  `json:"connhost"`
	RefName   string   `json:"reference_name,omitempty"`
	Reference *Summary `json:"reference,omitempty"`
	// Ratio is connhost / reference per round: above 1 is slower for a
	// duration, faster for a rate.
	Ratio *Summary `json:"ratio,omitempty"`
	Note  string   `json:"note,omitempty"`
}

// NewRow summarizes one measure. ref may be nil (no reference): the row
// then has no ratio.
func NewRow(group, measure string, unit Unit, connhost []float64, refName string, ref []float64) (Row, error) {
	c, err := Summarize(connhost)
	if err != nil {
		return Row{}, fmt.Errorf("%s: connhost: %w", measure, err)
	}
	r := Row{Group: group, Measure: measure, Unit: unit, Connhost: c}
	if ref == nil {
		return r, nil
	}
	rs, err := Summarize(ref)
	if err != nil {
		return Row{}, fmt.Errorf("%s: reference: %w", measure, err)
	}
	ratios, err := Ratios(connhost, ref)
	if err != nil {
		return Row{}, fmt.Errorf("%s: %w", measure, err)
	}
	ra, _ := Summarize(ratios)
	r.RefName, r.Reference, r.Ratio = refName, &rs, &ra
	return r, nil
}

// Report is the whole output of one make bench-compare.
type Report struct {
	Started  string            `json:"started"`
	Finished string            `json:"finished"`
	Rounds   int               `json:"rounds"`
	Commit   string            `json:"commit"`
	Machine  map[string]string `json:"machine"`
	Settings map[string]string `json:"settings"`
	Rows     []Row             `json:"rows"`
	Errors   []string          `json:"errors,omitempty"`
}

// WriteJSON writes r indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the rows as an aligned Markdown table, with notes
// under it.
func WriteTable(w io.Writer, rows []Row) error {
	header := []string{"measure", "connhost median (min–max)", "reference median (min–max)", "ratio median (min–max)"}
	cells := [][]string{header}
	var notes []string
	for _, r := range rows {
		ref, ratio := "—", "—"
		if r.Reference != nil {
			ref = r.RefName + ": " + FormatSummary(*r.Reference, r.Unit)
			ratio = fmt.Sprintf("%s× (%s–%s)", ratioString(r.Ratio.Median), ratioString(r.Ratio.Min), ratioString(r.Ratio.Max))
		}
		measure := r.Measure
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("[%d] %s", len(notes)+1, r.Note))
			measure += fmt.Sprintf(" [%d]", len(notes))
		}
		cells = append(cells, []string{measure, FormatSummary(r.Connhost, r.Unit), ref, ratio})
	}
	width := make([]int, len(header))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		b.WriteString("|")
		for i, c := range row {
			b.WriteString(" ")
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
			b.WriteString(" |")
		}
		b.WriteString("\n")
	}
	line(cells[0])
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, row := range cells[1:] {
		line(row)
	}
	for _, n := range notes {
		b.WriteString(n)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatSummary prints "median unit (min–max)".
func FormatSummary(s Summary, u Unit) string {
	return fmt.Sprintf("%s (%s–%s)", Format(s.Median, u), FormatBare(s.Min, u), FormatBare(s.Max, u))
}

// Format prints one value with its unit.
func Format(v float64, u Unit) string {
	switch u {
	case Rate:
		return FormatBare(v, u) + " rec/s"
	case Bytes:
		return FormatBare(v, u) + " MB"
	default:
		return FormatBare(v, u) + " " + string(u)
	}
}

// FormatBare prints one value without its unit (records/s in thousands,
// bytes in MB).
func FormatBare(v float64, u Unit) string {
	switch u {
	case Rate:
		return fmt.Sprintf("%.1fk", v/1000)
	case Bytes:
		return fmt.Sprintf("%.1f", v/1e6)
	case Micros, Millis, MiB:
		return sig(v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// sig prints v with three significant digits, without an exponent.
func sig(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratioString(v float64) string {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return "∞"
	}
	return fmt.Sprintf("%.2f", v)
}
