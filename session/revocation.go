package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Backend key families of a RevocationList. Each holds the time of the
// latest revocation as decimal Unix nanoseconds.
const (
	revokedSIDPrefix = "revoked-sid:" // + hashName(Session.ScopedSID())
	revokedSubPrefix = "revoked-sub:" // + hashName(Session.ScopedSubject())
	revokedIDPrefix  = "revoked-id:"  // + hashName(Session.ID)
	// + hashName(NormalEmail(Session.Email))
	revokedEmailPrefix = "revoked-email:"
	// revokedAllKey marks every session created until then as revoked.
	revokedAllKey = "revoked-all"
)

// RevocationList records, in a Backend, which sessions have been revoked:
// those of an IdP session (sid), of a user (subject or email) or every
// session, created at or before the time of the revocation, and single
// sessions signed out of.
// It gives the cookie store what it cannot do alone (see WithRevocation).
//
// Revocation times come from the list's clock and are compared with
// Session.CreatedAt, which the signing-in replica's clock set: replicas'
// clocks must agree to well under a second, or a user who signs in again
// just after a revocation may find the new session revoked too.
//
// A RevocationList is safe for concurrent use. With a MemoryBackend it
// covers one replica and is forgotten when the process restarts, bringing
// revoked cookies back; share a RedisBackend between replicas instead.
type RevocationList struct {
	backend Backend
	ttl     time.Duration
	now     func() time.Time
}

var (
	_ AdminRevoker = (*RevocationList)(nil)
	_ Pinger       = (*RevocationList)(nil)
)

// NewRevocationList returns a RevocationList kept in backend, which must
// not be nil. ttl, which must be positive, is how long a revocation is
// kept: it must be at least the longest session lifetime (the
// ExpiresAt - CreatedAt the caller gives sessions), or sessions revoked
// early in their lives come back once it has passed. now is the clock that
// stamps revocations; nil means time.Now.
func NewRevocationList(backend Backend, ttl time.Duration, now func() time.Time) *RevocationList {
	if backend == nil {
		panic("session: NewRevocationList: nil backend")
	}
	if ttl <= 0 {
		panic("session: NewRevocationList: ttl must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &RevocationList{backend: backend, ttl: ttl, now: now}
}

// RevokeSID revokes every session whose ScopedSID is sid (see Revoker: sid
// is Scope(idp, the IdP's sid)) created until now. It cannot know how many
// sessions that ends, and reports 0. sid must not be empty, nor scope an
// empty sid.
func (l *RevocationList) RevokeSID(ctx context.Context, sid string) (int, error) {
	if emptyScope(sid) {
		return 0, errors.New("session: revoke: empty sid")
	}
	return 0, l.mark(ctx, revokedSIDPrefix+hashName(sid), l.ttl)
}

// RevokeSubject revokes every session whose ScopedSubject is sub (see
// Revoker: sub is Scope(idp, the IdP's sub)) created until now. It cannot
// know how many sessions that ends, and reports 0. sub must not be empty,
// nor scope an empty subject.
func (l *RevocationList) RevokeSubject(ctx context.Context, sub string) (int, error) {
	if emptyScope(sub) {
		return 0, errors.New("session: revoke: empty subject")
	}
	return 0, l.mark(ctx, revokedSubPrefix+hashName(sub), l.ttl)
}

// RevokeEmail revokes every session with Email email (compared without
// regard to case), signed in at any IdP, created until now. It cannot know
// how many sessions that ends, and reports 0. email must not be empty.
func (l *RevocationList) RevokeEmail(ctx context.Context, email string) (int, error) {
	e := NormalEmail(email)
	if e == "" {
		return 0, errors.New("session: revoke: empty email")
	}
	return 0, l.mark(ctx, revokedEmailPrefix+hashName(e), l.ttl)
}

// RevokeAll revokes every session created until now. It cannot know how
// many sessions that ends, and reports 0.
func (l *RevocationList) RevokeAll(ctx context.Context) (int, error) {
	return 0, l.mark(ctx, revokedAllKey, l.ttl)
}

// revokeSession revokes the one session sess, until it would have expired.
func (l *RevocationList) revokeSession(ctx context.Context, sess *Session) error {
	ttl := sess.ExpiresAt.Sub(l.now()) + indexSlack
	if ttl <= 0 {
		return nil // it has expired: nothing to revoke
	}
	return l.mark(ctx, revokedIDPrefix+hashName(sess.ID), ttl)
}

// mark records a revocation at the list's now under key.
func (l *RevocationList) mark(ctx context.Context, key string, ttl time.Duration) error {
	at := strconv.AppendInt(nil, l.now().UnixNano(), 10)
	if err := l.backend.Set(ctx, key, at, ttl); err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	return nil
}

// Revoked reports whether sess has been revoked: by its ID, or by its
// ScopedSID, ScopedSubject or Email, or by a revocation of every session,
// at or after its CreatedAt. The marks are read in one round trip when the
// backend can (RedisBackend, MemoryBackend). An error means the backend
// failed (or holds something it should not), not that sess is revoked;
// callers must not treat the session as valid then.
func (l *RevocationList) Revoked(ctx context.Context, sess *Session) (bool, error) {
	keys := make([]string, 0, 5)
	keys = append(keys, revokedAllKey)
	for _, c := range []struct{ prefix, name string }{
		{revokedIDPrefix, sess.ID},
		{revokedSIDPrefix, sess.ScopedSID()},
		{revokedSubPrefix, sess.ScopedSubject()},
		{revokedEmailPrefix, NormalEmail(sess.Email)},
	} {
		if c.name != "" {
			keys = append(keys, c.prefix+hashName(c.name))
		}
	}
	vals, err := getEach(ctx, l.backend, keys)
	if err != nil {
		return false, fmt.Errorf("session: revocation check: %w", err)
	}
	for _, v := range vals {
		if v == nil {
			continue
		}
		ns, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return false, errors.New("session: revocation check: malformed revocation record")
		}
		if !sess.CreatedAt.After(time.Unix(0, ns)) {
			return true, nil
		}
	}
	return false, nil
}

// Ping reports whether the list's backend answers.
func (l *RevocationList) Ping(ctx context.Context) error {
	return l.backend.Ping(ctx)
}

// RevocableStore is a Store, normally a CookieStore, whose sessions can be
// revoked before they expire, through a RevocationList. Make one with
// WithRevocation.
type RevocableStore struct {
	store Store
	list  *RevocationList
}

var (
	_ Store        = (*RevocableStore)(nil)
	_ AdminRevoker = (*RevocableStore)(nil)
	_ Pinger       = (*RevocableStore)(nil)
	_ CookieOwner  = (*RevocableStore)(nil)
)

// WithRevocation returns store, whose sessions Load now checks against
// list, and whose Clear also revokes the session signed out of.
//
// A CookieStore alone cannot end a session before it expires: its Clear
// only asks the browser to drop the cookie, so a copy taken before (by
// malware, a shared computer, a leaked log) stays valid until ExpiresAt,
// and it has no record of sessions by sid or subject for back-channel
// logout. Wrapped, a copied cookie stops working at sign-out, and the
// RevocableStore implements Revoker and AdminRevoker. The price is a read of
// up to five marks on every Load, in one round trip with Redis; when the backend fails, Load fails with an error that does
// not wrap ErrNotFound (never letting a possibly revoked session through).
//
// The TicketStore needs no wrapping: it deletes sessions itself.
func WithRevocation(store Store, list *RevocationList) *RevocableStore {
	if store == nil || list == nil {
		panic("session: WithRevocation: nil store or list")
	}
	return &RevocableStore{store: store, list: list}
}

// Load returns the wrapped store's session unless it has been revoked, in
// which case the error wraps ErrNotFound.
func (s *RevocableStore) Load(r *http.Request) (*Session, error) {
	return s.LoadCookies(r, AppendCookies(nil, r.Header))
}

// LoadCookies implements CookieLoader: Load from the request's cookies,
// already split.
func (s *RevocableStore) LoadCookies(r *http.Request, cookies []Cookie) (*Session, error) {
	sess, err := LoadWith(s.store, r, cookies)
	if err != nil {
		return nil, err
	}
	revoked, err := s.list.Revoked(r.Context(), sess)
	switch {
	case err != nil:
		return nil, fmt.Errorf("session: load: %w", err)
	case revoked:
		return nil, notFound(errors.New("session revoked"))
	}
	return sess, nil
}

// Save saves sess with the wrapped store. A revoked session stays revoked
// when saved again.
func (s *RevocableStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	return s.store.Save(w, r, sess)
}

// Clear revokes the request's session, if it has a valid one, then clears
// it with the wrapped store. The wrapped store's Clear runs even when
// revoking fails; the error then means a copy of the session may still work.
func (s *RevocableStore) Clear(w http.ResponseWriter, r *http.Request) error {
	var revokeErr error
	if sess, err := s.store.Load(r); err == nil {
		revokeErr = s.list.revokeSession(r.Context(), sess)
	} else if !errors.Is(err, ErrNotFound) {
		revokeErr = fmt.Errorf("session: clear: %w", err)
	}
	return errors.Join(s.store.Clear(w, r), revokeErr)
}

// RevokeSID revokes every session whose ScopedSID is sid; see
// RevocationList.RevokeSID.
func (s *RevocableStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	return s.list.RevokeSID(ctx, sid)
}

// RevokeSubject revokes every session whose ScopedSubject is sub; see
// RevocationList.RevokeSubject.
func (s *RevocableStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return s.list.RevokeSubject(ctx, sub)
}

// RevokeEmail revokes every session with Email email, at any IdP; see
// RevocationList.RevokeEmail.
func (s *RevocableStore) RevokeEmail(ctx context.Context, email string) (int, error) {
	return s.list.RevokeEmail(ctx, email)
}

// RevokeAll revokes every session; see RevocationList.RevokeAll.
func (s *RevocableStore) RevokeAll(ctx context.Context) (int, error) {
	return s.list.RevokeAll(ctx)
}

// Ping reports whether the revocation list's backend, and the wrapped store
// if it is a Pinger, answer.
func (s *RevocableStore) Ping(ctx context.Context) error {
	if err := s.list.Ping(ctx); err != nil {
		return err
	}
	if p, ok := s.store.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Owns reports whether cookieName is one of the wrapped store's cookies;
// false when it sets none (is not a CookieOwner).
func (s *RevocableStore) Owns(cookieName string) bool {
	o, ok := s.store.(CookieOwner)
	return ok && o.Owns(cookieName)
}
