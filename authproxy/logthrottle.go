package authproxy

import (
	"log/slog"
	"sync"
	"time"
)

// storeLogEvery is how often a session store that keeps failing is logged.
const storeLogEvery = 5 * time.Second

// logThrottle logs a failure that recurs, such as every request's while the
// session store is down, without a line per failure: the first is logged at
// once, then, while failures go on, one summary a window with their count
// ("repeated") and the latest error. It is safe for concurrent use.
type logThrottle struct {
	log   *slog.Logger
	msg   string
	every time.Duration

	mu    sync.Mutex
	open  bool // a window runs: failures are counted, not logged
	count int
	last  []any // the latest counted failure's attributes, its error last
}

func newLogThrottle(log *slog.Logger, msg string, every time.Duration) *logThrottle {
	return &logThrottle{log: log, msg: msg, every: every}
}

// failed records one failure, err, with attrs (key-value pairs) that say
// where it happened.
func (t *logThrottle) failed(err error, attrs ...any) {
	attrs = append(attrs, "err", err)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open {
		t.count++
		t.last = attrs
		return
	}
	t.open = true
	t.log.Error(t.msg, attrs...)
	time.AfterFunc(t.every, t.flush)
}

// flush ends a window: it logs the failures counted in it, if any, and then
// opens another; without any, the next failure is logged at once again.
func (t *logThrottle) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count == 0 {
		t.open = false
		return
	}
	t.log.Error(t.msg, append(t.last, "repeated", t.count, "within", t.every.String())...)
	t.count, t.last = 0, nil
	time.AfterFunc(t.every, t.flush)
}
