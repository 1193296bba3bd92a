package stats

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in            []float64
		med, min, max float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		s, err := Summarize(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		if s.Median != tc.med || s.Min != tc.min || s.Max != tc.max {
			t.Errorf("Summarize(%v) = %+v, want median %v min %v max %v", tc.in, s, tc.med, tc.min, tc.max)
		}
		if s.Values[0] != tc.in[0] {
			t.Errorf("Summarize(%v) reordered its values: %v", tc.in, s.Values)
		}
	}
	if _, err := Summarize(nil); !errors.Is(err, ErrNoValues) {
		t.Errorf("Summarize(nil) = %v, want ErrNoValues", err)
	}
}

func TestNewRowRatiosAreRoundByRound(t *testing.T) {
	// The median of the ratios is not the ratio of the medians: round 3
	// is slow on both sides and its ratio is 1.
	r, err := NewRow("g", "m", Millis, []float64{20, 30, 100}, "ref", []float64{10, 10, 100})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ratio.Median != 2 || r.Ratio.Min != 1 || r.Ratio.Max != 3 {
		t.Errorf("ratio = %+v, want median 2, min 1, max 3", *r.Ratio)
	}
	if _, err := NewRow("g", "m", Millis, []float64{1, 2}, "ref", []float64{1}); err == nil {
		t.Error("NewRow accepted rounds of different counts")
	}
	nr, err := NewRow("g", "m", Millis, []float64{1}, "", nil)
	if err != nil || nr.Ratio != nil || nr.Reference != nil {
		t.Errorf("NewRow without reference = %+v, %v; want no reference and no ratio", nr, err)
	}
	inf, _ := Ratios([]float64{1}, []float64{0})
	if !math.IsInf(inf[0], 1) {
		t.Errorf("ratio to a zero reference = %v, want +Inf", inf[0])
	}
}

func TestWriteTable(t *testing.T) {
	a, _ := NewRow("launch", "launch → first message", Millis, []float64{48.7, 50.1, 47.2}, "floor", []float64{30.7, 31, 30})
	b, _ := NewRow("ingest", "ingest", Rate, []float64{100000, 120000}, "", nil)
	b.Note = "one note"
	var buf bytes.Buffer
	if err := WriteTable(&buf, []Row{a, b}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	want := []string{
		"| launch → first message | 48.7 ms (47.2–50.1)",
		"floor: 30.7 ms (30.0–31.0)",
		"1.59× (1.57–1.62)",
		"| ingest [1]             | 110.0k rec/s (100.0k–120.0k) | —",
		"[1] one note",
	}
	for _, w := range want {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, buf.String())
		}
	}
	// Aligned: every table line has the same rune width.
	var n int
	for i, l := range lines[:4] {
		if w := len([]rune(l)); i == 0 {
			n = w
		} else if w != n {
			t.Errorf("line %d is %d runes wide, want %d:\n%s", i, w, n, buf.String())
		}
	}
}
