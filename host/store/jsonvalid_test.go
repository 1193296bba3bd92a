package store

import (
	"encoding/json"
	"strings"
	"testing"
)

var jsonCases = []string{
	``, ` `, `1`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1E-7`, `1e07`, `-12.5e+3`, `+1`, `0x1`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `NULL`,
	`""`, `"`, `"a\"b"`, `"\u00e9"`, `"\u00g9"`, `"\u00e"`, `"\x"`, `"\/"`, "\"tab\there\"", "\"\x7f\"", "\"\xff\xfe\"",
	`[]`, `[`, `]`, `[1,]`, `[,1]`, `[1 2]`, ` [ 1 , [ ] , { } ] `, `[1]]`, `[[1]`,
	`{}`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{a:1}`, `{"a" : [ {"b":null} ] }`, `{"a":1}}`, `{1:2}`,
	`{"id":12,"seq":12,"connection_id":"conn_01JEXAMPLE"}`, "\t\r\n 1 \n", `1 2`, `"a" "b"`, `[1]x`,
	strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth),
	strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	strings.Repeat(`{"a":`, maxJSONDepth) + "1" + strings.Repeat("}", maxJSONDepth),
	strings.Repeat(`{"a":`, maxJSONDepth) + "{}" + strings.Repeat("}", maxJSONDepth),
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range jsonCases {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid = %v", in, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, in := range jsonCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if got, want := validJSON(in), json.Valid(in); got != want {
			t.Errorf("validJSON(%q) = %v, json.Valid = %v", in, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	doc := []byte(`{"id":123456,"seq":123456,"connection_id":"conn_01JEXAMPLEEXAMPLEEXAMPLEEX","tags":["x","y"],"n":-1.5e3,"ok":true}`)
	for _, tc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"validJSON", validJSON}, {"json.Valid", json.Valid}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if !tc.valid(doc) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
