package authproxy

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
)

const (
	// refreshMargin is how long before the access token expires a request
	// refreshes it.
	refreshMargin = time.Minute
	// refreshTimeout bounds one refresh call to the IdP.
	refreshTimeout = 10 * time.Second
	// refreshRetryAfter is how long a session waits after a refresh failed
	// because the IdP was unavailable before it tries again.
	refreshRetryAfter = 10 * time.Second
	// refreshedKeep is how long a refresh result is remembered for requests
	// that still carry the session from before it (cookie store: the
	// browser sends the old cookie until it has the new one).
	refreshedKeep = time.Minute
)

// errSessionEnded means the IdP refused the refresh token: the session is
// over and the user must sign in again.
var errSessionEnded = errors.New("authproxy: identity provider ended the session")

// Locker holds what replicas share about refreshes and logouts: short
// locks, one-time marks and sealed refresh results. The Redis backend is
// one; session.MemoryBackend serves a single process.
type Locker interface {
	// SetNX sets key to value with a TTL unless key exists, and reports
	// whether it did.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Set sets key to value with a TTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Get returns key's value, or an error wrapping session.ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
}

// refresher makes sure each session is refreshed once at a time in this
// process: concurrent requests of one session wait for the one refresh.
type refresher struct {
	mu       sync.Mutex
	inflight map[string]*refreshCall
	done     map[string]refreshResult // by session ID
}

type refreshCall struct {
	wait chan struct{}
	sess *session.Session
	err  error
}

type refreshResult struct {
	sess     *session.Session
	err      error
	at       time.Time
	previous string // the refresh token the result replaced
}

func newRefresher() *refresher {
	return &refresher{inflight: map[string]*refreshCall{}, done: map[string]refreshResult{}}
}

// forget drops what is remembered of a session; sign-out calls it.
func (rf *refresher) forget(id string) {
	rf.mu.Lock()
	delete(rf.done, id)
	rf.mu.Unlock()
}

// refreshDue reports whether sess's access token needs refreshing at now:
// it is about to expire, or it is to be forwarded and sess, saved while it
// was not, lacks it.
func (s *Server) refreshDue(sess *session.Session, now time.Time) bool {
	if sess.RefreshToken == "" {
		return false
	}
	if s.cfg.PassAccessToken && sess.AccessToken == "" {
		return true
	}
	return !sess.TokenExpiry.IsZero() && now.After(sess.TokenExpiry.Add(-refreshMargin))
}

// refreshIfDue returns sess, or a refreshed copy when its access token is
// about to expire, saving it for the browser. Concurrent requests of one
// session share one refresh. It returns errSessionEnded when the IdP refused
// the refresh token; when the IdP is unavailable it logs and returns sess
// unchanged, so signed-in users keep working.
func (s *Server) refreshIfDue(w http.ResponseWriter, r *http.Request, sess *session.Session) (*session.Session, error) {
	now := s.now()
	if !s.refreshDue(sess, now) {
		return sess, nil
	}
	rf := s.refresher
	rf.mu.Lock()
	if res, ok := rf.done[sess.ID]; ok && now.Sub(res.at) < refreshedKeep {
		switch {
		case res.err == nil && res.previous == sess.RefreshToken:
			// This request carries the session from before a refresh that
			// has already happened: use its result, and hand it on.
			rf.mu.Unlock()
			return res.sess, s.saveRefreshed(w, r, res.sess)
		case errors.Is(res.err, errSessionEnded) && res.previous == sess.RefreshToken:
			// The IdP refused this refresh token a moment ago.
			rf.mu.Unlock()
			return nil, res.err
		case res.err != nil && now.Sub(res.at) < refreshRetryAfter:
			rf.mu.Unlock()
			return sess, nil
		}
	}
	call, follower := rf.inflight[sess.ID]
	if !follower {
		call = &refreshCall{wait: make(chan struct{})}
		rf.inflight[sess.ID] = call
	}
	rf.mu.Unlock()

	if follower {
		select {
		case <-call.wait:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	} else {
		call.sess, call.err = s.refreshOnce(w, r, sess)
		rf.mu.Lock()
		delete(rf.inflight, sess.ID)
		rf.done[sess.ID] = refreshResult{sess: call.sess, err: call.err, at: s.now(), previous: sess.RefreshToken}
		for id, res := range rf.done {
			if s.now().Sub(res.at) > refreshedKeep {
				delete(rf.done, id)
			}
		}
		rf.mu.Unlock()
		close(call.wait)
	}

	switch {
	case errors.Is(call.err, errSessionEnded):
		return nil, call.err
	case call.err != nil:
		s.metrics.refreshes.WithLabelValues("unavailable", s.idps.nameOf(sess)).Inc()
		s.log.Warn("token refresh failed; keeping the session", "event", "refresh", "result", "unavailable", "user", sess.User, "idp", s.idps.nameOf(sess), "err", call.err)
		return sess, nil
	case !follower:
		return call.sess, nil // refreshOnce saved it
	}
	return call.sess, s.saveRefreshed(w, r, call.sess)
}

func (s *Server) saveRefreshed(w http.ResponseWriter, r *http.Request, sess *session.Session) error {
	if err := s.store.Save(w, r, sess); err != nil {
		return fmt.Errorf("authproxy: saving refreshed session: %w", err)
	}
	return nil
}

// refreshOnce spends the session's refresh token once across all replicas
// and saves the result for this request's browser. Under the replicas'
// shared lock it first looks for a result another replica already got for
// this very refresh token (published sealed for a minute, so a browser whose
// next request reaches another replica with the old cookie is not refused),
// or a session the store already holds refreshed (ticket store); only then
// does it ask the IdP. The lock is held until the result is saved.
func (s *Server) refreshOnce(w http.ResponseWriter, r *http.Request, sess *session.Session) (*session.Session, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), refreshTimeout)
	defer cancel()
	resultKey := refreshResultKey(sess)
	lockKey := "refresh-lock:" + sess.ID
	for {
		if got := s.sharedRefreshResult(ctx, resultKey); got != nil {
			return got, s.saveRefreshed(w, r, got)
		}
		// Past the cache: the other replica's invalidation may not have
		// arrived yet.
		if cur, err := s.loadFresh(r); err == nil && cur.RefreshToken != sess.RefreshToken {
			return cur, nil // refreshed in place by another replica
		}
		ok, err := s.locker.SetNX(ctx, lockKey, []byte("1"), refreshTimeout)
		if err != nil {
			return nil, fmt.Errorf("authproxy: taking refresh lock: %w", err)
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("authproxy: waiting for another replica's refresh: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer s.locker.Delete(context.WithoutCancel(ctx), lockKey)
	// Another replica may have finished between our look and the lock.
	if got := s.sharedRefreshResult(ctx, resultKey); got != nil {
		return got, s.saveRefreshed(w, r, got)
	}

	p := s.idps.get(sess.IdP)
	if p == nil {
		return nil, fmt.Errorf("%w: the session's identity provider %q is no longer configured", errSessionEnded, sess.IdP)
	}
	id, err := p.provider.Refresh(ctx, sess.RefreshToken)
	if errors.Is(err, providers.ErrRejected) {
		s.metrics.refreshes.WithLabelValues("refused", p.name()).Inc()
		s.log.Info("refresh refused; session ended", "event", "refresh", "result", "refused", "user", sess.User, "idp", p.name(), "err", err)
		return nil, fmt.Errorf("%w: %w", errSessionEnded, err)
	}
	if err != nil {
		return nil, err
	}
	n := *sess
	s.keepTokens(p, &n, id)
	if id.IDToken != "" {
		if id.Subject != sess.Subject {
			// OpenID Connect Core 12.2: a refreshed ID token is about the
			// same user, or it is not to be trusted at all.
			return nil, fmt.Errorf("%w: refreshed ID token is for another subject", errSessionEnded)
		}
		if !p.emailTrusted(id) {
			return nil, fmt.Errorf("%w: refreshed ID token has an unverified email", errSessionEnded)
		}
		n.Email = id.Email
		n.PreferredUsername = id.PreferredUsername
		n.Groups = id.Groups
		n.Extra = id.Extra
		if id.User != "" {
			n.User = id.User
		}
	}
	if err := s.saveRefreshed(w, r, &n); err != nil {
		if errors.Is(err, session.ErrTooLarge) {
			// The refreshed identity (more groups) no longer fits the
			// cookies, and the refresh token it replaces may be spent:
			// signing in again shows the page that says why.
			return nil, fmt.Errorf("%w: %w", errSessionEnded, err)
		}
		return nil, err
	}
	if sealed, err := s.current(ctx).state.Seal(refreshResultName, &n); err == nil {
		if err := s.locker.Set(ctx, resultKey, []byte(sealed), refreshedKeep); err != nil {
			s.log.Warn("publishing the refresh result failed", "err", err)
		}
	}
	s.metrics.refreshes.WithLabelValues("ok", p.name()).Inc()
	s.log.Info("session refreshed", "event", "refresh", "result", "ok", "user", n.User, "idp", p.name())
	return &n, nil
}

// refreshResultName is the name refresh results are sealed under.
const refreshResultName = "authproxy-refresh-result"

// refreshResultKey names the shared result of spending sess's refresh token:
// the session id and a hash of the token, never the token itself.
func refreshResultKey(sess *session.Session) string {
	sum := sha256.Sum256([]byte(sess.RefreshToken))
	return "refresh-result:" + sess.ID + ":" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// sharedRefreshResult opens a result another replica published, or nil.
func (s *Server) sharedRefreshResult(ctx context.Context, key string) *session.Session {
	raw, err := s.locker.Get(ctx, key)
	if err != nil {
		return nil
	}
	var n session.Session
	if err := s.current(ctx).state.Open(refreshResultName, string(raw), &n); err != nil {
		return nil
	}
	return &n
}
