package sqlstore

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/connhost/connhost/host/store"
)

func TestRebind(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		style    Placeholders
		in, want string
	}{
		"sqlite unchanged": {QuestionMarks, `SELECT a FROM t WHERE a = ? AND b = ?`, `SELECT a FROM t WHERE a = ? AND b = ?`},
		"postgres":         {Dollars, `SELECT a FROM t WHERE a = ? AND b = ?`, `SELECT a FROM t WHERE a = $1 AND b = $2`},
		"no params":        {Dollars, `SELECT 1`, `SELECT 1`},
		"ten and more": {Dollars, strings.Repeat("?,", 11) + "?",
			"$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := (Dialect{Placeholders: tc.style}).Rebind(tc.in); got != tc.want {
				t.Errorf("Rebind = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFormatTimeOrdersAsText: fixed width, so comparing the text compares
// the instants, whatever the zone or the fraction.
func TestFormatTimeOrdersAsText(t *testing.T) {
	t.Parallel()
	plus5 := time.FixedZone("UTC+5", 5*3600)
	times := []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(2026, 1, 1, 5, 0, 0, 100_000_000, plus5), // 00:00:00.1 UTC
		time.Date(2026, 1, 1, 0, 0, 0, 990_000_000, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
	}
	var texts []string
	for _, tm := range times {
		s := FormatTime(tm)
		if len(s) != len("2006-01-02T15:04:05.000000000Z") || !strings.HasSuffix(s, "Z") {
			t.Errorf("FormatTime(%s) = %q, not fixed-width UTC", tm, s)
		}
		back, err := ParseTime(s)
		if err != nil || !back.Equal(tm) || back.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %s, %v; want %s in UTC", s, back, err, tm)
		}
		texts = append(texts, s)
	}
	if !slices.IsSorted(texts) {
		t.Errorf("text order is not time order: %q", texts)
	}
}

func TestTimeColScan(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 3, 14, 10, 9, 26, 535_897_000, time.UTC)
	for name, tc := range map[string]struct {
		src  any
		want time.Time
		ok   bool
	}{
		"null":           {nil, time.Time{}, true},
		"text":           {"2026-03-14T10:09:26.535897000Z", want, true},
		"bytes":          {[]byte("2026-03-14T10:09:26.535897Z"), want, true},
		"native, zoned":  {want.In(time.FixedZone("X", -7*3600)), want, true},
		"garbage":        {"yesterday", time.Time{}, false},
		"unexpected int": {int64(5), time.Time{}, false},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got time.Time
			err := timeCol{&got}.Scan(tc.src)
			if (err == nil) != tc.ok {
				t.Fatalf("Scan(%v) error = %v, want ok=%v", tc.src, err, tc.ok)
			}
			if tc.ok && (!got.Equal(tc.want) || (!got.IsZero() && got.Location() != time.UTC)) {
				t.Errorf("Scan(%v) = %s, want %s in UTC", tc.src, got, tc.want)
			}
		})
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, parts := range [][]string{
		{"2026-01-01T00:00:00.000000000Z", "run_01ARZ3NDEKTSV4RRFFQ69G5FAV"},
		{"stream with spaces", "key|with\"odd\x00chars/é"},
		{"", ""},
	} {
		got, err := decodeCursor(encodeCursor("runs", parts...), "runs", len(parts))
		if err != nil {
			t.Fatalf("decode(encode(%q)): %v", parts, err)
		}
		if d := cmp.Diff(parts, got); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
	}
	for name, c := range map[string]string{
		"not base64":    "%%%",
		"not json":      "bm90LWpzb24",
		"wrong arity":   encodeCursor("runs", "one"),
		"not a string":  "WzEsMl0", // [1,2]
		"bad time part": encodeCursor("runs", "soon", "run_1"),
		"another list":  encodeCursor("audit", "2026-01-01T00:00:00.000000000Z", "run_1"),
		"untagged":      "WyIyMDI2LTAxLTAxVDAwOjAwOjAwWiIsInJ1bl8xIl0", // ["2026-01-01T00:00:00Z","run_1"]
	} {
		_, _, err := timeCursor(c, "runs")
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: timeCursor(%q) error = %v, want ErrInvalid", name, c, err)
		}
	}
	if _, _, err := timeCursor(encodeCursor("audit", "2026-01-01T00:00:00.000000000Z", "a_1"), "runs"); err != errOtherCursor {
		t.Errorf("a cursor of another list: %v", err)
	}
}

// FuzzDecodeCursor: cursors come from API clients. Decoding never panics,
// and whatever decodes re-encodes to a cursor that decodes the same.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor("runs", "2026-01-01T00:00:00.000000000Z", "run_1"), 2)
	f.Add(encodeCursor("records", "a", "b"), 2)
	f.Add("", 2)
	f.Add("W10", 0)
	f.Add("%%%", 1)
	f.Fuzz(func(t *testing.T, cursor string, n int) {
		if n < 0 || n > 4 {
			return
		}
		parts, err := decodeCursor(cursor, "runs", n)
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		again, err := decodeCursor(encodeCursor("runs", parts...), "runs", n)
		if err != nil || !slices.Equal(parts, again) {
			t.Fatalf("re-encoded cursor decodes to %q, %v; want %q", again, err, parts)
		}
		_, _, _ = timeCursor(cursor, "runs")
	})
}

func TestDedupeRecords(t *testing.T) {
	t.Parallel()
	rec := func(stream, key, data string) store.Record {
		return store.Record{Stream: stream, Key: key, Data: []byte(data)}
	}
	got := dedupeRecords([]store.Record{
		rec("s", "a", "1"), rec("s", "b", "1"), rec("t", "a", "1"), rec("s", "a", "2"), rec("s", "b", "3"),
	})
	want := []store.Record{rec("s", "a", "2"), rec("s", "b", "3"), rec("t", "a", "1")}
	if d := cmp.Diff(want, got, cmpopts.IgnoreUnexported(store.Record{})); d != "" {
		t.Errorf("dedupe (-want +got):\n%s", d)
	}
}

func TestDialectValidate(t *testing.T) {
	t.Parallel()
	ok := Dialect{Name: "x", Goose: "sqlite3", Migrations: emptyFS{}, TimePrecision: time.Nanosecond, TimeType: "TEXT", IntType: "INTEGER"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	for name, mutate := range map[string]func(*Dialect){
		"no name":          func(d *Dialect) { d.Name = "" },
		"no goose dialect": func(d *Dialect) { d.Goose = "" },
		"no migrations":    func(d *Dialect) { d.Migrations = nil },
		"bad placeholders": func(d *Dialect) { d.Placeholders = 7 },
		"no precision":     func(d *Dialect) { d.TimePrecision = 0 },
		"no cast types":    func(d *Dialect) { d.TimeType = "" },
	} {
		d := ok
		mutate(&d)
		if d.Validate() == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
	}
	if _, err := New(Config{Dialect: ok}); err == nil {
		t.Error("New without DB succeeded")
	}
}

type emptyFS struct{}

func (emptyFS) Open(string) (fs.File, error) { return nil, fs.ErrNotExist }
