package server

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// newLogger builds the host's logger from the config.
func newLogger(c *Config) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "connhost",
		Level:      hclog.LevelFromString(c.LogLevel),
		Output:     c.LogOutput,
		JSONFormat: c.LogFormat == "json",
	})
}

// slogHandler sends log/slog records (the SQLite store's migration log)
// to an hclog logger, so the host has one log with one format.
type slogHandler struct {
	l     hclog.Logger
	attrs []any
}

func newSlog(l hclog.Logger) *slog.Logger { return slog.New(&slogHandler{l: l}) }

func hclogLevel(l slog.Level) hclog.Level {
	switch {
	case l >= slog.LevelError:
		return hclog.Error
	case l >= slog.LevelWarn:
		return hclog.Warn
	case l >= slog.LevelInfo:
		return hclog.Info
	default:
		return hclog.Debug
	}
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.l.GetLevel() <= hclogLevel(l)
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	args := append([]any(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a.Key, a.Value.Any())
		return true
	})
	h.l.Log(hclogLevel(r.Level), r.Message, args...)
	return nil
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := &slogHandler{l: h.l, attrs: append([]any(nil), h.attrs...)}
	for _, a := range attrs {
		n.attrs = append(n.attrs, a.Key, a.Value.Any())
	}
	return n
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	return &slogHandler{l: h.l.Named(name), attrs: h.attrs}
}

var _ slog.Handler = (*slogHandler)(nil)
