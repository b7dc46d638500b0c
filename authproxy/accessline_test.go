package authproxy

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogAccessLine is the line slog's JSONHandler writes for a: what the fast
// formatter must write byte for byte.
func slogAccessLine(a *accessLine) []byte {
	var buf bytes.Buffer
	level := slog.LevelInfo
	if a.warn {
		level = slog.LevelWarn
	}
	r := slog.NewRecord(a.time, level, "request", 0)
	r.AddAttrs(
		slog.String("request_id", a.id), slog.String("method", a.method), slog.String("path", a.path),
		slog.Int("status", a.status), slog.Int64("bytes", a.bytes), slog.Float64("duration_ms", durationMillis(a.duration)),
		slog.String("outcome", a.outcome), slog.String("user", a.user),
	)
	if a.idp != "" {
		r.AddAttrs(slog.String("idp", a.idp))
	}
	_ = slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r)
	return buf.Bytes()
}

func TestAccessLineMatchesSlog(t *testing.T) {
	at := time.Date(2026, 12, 2, 1, 2, 3, 450000000, time.UTC)
	for _, tc := range []struct {
		name string
		line accessLine
	}{
		{"plain", accessLine{time: at, id: "3k2j1", method: "GET", path: "/app/x", status: 200, bytes: 88, duration: 1234 * time.Microsecond, outcome: "proxied", user: "alice"}},
		{"warn, zero duration, no user", accessLine{time: at, warn: true, id: "x", method: "POST", path: "/", status: 502, outcome: "error"}},
		{"escapes", accessLine{time: at.In(time.FixedZone("x", 3600)), id: `"\`, method: "GET", path: "/a\"b\\c\nd\re\tf\x00\x1f<>&", status: 400, duration: time.Second, outcome: "bad_request", user: "ü \u2028\u2029"}},
		{"invalid UTF-8", accessLine{time: at, id: "i", method: "GET", path: "/\xff\xfe/\xc3", status: 404, duration: 999 * time.Microsecond, outcome: "public", user: "\xed\xa0\x80"}},
		{"long duration", accessLine{time: at, id: "l", method: "GET", path: "/stream", status: 200, bytes: 1 << 40, duration: 90 * time.Minute, outcome: "proxied"}},
		{"with an IdP", accessLine{time: at, id: "p", method: "GET", path: "/portal/", status: 200, outcome: "proxied", user: "u", idp: "partners-2"}},
		{"nanoseconds trimmed", accessLine{time: at.Add(7), id: "n", method: "HEAD", path: "/", status: 304, duration: 1, outcome: "proxied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tc.line.appendJSON(nil), slogAccessLine(&tc.line)
			if !bytes.Equal(got, want) {
				t.Errorf("fast line:\n%s\nslog's:\n%s", got, want)
			}
		})
	}
}

func FuzzAccessLineMatchesSlog(f *testing.F) {
	f.Add("GET", "/app", "alice", int64(1234), 200)
	f.Add("POST", "/a\"\\\n\x00\u2028\xff", "ü", int64(0), 502)
	f.Fuzz(func(t *testing.T, method, path, user string, micros int64, status int) {
		a := &accessLine{time: time.Unix(1764637323, micros%1e9).UTC(), warn: status >= 500, id: path, method: method,
			path: path, status: status, bytes: micros, duration: time.Duration(micros) * time.Microsecond, outcome: user, user: user, idp: method}
		if got, want := a.appendJSON(nil), slogAccessLine(a); !bytes.Equal(got, want) {
			t.Errorf("fast line:\n%s\nslog's:\n%s", got, want)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogWriter: access lines wait, other lines go out at once and after
// them (the log keeps its order), a timer flushes what waits, and Close
// writes everything held; nothing written is ever lost.
func TestLogWriter(t *testing.T) {
	out := &syncBuffer{}
	l := NewLogWriter(out)
	access := l.Buffered()
	access.Write([]byte("access 1\n"))
	access.Write([]byte("access 2\n"))
	l.Write([]byte("audit 1\n"))
	if got := out.String(); got != "access 1\naccess 2\naudit 1\n" {
		t.Fatalf("after an immediate line: %q, want the held lines first, in order", got)
	}

	access.Write([]byte("access 3\n"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "access 3") {
		if time.Now().After(deadline) {
			t.Fatal("a held access line was never flushed by the timer")
		}
		time.Sleep(10 * time.Millisecond)
	}

	big := bytes.Repeat([]byte("x"), logBufferSize+1)
	big[len(big)-1] = '\n'
	access.Write(big)
	if !strings.HasSuffix(out.String(), string(big)) {
		t.Error("a line larger than the buffer was not written at once")
	}

	access.Write([]byte("access 4\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "access 4\n") {
		t.Fatal("Close did not write the held line")
	}
	access.Write([]byte("after close\n"))
	if !strings.HasSuffix(out.String(), "after close\n") {
		t.Error("after Close, an access line was held")
	}
	if err := l.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestAccessLogThroughLogWriter: with Options.AccessLog, as main wires it,
// a request's access line reaches the log as JSON with every field, and a
// flush writes it.
func TestAccessLogThroughLogWriter(t *testing.T) {
	e := newTestEnv(t)
	out := &syncBuffer{}
	l := NewLogWriter(out)
	defer l.Close()
	srv, err := New(Options{Config: e.cfg, Provider: e.provider, Store: e.store, StateCodec: e.srv.current(context.Background()).state,
		Templates: e.srv.pages, Logger: slog.New(slog.NewJSONHandler(l, nil)), AccessLog: l.Buffered()})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/app", nil)
	req.Header.Set("Cookie", e.mintSession(t, testSession()))
	req.Header.Set("Accept", "application/json")
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, want := range []string{`"msg":"request"`, `"method":"GET"`, `"path":"/app"`, `"status":200`, `"outcome":"proxied"`, `"user":"` + testSession().User + `"`, `"request_id":"` + rec.Header().Get("X-Request-Id") + `"`} {
		if !strings.Contains(line, want) {
			t.Errorf("access line %q lacks %s", line, want)
		}
	}
}
