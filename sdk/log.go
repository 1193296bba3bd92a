package sdk

import (
	"encoding/json"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// redacted replaces a credential value in logs and failure messages.
const redacted = "[REDACTED]"

// maxFailureMessage bounds a failure message: it travels in gRPC trailers
// and ends up in run rows.
const maxFailureMessage = 4096

// redactor removes a run's credential values from text. The host redacts
// what it receives too; doing it here as well means a connector that logs
// or wraps its own secret by mistake never puts it on the wire at all.
type redactor struct {
	r *strings.Replacer // nil when there is nothing to redact
}

// newRedactor returns a redactor for values, matching each value both as
// is and JSON-escaped (as it appears inside a JSON log line).
func newRedactor(values []string) redactor {
	var olds []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			olds = append(olds, s)
		}
	}
	for _, v := range values {
		add(v)
		add(jsonBody(v, true))
		add(jsonBody(v, false))
	}
	if len(olds) == 0 {
		return redactor{}
	}
	// Longest first, so a value that contains another is replaced whole.
	sort.Slice(olds, func(i, j int) bool {
		if len(olds[i]) != len(olds[j]) {
			return len(olds[i]) > len(olds[j])
		}
		return olds[i] < olds[j]
	})
	pairs := make([]string, 0, 2*len(olds))
	for _, o := range olds {
		pairs = append(pairs, o, redacted)
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

// jsonBody returns v as it appears between the quotes of a JSON string.
func jsonBody(v string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// String returns s with every value replaced.
func (r redactor) String(s string) string {
	if r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Message prepares text for a failure or progress message: redacted, valid
// UTF-8 (protobuf refuses anything else) and bounded.
func (r redactor) Message(s string) string {
	s = strings.ToValidUTF8(r.String(s), "\uFFFD")
	if len(s) > maxFailureMessage {
		i := maxFailureMessage
		for i > 0 && !isRuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// redactWriter redacts each write. hclog writes a whole log line per Write,
// so a value never straddles two writes.
type redactWriter struct {
	w io.Writer
	r redactor
}

func (w redactWriter) Write(p []byte) (int, error) {
	if w.r.r == nil {
		return w.w.Write(p)
	}
	if _, err := io.WriteString(w.w, w.r.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// newLogger returns the JSON hclog logger a run or check gets. go-plugin's
// host side parses JSON hclog lines from a plugin's stderr and re-logs them
// at their own level, so the plugin logs everything and the host's level
// decides what is kept.
func newLogger(out io.Writer, level hclog.Level, r redactor, fields ...any) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Output:     redactWriter{w: out, r: r},
		Level:      level,
		JSONFormat: true,
	}).With(fields...)
}
