// Package stats summarizes the rounds of make bench-compare: each measure
// is one value per round for connhost and, when there is one, for its
// reference; a row reports the median and the range of each and of the
// per-round ratios, as a table for people and as JSON for tools.
package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrNoValues is returned when a summary is asked of an empty sample.
var ErrNoValues = errors.New("stats: no values")

// Summary is the median and range of one sample.
type Summary struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// Summarize returns the summary of values (the median of an even count is
// the mean of the middle two). Values keeps the input order.
func Summarize(values []float64) (Summary, error) {
	if len(values) == 0 {
		return Summary{}, ErrNoValues
	}
	s := slices.Clone(values)
	slices.Sort(s)
	return Summary{Median: Median(s), Min: s[0], Max: s[len(s)-1], Values: slices.Clone(values)}, nil
}

// Median returns the median of values, 0 for none. It does not modify
// values.
func Median(values []float64) float64 {
	n := len(values)
	if n == 0 {
		return 0
	}
	s := values
	if !slices.IsSorted(s) {
		s = slices.Clone(values)
		slices.Sort(s)
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ratios returns a[i]/b[i] for each round. A zero reference gives +Inf.
func Ratios(a, b []float64) ([]float64, error) {
	if len(a) != len(b) {
		return nil, fmt.Errorf("stats: %d connhost rounds against %d reference rounds", len(a), len(b))
	}
	out := make([]float64, len(a))
	for i := range a {
		if b[i] == 0 {
			out[i] = math.Inf(1)
			continue
		}
		out[i] = a[i] / b[i]
	}
	return out, nil
}
