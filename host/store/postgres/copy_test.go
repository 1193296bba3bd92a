package postgres

import (
	"bytes"
	"testing"
)

func TestEncodeCopy(t *testing.T) {
	got, err := encodeCopy([][]any{{int64(258), "k", []byte(`{}`), nil}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
		"\x00\x04" + // four fields
		"\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x01\x02" + // bigint 258
		"\x00\x00\x00\x01k" + // text
		"\x00\x00\x00\x02{}" + // json
		"\xff\xff\xff\xff" + // NULL
		"\xff\xff") // trailer
	if !bytes.Equal(got, want) {
		t.Errorf("encodeCopy = %q, want %q", got, want)
	}
	if _, err := encodeCopy([][]any{{int64(1)}}, 2); err == nil {
		t.Error("a short row encoded")
	}
	if _, err := encodeCopy([][]any{{1.5}}, 1); err == nil {
		t.Error("a float64 encoded")
	}
}
