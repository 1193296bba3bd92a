package launch

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/connhost/connhost/host/failure"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

func TestRedactorString(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		secrets []string
		in      string
		want    string
	}{
		"no secrets":            {in: "hello", want: "hello"},
		"empty secret ignored":  {secrets: []string{""}, in: "hello", want: "hello"},
		"one occurrence":        {secrets: []string{"s3cret"}, in: "token=s3cret;", want: "token=[REDACTED];"},
		"every occurrence":      {secrets: []string{"ab"}, in: "ab-ab-ab", want: "[REDACTED]-[REDACTED]-[REDACTED]"},
		"self-overlapping":      {secrets: []string{"aa"}, in: "aaa", want: "[REDACTED]"},
		"longer secret wins":    {secrets: []string{"abc", "abcdef"}, in: "xabcdefx abc", want: "x[REDACTED]x [REDACTED]"},
		"overlapping secrets":   {secrets: []string{"abcd", "cdef"}, in: "abcdef", want: "[REDACTED]"},
		"adjacent secrets":      {secrets: []string{"ab", "cd"}, in: "abcd", want: "[REDACTED]"},
		"json escaped quote":    {secrets: []string{`p"w`}, in: `{"v":"p\"w"}`, want: `{"v":"[REDACTED]"}`},
		"json html escaped":     {secrets: []string{"<&>"}, in: `"\u003c\u0026\u003e" and <&>`, want: `"[REDACTED]" and [REDACTED]`},
		"json escaped newline":  {secrets: []string{"line1\nline2"}, in: `"line1\nline2"`, want: `"[REDACTED]"`},
		"multi-line fragments":  {secrets: []string{"first-line\nsecond-line\n}"}, in: "a first-line\nb second-line\n}", want: "a [REDACTED]\nb [REDACTED]\n}"},
		"unicode":               {secrets: []string{"pässwörd"}, in: "x pässwörd y", want: "x [REDACTED] y"},
		"secret equal to input": {secrets: []string{"whole"}, in: "whole", want: "[REDACTED]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRedactor(tc.secrets)
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLineSplitter(t *testing.T) {
	t.Parallel()
	const secret = "SECRET-VALUE"
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := map[string]struct {
		redact bool
		writes []string
		want   []string
	}{
		"lines across writes": {
			redact: true,
			writes: []string{"hel", "lo\nwor", "ld\n", "tail"},
			want:   []string{"hello", "world", "tail"},
		},
		"secret split across writes is redacted": {
			redact: true,
			writes: []string{"a SECRET-", "VALUE b\n"},
			want:   []string{"a [REDACTED] b"},
		},
		"crlf": {
			redact: true,
			writes: []string{"one\r\ntwo\r\n"},
			want:   []string{"one", "two"},
		},
		"long line cut before a straddling secret": {
			redact: true,
			writes: []string{long(maxLineLen-3) + secret + "yyy\nnext\n"},
			want:   []string{long(maxLineLen-3) + truncatedMark, "next"},
		},
		"long partial line cut before a straddling secret, tail dropped": {
			redact: true,
			writes: []string{long(maxLineLen - 3), secret, long(maxLineLen), "rest\nnext\n"},
			want:   []string{long(maxLineLen-3) + truncatedMark, "next"},
		},
		"long line with secret before the cut": {
			redact: true,
			writes: []string{"a " + secret + long(maxLineLen) + "\n"},
			want:   []string{"a [REDACTED]" + long(maxLineLen-2-len(secret)) + truncatedMark},
		},
		"verbatim mode still cuts safely": {
			redact: false,
			writes: []string{long(maxLineLen-3) + secret + "\n", "a " + secret + "\n"},
			want:   []string{long(maxLineLen-3) + truncatedMark, "a " + secret},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got []string
			sp := newLineSplitter(newRedactor([]string{secret}), tc.redact, func(l string) { got = append(got, l) })
			for _, w := range tc.writes {
				if n, err := sp.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			sp.Flush()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLineReader(t *testing.T) {
	t.Parallel()
	src := io.NopCloser(strings.NewReader("one SECRET\ntwo\npartial SECRET"))
	lr := newLineReader(src, newRedactor([]string{"SECRET"}), true)
	got, err := io.ReadAll(lr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "one [REDACTED]\ntwo\npartial [REDACTED]\n"; string(got) != want {
		t.Errorf("read %q, want %q", got, want)
	}
}

// TestLineReaderFitsPluginLogBuffer checks that every line a lineReader
// yields, however redaction lengthens it, reaches go-plugin's stderr
// reader (a bufio.Reader of pluginLogBufferSize) whole: go-plugin parses
// a line only when ReadLine returns it in one piece.
func TestLineReaderFitsPluginLogBuffer(t *testing.T) {
	t.Parallel()
	const secret = "ab" // each occurrence grows to Redacted
	short := strings.Repeat(secret, maxLineLen/len(secret))
	lines := []string{
		strings.Repeat("x", maxLineLen),   // at the bound
		short,                             // at the bound, grown by redaction
		strings.Repeat("y", 3*maxLineLen), // cut
		strings.Repeat(secret, 2*maxLineLen/len(secret)),     // cut, then grown by redaction
		`{"@level":"info","@message":"after the long ones"}`, // still parsed
	}
	src := io.NopCloser(strings.NewReader(strings.Join(lines, "\n") + "\n"))
	br := bufio.NewReaderSize(newLineReader(src, newRedactor([]string{secret}), true), pluginLogBufferSize)
	for i := range lines {
		line, isPrefix, err := br.ReadLine()
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if isPrefix {
			t.Fatalf("line %d (%d bytes in) reached go-plugin in pieces", i, len(lines[i]))
		}
		if len(line) > maxEmittedLen {
			t.Errorf("line %d: %d bytes, over %d", i, len(line), maxEmittedLen)
		}
		if strings.Contains(string(line), secret) {
			t.Errorf("line %d holds the secret", i)
		}
	}
	if line, _, err := br.ReadLine(); err != io.EOF {
		t.Errorf("after the lines: %q, %v; want EOF", line, err)
	}
}

// FuzzLineSplitter checks that no byte sequence a plugin writes, however it
// is split into writes, gets a secret through the splitter.
func FuzzLineSplitter(f *testing.F) {
	f.Add("token=abc123\n", "abc123", 3)
	f.Add(strings.Repeat("x", 62)+"abc123\n", "abc123", 7)
	f.Add(strings.Repeat("x", 60)+"abc123"+strings.Repeat("y", 80)+"\nnext abc123", "abc123", 9)
	f.Add("ab\nc123abc1\n23", "abc123", 1)
	f.Add(`{"@message":"a\"b"}`+"\n", `a"b`, 5)
	f.Fuzz(func(t *testing.T, data, secret string, chunk int) {
		if len(secret) < 3 || strings.ContainsAny(secret, "\n\x00\x01") {
			t.Skip()
		}
		if chunk <= 0 {
			chunk = 1
		}
		var out bytes.Buffer
		sp := newLineSplitter(newRedactor([]string{secret}), true, func(l string) {
			out.WriteString(l)
			out.WriteByte('\n')
		})
		sp.maxLen = 64 // exercise the cut of over-long lines with small inputs
		for b := []byte(data); len(b) > 0; {
			n := min(chunk, len(b))
			_, _ = sp.Write(b[:n])
			b = b[n:]
		}
		sp.Flush()
		// The markers are the splitter's own text; a secret spelled with
		// their letters must not count as one formed from plugin bytes.
		text := strings.NewReplacer(Redacted, "\x00", truncatedMark, "\x01").Replace(out.String())
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, secret) {
				t.Fatalf("secret %q survived in line %q", secret, line)
			}
		}
	})
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestRedactLogger(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-canary"
	var buf bytes.Buffer
	inner := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, JSONFormat: true})
	// The relay: the sub-logger go-plugin re-logs the plugin's lines on.
	l := newRedactLogger(inner, newRedactor([]string{secret}), "plug").Named("plug")

	l.Info("msg "+secret,
		"string", secret,
		secret, "as a key",
		"bytes", []byte(secret),
		"error", errors.New("failed with "+secret),
		"stringer", stringer{secret},
		"format", hclog.Format{"%s!", secret},
		"map", map[string]string{"k": secret},
		"quote", hclog.Quote(secret),
		"number", 42,
		"hex", hclog.Hex(255),
		"clean-error", errors.New("nothing to hide"),
	)
	l.With("with", secret).Named(secret).Warn("named")
	l.ResetNamed("r-" + secret).Error("reset")
	l.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Printf("[WARN] std %s", secret)
	fmt.Fprintf(l.StandardWriter(nil), "writer %s\n", secret)

	out := buf.String()
	if strings.Contains(out, secret) {
		t.Fatalf("secret reached the log:\n%s", out)
	}
	for _, want := range []string{
		`"@message":"msg [REDACTED]"`, `"string":"[REDACTED]"`, `"[REDACTED]":"as a key"`,
		`"bytes":"[REDACTED]"`, `"error":"failed with [REDACTED]"`, `"stringer":"[REDACTED]"`,
		`"format":"[REDACTED]!"`, `"map":"map[k:[REDACTED]]"`, `"quote":"[REDACTED]"`, `"number":42`,
		`"hex":255`, `"clean-error":"nothing to hide"`, `"with":"[REDACTED]"`, `"@module":"plug.[REDACTED]"`,
		`"@module":"r-[REDACTED]"`, `"@message":"std [REDACTED]"`, `"@level":"warn"`, `"@message":"writer [REDACTED]"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if l.GetLevel() != hclog.Trace || !l.IsTrace() {
		t.Errorf("level not passed through: %v", l.GetLevel())
	}
}

// The host's own lines keep their text whole — a secret as short as "e"
// would otherwise turn "plugin process exited" into "e[REDACTED]ited",
// and where the marks land would tell the secret — while their arguments,
// which may carry what the plugin sent, are still redacted, and the host's
// typed failures pass as they are (their message was redacted when made).
func TestRedactLoggerLeavesHostTextWhole(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	inner := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace, JSONFormat: true})
	host := newRedactLogger(inner, newRedactor([]string{"e", "plugin-said-secret"}), "plug")
	host.Info("plugin process exited", "error", errors.New("plugin-said-secret in its error"),
		"failure", failure.New(failure.ConnectorFailed, "already redacted"))
	host.Named("stdio").Debug("received EOF, stopping recv loop")
	out := buf.String()
	for _, want := range []string{
		`"@message":"plugin process exited"`, `"@message":"received EOF, stopping recv loop"`,
		`"failure":"connector_failed: already redacted"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "plugin-said-secret") {
		t.Errorf("an argument kept the secret:\n%s", out)
	}
}

func TestProxyPasswords(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env  []string
		want []string
	}{
		"no proxy":            {env: []string{"PATH=/bin"}},
		"proxy without creds": {env: []string{"HTTPS_PROXY=http://proxy:3128"}},
		"user only":           {env: []string{"HTTP_PROXY=http://user@proxy:3128"}},
		"password":            {env: []string{"HTTP_PROXY=http://user:s3cret@proxy:3128"}, want: []string{"s3cret", "s3cret"}},
		"escaped password":    {env: []string{"https_proxy=http://user:p%40ss@proxy:3128/"}, want: []string{"p@ss", "p%40ss"}},
		"other variable":      {env: []string{"API_URL=http://user:pw@api"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, proxyPasswords(tc.env)); diff != "" {
				t.Errorf("proxyPasswords (-want +got):\n%s", diff)
			}
		})
	}
}

// A connector that prints its secret encoded — hex, URL-escaped, base64 of
// the secret alone or of a larger text holding it at any offset — leaks
// nothing: after redaction no decoding of the line gives the secret back.
func TestRedactorEncodedForms(t *testing.T) {
	t.Parallel()
	const secret = "tok/SECRET+value?=&123"
	r := newRedactor([]string{secret})
	b64 := map[string]*base64.Encoding{
		"std": base64.StdEncoding, "url": base64.URLEncoding,
		"raw-std": base64.RawStdEncoding, "raw-url": base64.RawURLEncoding,
	}
	hexDecode := func(s string) []string {
		var out []string
		for off := range 2 {
			if off < len(s) {
				p := s[off:]
				b, _ := hex.DecodeString(p[:len(p)/2*2])
				out = append(out, string(b))
			}
		}
		return out
	}
	type form struct {
		encode func(string) string
		// decode gives every reading of a piece of the encoded text.
		decode func(string) []string
	}
	forms := map[string]form{
		"hex":       {func(s string) string { return hex.EncodeToString([]byte(s)) }, hexDecode},
		"HEX":       {func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) }, hexDecode},
		"query":     {url.QueryEscape, func(s string) []string { d, _ := url.QueryUnescape(s); return []string{d} }},
		"path":      {url.PathEscape, func(s string) []string { d, _ := url.PathUnescape(s); return []string{d} }},
		"plain":     {func(s string) string { return s }, func(s string) []string { return []string{s} }},
		"json-html": {func(s string) string { b, _ := json.Marshal(s); return string(b) }, func(s string) []string { return []string{s} }},
	}
	for name, enc := range b64 {
		raw := enc.WithPadding(base64.NoPadding)
		forms["base64-"+name] = form{
			func(s string) string { return enc.EncodeToString([]byte(s)) },
			// A piece may start anywhere in a 4-character group: read it
			// from each of the four offsets.
			func(s string) []string {
				var out []string
				for off := range 4 {
					if off < len(s) {
						p := strings.TrimRight(s[off:], "=")
						if len(p)%4 == 1 {
							p = p[:len(p)-1]
						}
						b, _ := raw.DecodeString(p)
						out = append(out, string(b))
					}
				}
				return out
			},
		}
	}
	for name, f := range forms {
		for lead := range 4 {
			for _, tail := range []string{"", "z", "yz", "xyz"} {
				t.Run(fmt.Sprintf("%s/lead%d/tail%d", name, lead, len(tail)), func(t *testing.T) {
					t.Parallel()
					plain := strings.Repeat("a", lead) + secret + tail
					line := "header " + f.encode(plain) + " trailer"
					got := r.String(line)
					if !strings.Contains(got, "[REDACTED]") {
						t.Fatalf("nothing redacted in %q", line)
					}
					// Decode what stands where the encoded text stood, with
					// the mark dropped: no piece may give the secret back.
					for _, piece := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(got, "header "), " trailer"), "[REDACTED]") {
						for _, d := range append(f.decode(piece), piece) {
							if strings.Contains(d, "SECRET") {
								t.Errorf("%q redacted to %q, which still gives the secret", line, got)
							}
						}
					}
				})
			}
		}
	}
}

// A relayed line does not repeat a pair the host's logger already names
// (the SDK tags its lines with the run_id the host's logger carries), but
// keeps a key whose value differs.
func TestRelayDropsPairsTheHostAlreadyNames(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		args []any
		want []string // each exactly once
	}{
		"same run id":      {args: []any{"run_id", "run-1", "n", 3}, want: []string{"run_id=run-1", "n=3"}},
		"another run id":   {args: []any{"run_id", "run-2"}, want: []string{"run_id=run-1", "run_id=run-2"}},
		"odd trailing arg": {args: []any{"run_id", "run-1", "lonely"}, want: []string{"run_id=run-1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			inner := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Trace}).With("run_id", "run-1")
			l := newRedactLogger(inner, newRedactor([]string{"a-secret-value"}), "plug").Named("plug")
			l.Info("hello", tc.args...)
			out := buf.String()
			for _, w := range tc.want {
				if n := strings.Count(out, w); n != 1 {
					t.Errorf("%q appears %d times in %s", w, n, out)
				}
			}
		})
	}
}

// TestMessageBufferPoolTiers checks that a received message from 16 KiB up
// to the SDK's largest takes a buffer of at most twice its size (gRPC's
// default pool handed a 1 MiB buffer to every message over 32 KiB).
func TestMessageBufferPoolTiers(t *testing.T) {
	t.Parallel()
	for _, n := range []int{17 << 10, 33 << 10, 50 << 10, 300 << 10, 1 << 20, 4 << 20} {
		buf := messageBufferPool.Get(n)
		if len(*buf) != n || cap(*buf) > 2*n {
			t.Errorf("Get(%d): len %d, cap %d; want len %d, cap at most %d", n, len(*buf), cap(*buf), n, 2*n)
		}
		messageBufferPool.Put(buf)
	}
}
