package authproxy

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/authproxy/authproxy/templates"
)

// Every answer that is not a handler's own success (an error page, a 401
// or 429, a 503 while the session store is down) is an *answer that the
// handler returns as its error, and one adapter (Server.handle, through
// Server.answer) logs and writes it, as Caddy's handlers return a
// caddyhttp.Error: the handler says what happened, the adapter says it to
// the log and to the client (a page to a browser, JSON to any other).

// answer is a response other than a handler's own success. The zero value
// is not usable; build one with the constructors below.
type answer struct {
	// page is what a browser sees; page.Status is the status, for every
	// client. Other clients get {"error", "message"} from it, or json.
	page templates.Page
	// json, when not nil, is the body for every client (API answers
	// such as a bad bearer token's 401).
	json any
	// header holds response headers to set (Retry-After,
	// WWW-Authenticate, Connection).
	header map[string]string

	// What the log says of it: through throttle when set (failures that
	// repeat on every request while a dependency is down), else a line
	// msg at level, when msg is set, with attrs and the cause.
	throttle *logThrottle
	level    slog.Level
	msg      string
	attrs    []any
	cause    error
}

func (a *answer) Error() string {
	if a.cause != nil {
		return "authproxy: " + http.StatusText(a.page.Status) + ": " + a.cause.Error()
	}
	return "authproxy: " + http.StatusText(a.page.Status)
}

// Unwrap returns the cause.
func (a *answer) Unwrap() error { return a.cause }

// pageAnswer is an answer that shows page p and logs nothing.
func pageAnswer(p templates.Page) *answer { return &answer{page: p} }

// jsonAnswer is an answer with body v for every client.
func jsonAnswer(status int, v any) *answer {
	return &answer{page: templates.Page{Status: status}, json: v}
}

// logged makes a log a line msg at level of it, with attrs and cause.
func (a *answer) logged(level slog.Level, msg string, cause error, attrs ...any) *answer {
	a.level, a.msg, a.cause, a.attrs = level, msg, cause, attrs
	return a
}

// with sets a response header of it.
func (a *answer) with(name, value string) *answer {
	if a.header == nil {
		a.header = map[string]string{}
	}
	a.header[name] = value
	return a
}

// internalError is a generic 500 page that reveals nothing; the log says
// what failed.
func internalError(what string, err error) *answer {
	return pageAnswer(templates.Page{
		Status:  http.StatusInternalServerError,
		Title:   "Something went wrong",
		Message: "authproxy could not complete this request.",
	}).logged(slog.LevelError, what+" failed", err)
}

// handler is one of authproxy's handlers: it answers the request itself,
// or returns the answer (an *answer; any other error is a 500) for
// Server.handle to write.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle adapts h to an http.HandlerFunc: what h returns is logged and
// written by answer.
func (s *Server) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.answer(w, r, err)
		}
	}
}

// answer logs and writes err, an *answer (any other error is a 500 whose
// cause only the log sees). It is the one place where authproxy's error
// pages and JSON errors are written.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, err error) {
	var a *answer
	if !errors.As(err, &a) {
		a = internalError("request", err)
	}
	switch {
	case a.throttle != nil:
		a.throttle.failed(a.cause, a.attrs...)
	case a.msg != "":
		attrs := a.attrs
		if a.cause != nil {
			attrs = append(attrs[:len(attrs):len(attrs)], "err", a.cause)
		}
		s.log.Log(r.Context(), a.level, a.msg, attrs...)
	}
	h := w.Header()
	for name, v := range a.header {
		h.Set(name, v)
	}
	if a.json != nil {
		writeJSON(w, a.page.Status, a.json)
		return
	}
	p := a.page
	p.RequestID = infoFrom(r.Context()).id
	if !acceptsHTML(r) {
		writeJSON(w, p.Status, map[string]string{"error": strings.ToLower(strings.ReplaceAll(http.StatusText(p.Status), " ", "_")), "message": p.Message})
		return
	}
	if err := s.pages.Render(w, templates.ErrorPage, p); err != nil {
		s.log.Error("rendering page failed", "err", err)
	}
}
