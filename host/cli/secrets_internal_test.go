package cli

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParseCredentialLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr *inputError
	}{
		{name: "one", in: "DEMO_TOKEN=abc\n", want: map[string]string{"DEMO_TOKEN": "abc"}},
		{name: "no final newline", in: "DEMO_TOKEN=abc", want: map[string]string{"DEMO_TOKEN": "abc"}},
		{name: "value with = and spaces kept verbatim", in: "K= a=b==c \n", want: map[string]string{"K": " a=b==c "}},
		{name: "quotes are not removed", in: `K="q"`, want: map[string]string{"K": `"q"`}},
		{name: "crlf", in: "A=1\r\nB=2\r\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "comments and blanks", in: "# c\n\n   \n  # indented comment\nA=1\n", want: map[string]string{"A": "1"}},
		{name: "name trimmed", in: "  A  =1", want: map[string]string{"A": "1"}},
		{name: "several", in: "USER=u\nAPP_PASSWORD=p#not-a-comment\n", want: map[string]string{"USER": "u", "APP_PASSWORD": "p#not-a-comment"}},
		{name: "empty input", in: "", wantErr: &inputError{Reason: reasonNoValues}},
		{name: "only comments", in: "# x\n\n", wantErr: &inputError{Reason: reasonNoValues}},
		{name: "bare secret", in: "A=1\nsecret-token\n", wantErr: &inputError{Line: 2, Reason: reasonNotAssignment}},
		{name: "bad name", in: "1A=x", wantErr: &inputError{Line: 1, Reason: reasonBadName}},
		{name: "export prefix is not a name", in: "export A=x", wantErr: &inputError{Line: 1, Reason: reasonBadName}},
		{name: "empty name", in: "=x", wantErr: &inputError{Line: 1, Reason: reasonBadName}},
		{name: "empty value", in: "A=", wantErr: &inputError{Line: 1, Name: "A", Reason: reasonEmptyValue}},
		{name: "duplicate", in: "A=1\nA=2", wantErr: &inputError{Line: 2, Name: "A", Reason: reasonDuplicate}},
		{name: "invalid utf-8", in: "A=\xff\xfe", wantErr: &inputError{Line: 1, Name: "A", Reason: reasonNotUTF8}},
		{name: "nul", in: "A=a\x00b", wantErr: &inputError{Line: 1, Name: "A", Reason: reasonNUL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseCredentialLines([]byte(tt.in))
			if tt.wantErr != nil {
				var ie *inputError
				if !errors.As(err, &ie) {
					t.Fatalf("err = %v, want %+v", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, ie); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadCredentialInputTooLarge(t *testing.T) {
	t.Parallel()
	_, err := readCredentialInput(strings.NewReader("A=" + strings.Repeat("x", maxCredentialInput)))
	var ie *inputError
	if !errors.As(err, &ie) || ie.Reason != reasonTooLarge {
		t.Errorf("err = %v, want too large", err)
	}
}

var reasons = map[string]bool{
	reasonNotAssignment: true, reasonBadName: true, reasonEmptyValue: true, reasonDuplicate: true,
	reasonNotUTF8: true, reasonNUL: true, reasonNoValues: true, reasonTooLarge: true,
}

// FuzzParseCredentialLines: the parser of secret input never panics, every
// value it returns is a non-empty, valid UTF-8 single line under a valid
// name, and a refusal carries only a line number, a fixed reason and a
// validated name: never other input text.
func FuzzParseCredentialLines(f *testing.F) {
	f.Add("DEMO_TOKEN=abc\n")
	f.Add("# c\r\nA=1=2\r\n\r\nB= x \n")
	f.Add("A=1\nA=2")
	f.Add("nope\n")
	f.Add("A=\xff")
	f.Fuzz(func(t *testing.T, in string) {
		values, err := parseCredentialLines([]byte(in))
		if err != nil {
			var ie *inputError
			if !errors.As(err, &ie) {
				t.Fatalf("untyped error %v", err)
			}
			if !reasons[ie.Reason] {
				t.Fatalf("unknown reason %q", ie.Reason)
			}
			if ie.Name != "" && !envNameRE.MatchString(ie.Name) {
				t.Fatalf("error names an invalid name %q", ie.Name)
			}
			if ie.Line < 0 || ie.Line > strings.Count(in, "\n")+1 {
				t.Fatalf("line %d out of range", ie.Line)
			}
			return
		}
		if len(values) == 0 {
			t.Fatal("no values and no error")
		}
		for k, v := range values {
			if !envNameRE.MatchString(k) {
				t.Fatalf("invalid name %q", k)
			}
			if v == "" || strings.ContainsAny(v, "\n\x00") || !utf8.ValidString(v) {
				t.Fatalf("bad value %q for %s", v, k)
			}
			if !strings.Contains(in, k) || !strings.Contains(in, v) {
				t.Fatalf("value for %s not from the input", k)
			}
		}
	})
}

// TestRefuseArgvSecretsLeavesOtherCommandsAlone: only annotated commands
// are scanned.
func TestRefuseArgvSecretsLeavesOtherCommandsAlone(t *testing.T) {
	t.Parallel()
	a := &app{rt: Runtime{}.withDefaults()}
	root := a.rootCommand()
	for _, args := range [][]string{
		{"connection", "create", "--config", `{"a":"b=c"}`},
		{"runs", "list", "--status", "x=y"},
		{"credential", "set", "c1", "--from-file", "a=b"},
		{"credential", "show", "c1"},
	} {
		if _, err := refuseArgvSecrets(root, args); err != nil {
			t.Errorf("%v refused: %v", args, err)
		}
	}
}
