package launch

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"sort"
	"strings"
)

// Redacted replaces every secret value in text that reaches a log line or
// an error.
const Redacted = "[REDACTED]"

// minFragment is the shortest line of a multi-line secret that is redacted
// on its own. A raw stream splits such a secret across log lines; shorter
// fragments (a lone "}") would redact ordinary text without hiding anything.
const minFragment = 4

// redactor replaces the exact values injected into one run. It is
// immutable after construction and safe for concurrent use.
type redactor struct {
	patterns []string // longest first, so a longer secret wins over its prefix
	maxLen   int
}

// newRedactor returns a redactor for secrets. Besides each value it also
// hides the value's JSON-escaped forms (how it appears inside an hclog JSON
// line on the wire), its common encodings (encodedForms) and the lines of
// a multi-line value.
func newRedactor(secrets []string) *redactor {
	set := map[string]bool{}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		set[s] = true
		for _, esc := range jsonForms(s) {
			set[esc] = true
		}
		for _, enc := range encodedForms(s) {
			set[enc] = true
		}
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range strings.Split(s, "\n") {
				line = strings.TrimSuffix(line, "\r")
				if len(line) >= minFragment {
					set[line] = true
				}
			}
		}
	}
	r := &redactor{}
	for p := range set {
		r.patterns = append(r.patterns, p)
		r.maxLen = max(r.maxLen, len(p))
	}
	sort.Slice(r.patterns, func(i, j int) bool {
		if len(r.patterns[i]) != len(r.patterns[j]) {
			return len(r.patterns[i]) > len(r.patterns[j])
		}
		return r.patterns[i] < r.patterns[j]
	})
	return r
}

// minEncoded is the shortest encoded form that is redacted: a shorter one
// (the core of a short secret's base64) would match ordinary text.
const minEncoded = 8

// encodedForms returns the forms a connector may print a secret in:
// lower- and upper-case hex; standard and URL-safe base64, padded and not,
// and — because a secret inside a larger base64 text is encoded from
// wherever it falls in a 3-byte group — the run of characters that
// encode only the secret's bytes at each of the three alignments; and URL
// (query and path) percent-encoding.
func encodedForms(s string) []string {
	b := []byte(s)
	out := []string{hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(s), url.PathEscape(s)}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		out = append(out, enc.EncodeToString(b), enc.WithPadding(base64.NoPadding).EncodeToString(b))
		raw := enc.WithPadding(base64.NoPadding)
		for k := range 3 {
			// k bytes before the secret in its first group: the first
			// ceil(4k/3) characters mix in those bytes, and the last
			// group, if partial, mixes in what follows.
			e := raw.EncodeToString(append(make([]byte, k), b...))
			from, to := (4*k+2)/3, (k+len(b))/3*4
			if to-from >= minEncoded {
				out = append(out, e[from:to])
			}
		}
	}
	var forms []string
	for _, f := range out {
		if f != s && len(f) >= minEncoded {
			forms = append(forms, f)
		}
	}
	return forms
}

// jsonForms returns s as it appears inside a JSON string, with and without
// HTML escaping, when that differs from s.
func jsonForms(s string) []string {
	var out []string
	if b, err := json.Marshal(s); err == nil {
		out = append(out, string(b[1:len(b)-1]))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err == nil {
		b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		out = append(out, string(b[1:len(b)-1]))
	}
	return out
}

// empty reports whether the redactor has nothing to hide.
func (r *redactor) empty() bool { return r == nil || len(r.patterns) == 0 }

// String returns s with every occurrence of every pattern replaced by
// Redacted. Overlapping occurrences merge into one marker, so no byte of any
// occurrence survives.
func (r *redactor) String(s string) string {
	if r.empty() {
		return s
	}
	iv := r.intervals(s)
	if len(iv) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, in := range iv {
		b.WriteString(s[last:in[0]])
		b.WriteString(Redacted)
		last = in[1]
	}
	b.WriteString(s[last:])
	return b.String()
}

// Contains reports whether s holds any pattern.
func (r *redactor) Contains(s string) bool {
	if r.empty() {
		return false
	}
	for _, p := range r.patterns {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// intervals returns the merged [start, end) spans of every occurrence of
// every pattern in s, sorted by start.
func (r *redactor) intervals(s string) [][2]int {
	var iv [][2]int
	for _, p := range r.patterns {
		for off := 0; off+len(p) <= len(s); {
			i := strings.Index(s[off:], p)
			if i < 0 {
				break
			}
			start := off + i
			iv = append(iv, [2]int{start, start + len(p)})
			off = start + 1 // occurrences of one pattern may overlap
		}
	}
	if len(iv) < 2 {
		return iv
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	merged := iv[:1]
	for _, in := range iv[1:] {
		top := &merged[len(merged)-1]
		if in[0] <= top[1] {
			top[1] = max(top[1], in[1])
			continue
		}
		merged = append(merged, in)
	}
	return merged
}

// safeCut returns the largest cut point c <= n such that no occurrence of a
// pattern spans c. s must extend at least r.maxLen bytes past n (or to the
// end of the text) so every occurrence starting before n is seen whole.
func (r *redactor) safeCut(s string, n int) int {
	if r.empty() {
		return n
	}
	for _, in := range r.intervals(s) {
		if in[0] < n && n < in[1] {
			return in[0]
		}
		if in[0] >= n {
			break
		}
	}
	return n
}

// lookahead is how far past a cut point safeCut needs to see.
func (r *redactor) lookahead() int {
	if r == nil {
		return 0
	}
	return r.maxLen
}

// maxLineLen bounds one line of plugin output. Longer lines are cut (at a
// point no secret spans) and the rest of the line is dropped: a log line is
// not data, and an unbounded line would let a plugin grow host memory.
const maxLineLen = 32 << 10

// truncatedMark ends a line that was cut at maxLineLen.
const truncatedMark = " [truncated]"

// maxEmittedLen bounds a line a lineSplitter emits, redacted and cut:
// maxLineLen bytes of text and, when cut, truncatedMark.
const maxEmittedLen = maxLineLen + len(truncatedMark)

// pluginLogBufferSize is go-plugin's stderr buffer (allocated whole for
// every child): one line of maxEmittedLen and its newline, so every line
// a lineReader yields reaches go-plugin's parser whole.
const pluginLogBufferSize = maxEmittedLen + 1

// lineSplitter turns a byte stream into lines, each bounded by maxLen
// (and truncatedMark when cut, after redaction too) and,
// when redact is set, with secrets replaced. It hands each finished line,
// without its newline, to emit.
type lineSplitter struct {
	r      *redactor
	redact bool
	maxLen int
	emit   func(line string)

	buf        []byte
	discarding bool // inside the dropped tail of an over-long line
}

func newLineSplitter(r *redactor, redact bool, emit func(string)) *lineSplitter {
	return &lineSplitter{r: r, redact: redact, maxLen: maxLineLen, emit: emit}
}

// Write feeds p to the splitter. It never fails.
func (s *lineSplitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if s.discarding {
			if i < 0 {
				return n, nil
			}
			s.discarding = false
			p = p[i+1:]
			continue
		}
		if i < 0 {
			s.buf = append(s.buf, p...)
			if len(s.buf) >= s.maxLen+s.r.lookahead() {
				s.emitLong(string(s.buf))
				s.buf = s.buf[:0]
				s.discarding = true
			}
			return n, nil
		}
		s.buf = append(s.buf, p[:i]...)
		p = p[i+1:]
		s.emitLine(string(s.buf))
		s.buf = s.buf[:0]
	}
	return n, nil
}

// Flush emits a final line that has no newline.
func (s *lineSplitter) Flush() {
	if len(s.buf) > 0 && !s.discarding {
		s.emitLine(string(s.buf))
	}
	s.buf = s.buf[:0]
	s.discarding = false
}

func (s *lineSplitter) emitLine(line string) {
	if len(line) > s.maxLen {
		s.emitLong(line)
		return
	}
	out := s.apply(strings.TrimSuffix(line, "\r"))
	if len(out) > s.maxLen {
		// Redaction lengthened it: cut the redacted text, which holds no
		// secret, so the line stays within maxEmitted.
		out = out[:s.maxLen] + truncatedMark
	}
	s.emit(out)
}

// emitLong emits the head of an over-long line, cut where no secret spans
// the cut, so no fragment of a secret survives in the head.
func (s *lineSplitter) emitLong(line string) {
	cut := s.r.safeCut(line, s.maxLen)
	out := s.apply(line[:cut])
	if len(out) > s.maxLen {
		out = out[:s.maxLen]
	}
	s.emit(out + truncatedMark)
}

func (s *lineSplitter) apply(line string) string {
	if s.redact {
		return s.r.String(line)
	}
	return line
}

// lineReader is an io.ReadCloser over src that yields src's lines through a
// lineSplitter. The launcher hands go-plugin lineReaders instead of the raw
// pipes, so every line go-plugin sees is bounded (and, for stderr, already
// redacted) before go-plugin splits, parses or re-logs it.
type lineReader struct {
	src  io.ReadCloser
	sp   *lineSplitter
	out  bytes.Buffer
	rbuf []byte
	err  error
}

func newLineReader(src io.ReadCloser, r *redactor, redact bool) *lineReader {
	lr := &lineReader{src: src, rbuf: make([]byte, 4<<10)}
	lr.sp = newLineSplitter(r, redact, func(line string) {
		lr.out.WriteString(line)
		lr.out.WriteByte('\n')
	})
	return lr
}

// Read returns whole processed lines.
func (lr *lineReader) Read(p []byte) (int, error) {
	for lr.out.Len() == 0 && lr.err == nil {
		n, err := lr.src.Read(lr.rbuf)
		_, _ = lr.sp.Write(lr.rbuf[:n])
		if err != nil {
			lr.sp.Flush()
			lr.err = err
		}
	}
	if lr.out.Len() > 0 {
		return lr.out.Read(p)
	}
	return 0, lr.err
}

// Close closes src, which unblocks a pending Read.
func (lr *lineReader) Close() error { return lr.src.Close() }

var _ io.ReadCloser = (*lineReader)(nil)
