package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/connhost/connhost/host/api/client"
)

// templates holds one parsed set per page: the layout, the shared
// partials (templates/_*.html) and the page's own file.
type templates struct{ byName map[string]*template.Template }

func parseTemplates() (*templates, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	partials, err := fs.Glob(templateFS, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	t := &templates{byName: map[string]*template.Template{}}
	for _, n := range names {
		base := path.Base(n)
		if strings.HasPrefix(base, "_") {
			continue
		}
		files := append(slices.Clone(partials), n)
		tpl, err := template.New(base).Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", base, err)
		}
		t.byName[base] = tpl
	}
	return t, nil
}

// view is what every page template gets: the page's own Data plus what
// the layout needs.
type view struct {
	// Section is the nav entry to mark current ("connections", …).
	Section  string
	CSRF     string
	Flash    string
	SignedIn bool
	Data     any
}

// render executes a page into a buffer and writes it with status: a
// template error is a clean 500, never half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, status int, name string, data any) {
	tpl, ok := c.pages.byName[name]
	if !ok {
		c.log.Error("console: no such template", "template", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v := view{Section: section(r.URL.Path), Data: data}
	if s != nil {
		v.SignedIn, v.CSRF, v.Flash = true, s.csrf, c.takeFlash(s)
	}
	var buf bytes.Buffer
	if err := tpl.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// section is the first path segment under the prefix.
func section(p string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(p, Prefix), "/")
	return seg
}

// pageError is a console-side refusal shown on the error page.
type pageError struct {
	status int
	code   string
	msg    string
}

func (e *pageError) Error() string { return e.code + ": " + e.msg }

// errorData is the error page's data.
type errorData struct {
	Status  int
	Code    string
	Message string
	Field   string
	RunID   string
}

// fail shows an error page for err: the API's typed error as it came
// (code, message, field, refused run), a console refusal, or a generic
// internal error whose detail goes to the log only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	var pe *pageError
	var ae *client.APIError
	d := errorData{Status: http.StatusInternalServerError, Code: "internal", Message: "the console failed to serve this page; the host log says why"}
	switch {
	case errors.As(err, &pe):
		d = errorData{Status: pe.status, Code: pe.code, Message: pe.msg}
	case errors.As(err, &ae):
		d = errorData{Status: ae.Status, Code: ae.Code, Message: ae.Message, Field: ae.Field, RunID: ae.RunID}
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the browser went away
	default:
		c.log.Error("console: page failed", "path", r.URL.Path, "error", err)
	}
	if d.Status < 400 {
		d.Status = http.StatusInternalServerError
	}
	c.render(w, r, s, d.Status, "error.html", d)
}

// formErrors maps an API refusal onto a form: the message beside the
// field it names, or above the form when it names none (or a field the
// form does not have).
type formErrors struct {
	Fields  map[string]string
	General string
	Code    string
	RunID   string
}

// For returns the message for a field, "" when it has none.
func (f *formErrors) For(field string) string {
	if f == nil {
		return ""
	}
	return f.Fields[field]
}

// Any reports whether there is an error.
func (f *formErrors) Any() bool { return f != nil && (f.General != "" || len(f.Fields) > 0) }

// formError turns err into formErrors when it is a typed refusal a
// person can fix by editing the form (4xx), placing it on one of fields
// (matched exactly, then by prefix: "config.repo" lands on "config").
// Anything else is returned as an error for the error page.
func formError(err error, fields ...string) (*formErrors, error) {
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status >= 500 || ae.Status == http.StatusNotFound {
		return nil, err
	}
	fe := &formErrors{Fields: map[string]string{}, Code: ae.Code, RunID: ae.RunID}
	msg := ae.Code + ": " + ae.Message
	for _, f := range fields {
		if ae.Field != "" && (ae.Field == f || strings.HasPrefix(ae.Field, f+".") || strings.HasPrefix(ae.Field, f+"[")) {
			fe.Fields[f] = msg
			return fe, nil
		}
	}
	fe.General = msg
	return fe, nil
}

// funcs are the template functions.
var funcs = template.FuncMap{
	"prettyJSON": prettyJSON,
	"join":       strings.Join,
	"query":      query,
	"pathEscape": url.PathEscape,
	"contains":   slices.Contains[[]string],
	"add":        func(a, b int) int { return a + b },
	"utc":        utc,
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
}

// prettyJSON indents raw JSON for display ("" for none).
func prettyJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

// query returns base with the non-empty pairs of kv as its query.
func query(base string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

// utc formats an RFC 3339 time as "2006-01-02 15:04:05 UTC"; the
// script shows it in the viewer's zone and keeps this as the tooltip.
func utc(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
