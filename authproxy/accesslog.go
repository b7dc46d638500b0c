package authproxy

import (
	"context"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/authproxy/authproxy/session"
)

// requestInfo is what the handlers tell the access log about a request.
// The access-log middleware puts one in every request's context.
type requestInfo struct {
	id      string
	outcome string
	user    string
	// idp names the signed-in user's IdP, with several IdPs.
	idp string
	// cookies are the request's cookies, split once (requestCookies), in
	// cookieBuf for the common few; parsed says whether they have been.
	cookies   []session.Cookie
	cookieBuf [8]session.Cookie
	parsed    bool
	// headerBuf backs the values of the headers rewrite sets upstream
	// (headerValues).
	headerBuf [6]string
	// live is the configuration the request is served with, read once as
	// it starts (Server.current).
	live *live
}

type requestInfoKey struct{}

// infoFrom returns the request's requestInfo; a zero one (discarded) when the
// request did not pass through the access-log middleware.
func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// setOutcome records the request's outcome (and user, when known).
func setOutcome(r *http.Request, outcome, user string) {
	ri := infoFrom(r.Context())
	ri.outcome = outcome
	if user != "" {
		ri.user = user
	}
}

// accessLog is the outermost middleware: it gives the request an id, counts
// it in the metrics and writes one log line when it ends: request id,
// method, path without the query, status, bytes, duration and the user when
// known. Never the query string, cookies or headers. With tracing on it
// also holds the request's server span.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, span := s.startServerSpan(r)
		ri := &requestInfo{id: requestID(), live: s.live.Load()}
		w.Header().Set("X-Request-Id", ri.id)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		s.metrics.inFlight.Inc()
		defer func() {
			s.metrics.inFlight.Dec()
			outcome := ri.outcome
			switch {
			case rec.status >= 500 && outcome != outcomeEndpoint:
				outcome = outcomeError
			case outcome == "":
				outcome = outcomeEndpoint
			}
			s.metrics.countRequest(outcome)
			if span != nil {
				s.endServerSpan(span, ri, rec.status, outcome)
			}
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelWarn
			}
			if s.accessOut != nil {
				if s.log.Enabled(r.Context(), level) {
					s.writeAccessLine(&accessLine{
						time: time.Now(), warn: level == slog.LevelWarn, id: ri.id, method: r.Method,
						path: truncate(r.URL.Path, 256), status: rec.status, bytes: rec.bytes,
						duration: time.Since(start), outcome: outcome, user: ri.user, idp: ri.idp,
					})
				}
				return
			}
			attrs := []slog.Attr{
				slog.String("request_id", ri.id),
				slog.String("method", r.Method),
				slog.String("path", truncate(r.URL.Path, 256)),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Float64("duration_ms", durationMillis(time.Since(start))),
				slog.String("outcome", outcome),
				slog.String("user", ri.user),
			}
			if ri.idp != "" {
				attrs = append(attrs, slog.String("idp", ri.idp))
			}
			s.log.LogAttrs(r.Context(), level, "request", attrs...)
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(ctx, requestInfoKey{}, ri)))
	})
}

// writeAccessLine writes one access-log line to s.accessOut.
func (s *Server) writeAccessLine(a *accessLine) {
	bp, _ := s.lineBuffers.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 512)
		bp = &b
	}
	*bp = a.appendJSON((*bp)[:0])
	_, _ = s.accessOut.Write(*bp)
	s.lineBuffers.Put(bp)
}

// requestID returns a short id for logs and pages. It need not be
// unguessable, only unlikely to repeat, so it avoids crypto/rand's cost.
func requestID() string {
	return strconv.FormatUint(mrand.Uint64(), 36)
}

// recorder captures the status and size of a response. Unwrap lets
// http.ResponseController reach Flush and Hijack for streams and WebSockets.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (rec *recorder) WriteHeader(code int) {
	if !rec.wroteHeader && code >= 200 {
		rec.status, rec.wroteHeader = code, true
	}
	if code == http.StatusSwitchingProtocols {
		rec.status, rec.wroteHeader = code, true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.wroteHeader = true
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped ResponseWriter.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
