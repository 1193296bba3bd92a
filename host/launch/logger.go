package launch

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/failure"
	"github.com/hashicorp/go-hclog"
)

// redactLogger is an hclog.Logger that replaces a run's secret values in
// what the plugin wrote before passing a line on. go-plugin re-logs the
// plugin's stderr and hclog JSON lines through a sub-logger named after the
// plugin (the relay): its messages, and every key and value of every line,
// are redacted. The messages the host writes itself (go-plugin's and the
// launcher's, constants) are left whole: a redaction inside them would
// mangle them and, by where it lands, tell the secret.
type redactLogger struct {
	inner hclog.Logger
	r     *redactor
	// plugin is the name of the relay sub-logger; relay marks it (and
	// what hangs below it).
	plugin string
	relay  bool
	// implied holds the pairs inner already prints (relay only), each
	// value as fmt prints it: a relayed line does not repeat them.
	implied map[string]string
	// killedByHost, when set, reports whether the plugin process died of
	// the host's own SIGKILL (the call ended, was cancelled, the host
	// stops): go-plugin's "plugin process exited" error is then no error.
	killedByHost func() bool
}

func newRedactLogger(inner hclog.Logger, r *redactor, plugin string) *redactLogger {
	return &redactLogger{inner: inner, r: r, plugin: plugin}
}

// derive is a logger over inner sharing l's redactor, relay name and
// killedByHost.
func (l *redactLogger) derive(inner hclog.Logger, relay bool) *redactLogger {
	d := &redactLogger{inner: inner, r: l.r, plugin: l.plugin, relay: relay, killedByHost: l.killedByHost}
	if relay {
		implied := inner.ImpliedArgs()
		for i := 0; i+1 < len(implied); i += 2 {
			if k, ok := implied[i].(string); ok {
				if d.implied == nil {
					d.implied = map[string]string{}
				}
				d.implied[k] = fmt.Sprint(implied[i+1])
			}
		}
	}
	return d
}

func (l *redactLogger) Log(level hclog.Level, msg string, args ...any) {
	if l.relay {
		msg = l.r.String(msg)
		args = l.dropImplied(relayOrder(args))
	} else if level == hclog.Error && msg == pluginExited && l.killedByHost != nil && l.killedByHost() {
		level, msg = hclog.Debug, "plugin process stopped by the host"
		args = slices.Clone(args)
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "error" {
				args[i] = "exit" // how it ended; no error
			}
		}
	}
	l.inner.Log(level, msg, l.args(args)...)
}

// pluginExited is the message go-plugin logs when the plugin process ends,
// at ERROR when it did not exit 0.
const pluginExited = "plugin process exited"

// relayOrder gives a relayed hclog JSON line's pairs in a fixed order.
// go-plugin decodes the line into a map, so its pairs arrive in the map's
// random order, and appends a "timestamp" pair repeating the line's own
// time (which the host's line has already). The trailing timestamp is
// dropped and the pairs are sorted by key: the order they have in the
// plugin's line, hclog writing JSON keys sorted.
func relayOrder(args []any) []any {
	if len(args) < 2 || len(args)%2 != 0 {
		return args
	}
	if k, ok := args[len(args)-2].(string); ok && k == "timestamp" {
		args = args[:len(args)-2]
	}
	type pair struct {
		k string
		v any
	}
	pairs := make([]pair, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		k, ok := args[i].(string)
		if !ok {
			return args
		}
		pairs = append(pairs, pair{k, args[i+1]})
	}
	slices.SortStableFunc(pairs, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	out := make([]any, 0, len(args))
	for _, p := range pairs {
		out = append(out, p.k, p.v)
	}
	return out
}

// dropImplied removes from a relayed line the pairs the host's logger
// already carries with the same value (the SDK tags its lines with the
// run_id the host's logger names too), so none is printed twice.
func (l *redactLogger) dropImplied(args []any) []any {
	if len(l.implied) == 0 || len(args) < 2 {
		return args
	}
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 < len(args) {
			if k, ok := args[i].(string); ok {
				if v, dup := l.implied[k]; dup && v == fmt.Sprint(args[i+1]) {
					continue
				}
			}
			out = append(out, args[i], args[i+1])
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func (l *redactLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *redactLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *redactLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *redactLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *redactLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *redactLogger) IsTrace() bool { return l.inner.IsTrace() }
func (l *redactLogger) IsDebug() bool { return l.inner.IsDebug() }
func (l *redactLogger) IsInfo() bool  { return l.inner.IsInfo() }
func (l *redactLogger) IsWarn() bool  { return l.inner.IsWarn() }
func (l *redactLogger) IsError() bool { return l.inner.IsError() }

func (l *redactLogger) ImpliedArgs() []any { return l.inner.ImpliedArgs() }

func (l *redactLogger) With(args ...any) hclog.Logger {
	return l.derive(l.inner.With(l.args(args)...), l.relay)
}

func (l *redactLogger) Name() string { return l.inner.Name() }

func (l *redactLogger) Named(name string) hclog.Logger {
	return l.derive(l.inner.Named(l.r.String(name)), l.relay || name == l.plugin)
}

func (l *redactLogger) ResetNamed(name string) hclog.Logger {
	return l.derive(l.inner.ResetNamed(l.r.String(name)), l.relay || name == l.plugin)
}

func (l *redactLogger) SetLevel(level hclog.Level) { l.inner.SetLevel(level) }
func (l *redactLogger) GetLevel() hclog.Level      { return l.inner.GetLevel() }

func (l *redactLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer whose lines go through this logger, so the
// standard library's log output is redacted too.
func (l *redactLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	// What reaches a standard logger comes from the plugin: redact it all.
	return &stdWriter{l: l.derive(l.inner, true), opts: *opts}
}

// args returns args with every value redacted, and every key on the relay
// (the host's own keys are constants it wrote). Values that hold no secret
// keep their type, so hclog formats them as before.
func (l *redactLogger) args(args []any) []any {
	if l.r.empty() || len(args) == 0 {
		return args
	}
	out := make([]any, len(args))
	for i, a := range args {
		if _, key := a.(string); key && i%2 == 0 && !l.relay {
			out[i] = a
			continue
		}
		out[i] = l.r.value(a)
	}
	return out
}

// value redacts one log argument. Anything that is not a plain number is
// rendered the way hclog would render it and replaced by the redacted text
// when that text held a secret.
func (r *redactor) value(v any) any {
	var s string
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64,
		uintptr, float32, float64, complex64, complex128, time.Duration, hclog.Hex, hclog.Octal, hclog.Binary:
		return v
	case string:
		return r.String(x)
	case []byte:
		s = string(x)
	case hclog.Format:
		if len(x) > 0 {
			if f, ok := x[0].(string); ok {
				s = fmt.Sprintf(f, x[1:]...)
				break
			}
		}
		s = fmt.Sprint(x...)
	case *failure.Error:
		// The host's typed failure: its code is the host's and its
		// message was redacted where it was made.
		return v
	case error:
		s = x.Error()
	case fmt.Stringer:
		s = x.String()
	default:
		s = fmt.Sprintf("%+v", x)
	}
	if r.Contains(s) {
		return r.String(s)
	}
	return v
}

// stdWriter adapts the standard library's log output to a redactLogger.
type stdWriter struct {
	l    hclog.Logger
	opts hclog.StandardLoggerOptions
}

func (w *stdWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, " \t\n"))
	level := hclog.Info
	if w.opts.ForceLevel != hclog.NoLevel {
		level = w.opts.ForceLevel
	} else if w.opts.InferLevels {
		level, line = inferLevel(line, hclog.Info)
	}
	w.l.Log(level, line)
	return len(p), nil
}

// inferLevel reads the "[LEVEL]" prefix convention go-plugin and hclog use
// for plain text lines.
func inferLevel(line string, def hclog.Level) (hclog.Level, string) {
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{
		{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info},
		{"[WARN]", hclog.Warn}, {"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error},
	} {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			return p.level, strings.TrimSpace(rest)
		}
	}
	return def, line
}

var (
	_ hclog.Logger = (*redactLogger)(nil)
	_ io.Writer    = (*stdWriter)(nil)
)
