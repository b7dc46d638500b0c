package session

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisLogEvery is how often each kind of go-redis log line may be logged.
const redisLogEvery = 5 * time.Second

// SetRedisLogger sends go-redis's own log lines (the Redis client under
// RedisBackend: failed dials, Sentinel switches) to log, instead of plain
// text on stderr, which would break a JSON log. Lines that report a failure
// are logged at Warn, the others at Info, as message "redis client" with the
// line as "detail". Each kind of line is logged at most once every 5 s; the
// next one says in "repeated" how many were left out.
//
// go-redis has one logger per process, not one per client: this is a
// process-wide setting. Call it once, at start-up, before making a
// RedisBackend; a later call replaces the logger of every backend.
func SetRedisLogger(log *slog.Logger) {
	redis.SetLogger(newRedisLogger(log, time.Now))
}

// redisLogger adapts a *slog.Logger to go-redis's logging interface.
type redisLogger struct {
	log *slog.Logger
	now func() time.Time

	mu    sync.Mutex
	kinds map[string]*redisLogKind // by format string, a constant of go-redis's
}

// redisLogKind is when a kind of line was last logged, and how many of that
// kind have been left out since.
type redisLogKind struct {
	at      time.Time
	dropped int
}

func newRedisLogger(log *slog.Logger, now func() time.Time) *redisLogger {
	return &redisLogger{log: log, now: now, kinds: map[string]*redisLogKind{}}
}

// Printf implements go-redis's internal.Logging.
func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	now := l.now()
	l.mu.Lock()
	k := l.kinds[format]
	if k != nil && now.Sub(k.at) < redisLogEvery {
		k.dropped++
		l.mu.Unlock()
		return
	}
	dropped := 0
	if k != nil {
		dropped = k.dropped
	}
	l.kinds[format] = &redisLogKind{at: now}
	l.mu.Unlock()

	line := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	level := slog.LevelInfo
	if strings.Contains(line, "fail") || strings.Contains(line, "error") || strings.Contains(line, "unreachable") {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("detail", truncateLine(line, 512))}
	if dropped > 0 {
		attrs = append(attrs, slog.Int("repeated", dropped))
	}
	l.log.LogAttrs(ctx, level, "redis client", attrs...)
}

// truncateLine shortens s to at most n bytes, never splitting a character.
func truncateLine(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
