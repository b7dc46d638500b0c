package authproxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/session"
)

// streams tracks the long-lived requests (WebSocket upgrades and event
// streams) open under each session, so that they are closed when their
// session is signed out, revoked or expires. Ordinary requests are not
// tracked: they end by themselves.
type streams struct {
	// recheck is how often an open stream's session is looked up again:
	// streamRecheck, or less in tests.
	recheck time.Duration

	mu   sync.Mutex
	open map[*stream]struct{}
}

type stream struct {
	sess   *session.Session
	cancel context.CancelFunc
}

func newStreams() *streams {
	return &streams{recheck: streamRecheck, open: map[*stream]struct{}{}}
}

// isStream reports whether r asks for a response that may stay open:
// a protocol upgrade (WebSocket) or an event stream.
func isStream(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return true
	}
	for _, v := range r.Header.Values("Accept") {
		if strings.Contains(v, "text/event-stream") {
			return true
		}
	}
	return false
}

// track returns a context for a stream of sess that ends at the session's
// absolute expiry or when closeWhere matches it, and a func to call when the
// stream is over.
func (ss *streams) track(ctx context.Context, sess *session.Session) (context.Context, func()) {
	ctx, cancelDeadline := context.WithDeadline(ctx, sess.ExpiresAt)
	ctx, cancel := context.WithCancel(ctx)
	st := &stream{sess: sess, cancel: cancel}
	ss.mu.Lock()
	ss.open[st] = struct{}{}
	ss.mu.Unlock()
	return ctx, func() {
		ss.mu.Lock()
		delete(ss.open, st)
		ss.mu.Unlock()
		cancel()
		cancelDeadline()
	}
}

// streamRecheck is how often an open stream's session is looked up again,
// so that a sign-out or revocation handled by another replica or by
// `authproxy sessions revoke` (which cannot reach this process's streams)
// still closes it within 5 s, even when this process missed the
// revocation's announcement: one store read per open stream every 2 s.
const streamRecheck = 2 * time.Second

// recheckStream closes a stream (calls done) once r's session, sess, is no
// longer valid in the store, checking every streamRecheck until ctx ends. A store
// that fails (Redis down) leaves the stream open.
func (s *Server) recheckStream(ctx context.Context, r *http.Request, sess *session.Session, done func()) {
	tick := time.NewTicker(s.streams.recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// The store now in effect: a stream outlives reloads.
		if _, err := s.live.Load().store.Load(r); errors.Is(err, session.ErrNotFound) {
			s.log.Info("closing a stream whose session ended elsewhere", "event", "stream_closed", "user", sess.User, "idp", s.idps.nameOf(sess), "path", r.URL.Path)
			done()
			return
		}
	}
}

// closeWhere closes every open stream whose session matches, and reports
// how many it closed.
func (ss *streams) closeWhere(match func(*session.Session) bool) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for st := range ss.open {
		if match(st.sess) {
			st.cancel()
			delete(ss.open, st)
			n++
		}
	}
	return n
}
