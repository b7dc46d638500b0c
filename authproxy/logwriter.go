package authproxy

import (
	"io"
	"sync"
	"time"
)

// Defaults for a LogWriter.
const (
	// logFlushEvery is how long an access-log line may wait in memory.
	logFlushEvery = 100 * time.Millisecond
	// logBufferSize is how much is kept before it is written at once.
	logBufferSize = 32 << 10
)

// LogWriter serializes log lines onto one writer (stderr), so that the
// access log, one line per request, costs one write system call per batch
// rather than per request. Lines written with Write (audit events, errors:
// slog's handler) go out at once, after any access-log lines still held, so
// the log keeps its order; the access log's lines (Buffered) wait in memory
// for at most 100 ms or 32 KiB. Close, which main calls on SIGTERM and
// before every exit, writes what is held: a line is lost only if the
// process is killed (SIGKILL, a runtime fatal error) in those 100 ms.
//
// A LogWriter is safe for concurrent use.
type LogWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	err    error // the last write error, reported by Flush and Close
	closed bool  // after Close, nothing is held
	stop   chan struct{}
	done   chan struct{}
}

// NewLogWriter returns a LogWriter onto w, flushing every 100 ms until Close.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w, buf: make([]byte, 0, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushEvery(logFlushEvery)
	return l
}

func (l *LogWriter) flushEvery(d time.Duration) {
	defer close(l.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			_ = l.Flush()
		}
	}
}

// Write writes p, a whole line or lines, at once, after anything held.
func (l *LogWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	n, err := l.w.Write(p)
	if err != nil {
		l.err = err
	}
	return n, err
}

// Buffered returns the writer for the access log: each Write, one whole
// line, is held until the next flush.
func (l *LogWriter) Buffered() io.Writer { return bufferedLog{l} }

type bufferedLog struct{ l *LogWriter }

func (b bufferedLog) Write(p []byte) (int, error) {
	l := b.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf)+len(p) > cap(l.buf) || l.closed {
		l.flushLocked()
	}
	if len(p) > cap(l.buf) || l.closed {
		n, err := l.w.Write(p)
		if err != nil {
			l.err = err
		}
		return n, err
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// Flush writes what is held and returns the last write error, if any.
func (l *LogWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return l.err
}

func (l *LogWriter) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.w.Write(l.buf); err != nil {
		l.err = err
	}
	l.buf = l.buf[:0]
}

// Close stops the periodic flush and writes what is held. Lines written
// after Close go out at once.
func (l *LogWriter) Close() error {
	select {
	case <-l.stop:
	default:
		close(l.stop)
		<-l.done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.flushLocked()
	return l.err
}
