package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Backend key families of the ticket store.
const (
	sessionKeyPrefix = "session:" // + ticket id: the encrypted session
	infoKeyPrefix    = "info:"    // + ticket id: the session's Info, in clear, for Lister
	sidKeyPrefix     = "sid:"     // + hashName(Session.ScopedSID()): set of ticket ids
	subKeyPrefix     = "sub:"     // + hashName(Session.ScopedSubject()): set of ticket ids
	emailKeyPrefix   = "email:"   // + hashName(NormalEmail(email)): set of ticket ids
)

// indexSlack keeps an index a little longer than the sessions it names.
const indexSlack = time.Minute

// errEnded is why Save refuses to bring back a session that ended while a
// request was using it.
var errEnded = errors.New("session ended while in use")

// TicketStore is a Store that keeps sessions in a Backend (Redis, usually)
// and gives the browser only a ticket: one cookie of under 200 bytes however
// large the tokens, sealed with a Codec under the cookie's name. The ticket
// holds a random secret from which the session's backend key and a
// per-session AES-256 key are derived; the backend holds the session
// encrypted (AES-256-GCM) with that key. Neither side alone reveals a token:
// a dump of the backend holds ciphertext whose keys exist only in browsers,
// and a ticket without the backend holds nothing.
//
// Unlike the cookie store, a TicketStore can end sessions for good: Clear
// deletes the session, so a copied cookie stops working, and it implements
// Revoker for back-channel logout and AdminRevoker and Lister for operators,
// using indexes of sessions by sid and by subject (each scoped by the
// session's IdP, see Scope) and by email kept in the backend. It implements
// Pinger: the proxy is not ready while the backend does not answer.
//
// Under the prefix a RedisBackend adds, it uses keys "session:<id>",
// "info:<id>" (the session's Info: times and IdP name only, in clear),
// "sid:<hash>", "sub:<hash>" and "email:<hash>"; the caller may use the same
// backend for keys of its own under other prefixes. It is safe for
// concurrent use.
type TicketStore struct {
	backend Backend
	codec   *Codec
	cookies *CookieStore // for the cookie attributes, Owns and expiring
	name    string
	now     func() time.Time
}

var (
	_ Store        = (*TicketStore)(nil)
	_ Pinger       = (*TicketStore)(nil)
	_ Revoker      = (*TicketStore)(nil)
	_ AdminRevoker = (*TicketStore)(nil)
	_ Lister       = (*TicketStore)(nil)
	_ CookieOwner  = (*TicketStore)(nil)
)

// NewTicketStore returns a TicketStore keeping sessions in backend and
// sealing tickets with codec; neither may be nil. The codec's max age
// should be at least the sessions' lifetime, or tickets stop opening before
// their sessions end. opts are the ticket cookie's attributes, with the same
// defaults as for NewCookieStore; MaxChunks does not apply (a ticket always
// fits one cookie). now is the clock used to check Session.Expired and to
// set TTLs; nil means time.Now.
func NewTicketStore(backend Backend, codec *Codec, opts CookieOptions, now func() time.Time) *TicketStore {
	if backend == nil {
		panic("session: NewTicketStore: nil backend")
	}
	if now == nil {
		now = time.Now
	}
	cookies := NewCookieStore(codec, opts, now) // panics on a nil codec
	return &TicketStore{backend: backend, codec: codec, cookies: cookies, name: cookies.opts.Name, now: now}
}

// Owns reports whether cookieName is one of the store's cookies: the ticket
// cookie's name, or that name followed by "_" and digits (the cookie
// store's chunks, which Save and Clear expire: a browser may still carry
// them from before a switch to this store).
func (s *TicketStore) Owns(cookieName string) bool {
	return s.cookies.Owns(cookieName)
}

// Ping reports whether the backend answers.
func (s *TicketStore) Ping(ctx context.Context) error {
	return s.backend.Ping(ctx)
}

// Load returns the session the request's ticket names. A missing, forged or
// malformed ticket, a ticket whose session was deleted, revoked or has
// expired in the backend, a stored session that does not open with the
// ticket's key, and a session that has ended (Session.Expired) give an
// error wrapping ErrNotFound. When the backend fails, the error does not
// wrap ErrNotFound: the caller should answer 503, not ask the user to sign
// in again.
func (s *TicketStore) Load(r *http.Request) (*Session, error) {
	return s.LoadCookies(r, AppendCookies(nil, r.Header))
}

// LoadCookies implements CookieLoader: Load from the request's cookies,
// already split.
func (s *TicketStore) LoadCookies(r *http.Request, cookies []Cookie) (*Session, error) {
	t, err := s.ticket(cookies)
	if err != nil {
		return nil, err
	}
	sess, err := s.fetch(r.Context(), t)
	if err != nil {
		return nil, err
	}
	if sess.Expired(s.now()) {
		return nil, notFound(errors.New("session expired"))
	}
	return sess, nil
}

// ticket returns the ticket in the request's cookie, or an error wrapping
// ErrNotFound.
func (s *TicketStore) ticket(cookies []Cookie) (*ticket, error) {
	var value string
	for _, c := range cookies {
		// Of duplicates, the first is the most specific; an empty value
		// is what Clear leaves in a browser that has not dropped it yet.
		if c.Name == s.name && c.Value != "" {
			value = c.Value
			break
		}
	}
	if value == "" {
		return nil, notFound(errors.New("no session cookie"))
	}
	var encoded string
	if err := s.codec.Open(s.name, value, &encoded); err != nil {
		return nil, notFound(err)
	}
	t, err := parseTicket(encoded)
	if err != nil {
		return nil, notFound(err)
	}
	return t, nil
}

// fetch returns the session t names, whether or not it has ended. A missing
// or unreadable session wraps ErrNotFound; a backend failure does not.
func (s *TicketStore) fetch(ctx context.Context, t *ticket) (*Session, error) {
	blob, err := s.backend.Get(ctx, sessionKeyPrefix+t.id)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound(errors.New("session not in backend"))
	}
	if err != nil {
		return nil, fmt.Errorf("session: load: %w", err)
	}
	plain, err := openBlob(t.key, t.id, blob)
	if err != nil {
		return nil, notFound(err)
	}
	var sess Session
	if err := json.Unmarshal(plain, &sess); err != nil {
		return nil, notFound(fmt.Errorf("stored session: %w", err))
	}
	return &sess, nil
}

// Save stores sess, which must have an ID, and has not ended.
//
// When the request's ticket names a session with the same ID (a refresh,
// or an update of LastSeen), Save overwrites it in place and keeps the
// ticket: two backend calls, no index writes, and a Set-Cookie only if
// sess.ExpiresAt changed. If that session has meanwhile been deleted
// (revoked, cleared, or replaced by a sign-in in another request), Save does
// not bring it back: it returns an error wrapping ErrNotFound, writes
// nothing, and the caller should treat the user as signed out.
//
// Otherwise (a new sign-in) Save first deletes the session the request's
// ticket named, if any, so that a ticket planted in the browser before
// sign-in opens nothing after it; then it stores sess under a new ticket,
// indexes it by SID, Subject and Email for the Revoke and List methods,
// records its Info, and sets
// the ticket cookie (expiring any cookie-store chunks the request carried).
//
// The backend entry lives until sess ends (ExpiresAt, or its idle timeout
// if sooner); the cookie until ExpiresAt. Save sets headers only, so it must
// be called before the response's header is written. On a backend failure
// it returns an error not wrapping ErrNotFound; the request's old session
// may be gone by then.
func (s *TicketStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	switch {
	case sess == nil:
		return errors.New("session: save: nil session")
	case sess.ID == "":
		return errors.New("session: save: session has no ID")
	}
	now := s.now()
	if sess.Expired(now) {
		return errors.New("session: save: session already ended")
	}
	plain, err := json.Marshal(sess)
	if err != nil {
		return fmt.Errorf("session: save: %w", err)
	}
	ctx := r.Context()

	old, err := s.ticket(AppendCookies(nil, r.Header))
	if err != nil {
		old = nil // no valid ticket: nothing to update or delete
	}
	var cur *Session
	if old != nil {
		cur, err = s.fetch(ctx, old)
		switch {
		case err == nil && cur.ID == sess.ID:
			return s.update(ctx, w, old, cur, sess, plain, now)
		case errors.Is(err, ErrNotFound) && old.issuedFor(sess.ID):
			// The ticket's session is gone and sess is most likely that
			// session, not a new sign-in: don't bring it back.
			return fmt.Errorf("session: save: %w", notFound(errEnded))
		case err != nil && !errors.Is(err, ErrNotFound):
			return fmt.Errorf("session: save: %w", err)
		}
	}

	t, err := newTicket(sess.ID)
	if err != nil {
		return err
	}
	c, err := s.ticketCookie(t, sess, now)
	if err != nil {
		return err
	}
	blob, err := sealBlob(t.key, t.id, plain)
	if err != nil {
		return err
	}
	if old != nil {
		if err := s.remove(ctx, old.id, cur); err != nil {
			return fmt.Errorf("session: save: ending the previous session: %w", err)
		}
	}
	// Index first, so that no stored session escapes revocation.
	if err := s.index(ctx, t.id, sess, now); err != nil {
		return fmt.Errorf("session: save: %w", err)
	}
	if err := s.writeInfo(ctx, t.id, sess, now); err != nil {
		return fmt.Errorf("session: save: %w", err)
	}
	if err := s.backend.Set(ctx, sessionKeyPrefix+t.id, blob, sess.end().Sub(now)); err != nil {
		return fmt.Errorf("session: save: %w", err)
	}
	http.SetCookie(w, c)
	s.cookies.expireCarried(w, r, func(name string) bool { return name == s.name })
	return nil
}

// update overwrites the session t names, cur, with sess (plain).
func (s *TicketStore) update(ctx context.Context, w http.ResponseWriter, t *ticket, cur, sess *Session, plain []byte, now time.Time) error {
	var c *http.Cookie
	if !sess.ExpiresAt.Equal(cur.ExpiresAt) {
		var err error
		if c, err = s.ticketCookie(t, sess, now); err != nil {
			return err
		}
	}
	blob, err := sealBlob(t.key, t.id, plain)
	if err != nil {
		return err
	}
	if sess.ScopedSID() != cur.ScopedSID() || sess.ScopedSubject() != cur.ScopedSubject() || NormalEmail(sess.Email) != NormalEmail(cur.Email) || sess.ExpiresAt.After(cur.ExpiresAt) {
		// Rare: keep the indexes naming it, and living long enough.
		if err := s.index(ctx, t.id, sess, now); err != nil {
			return fmt.Errorf("session: save: %w", err)
		}
	}
	ok, err := s.backend.Replace(ctx, sessionKeyPrefix+t.id, blob, sess.end().Sub(now))
	switch {
	case err != nil:
		return fmt.Errorf("session: save: %w", err)
	case !ok:
		return fmt.Errorf("session: save: %w", notFound(errEnded))
	}
	if infoOf(sess) != infoOf(cur) {
		// After the session, so that a revoked one gains no Info; one
		// revoked in between leaves Info that List ignores.
		if err := s.writeInfo(ctx, t.id, sess, now); err != nil {
			return fmt.Errorf("session: save: %w", err)
		}
	}
	if c != nil {
		http.SetCookie(w, c)
	}
	return nil
}

// ticketCookie returns the cookie carrying t for sess.
func (s *TicketStore) ticketCookie(t *ticket, sess *Session, now time.Time) (*http.Cookie, error) {
	sealed, err := s.codec.Seal(s.name, t.encode())
	if err != nil {
		return nil, fmt.Errorf("session: save: %w", err)
	}
	maxAge := max(int(sess.ExpiresAt.Sub(now)/time.Second), 1)
	c := s.cookies.cookie(s.name, sealed, maxAge, sess.ExpiresAt)
	if err := c.Valid(); err != nil {
		return nil, fmt.Errorf("session: save: invalid cookie options: %w", err)
	}
	return c, nil
}

// indexKeys returns the keys of the indexes that name sess.
func indexKeys(sess *Session) []string {
	var keys []string
	if sid := sess.ScopedSID(); sid != "" {
		keys = append(keys, sidKeyPrefix+hashName(sid))
	}
	if sub := sess.ScopedSubject(); sub != "" {
		keys = append(keys, subKeyPrefix+hashName(sub))
	}
	if e := NormalEmail(sess.Email); e != "" {
		keys = append(keys, emailKeyPrefix+hashName(e))
	}
	return keys
}

// index adds the ticket id to the sid, subject and email indexes of sess.
func (s *TicketStore) index(ctx context.Context, id string, sess *Session, now time.Time) error {
	ttl := sess.ExpiresAt.Sub(now) + indexSlack
	for _, key := range indexKeys(sess) {
		if err := s.backend.AddToSet(ctx, key, id, ttl); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes the session stored under id, its Info and, when its
// content sess is known, its index entries.
func (s *TicketStore) remove(ctx context.Context, id string, sess *Session) error {
	if err := s.backend.Delete(ctx, sessionKeyPrefix+id); err != nil {
		return err
	}
	if err := s.backend.Delete(ctx, infoKeyPrefix+id); err != nil {
		return err
	}
	if sess == nil {
		return nil // the indexes keep a stale id until they expire
	}
	for _, key := range indexKeys(sess) {
		if err := s.backend.RemoveFromSet(ctx, key, id); err != nil {
			return err
		}
	}
	return nil
}

// Clear expires the ticket cookie (and any cookie-store chunks the request
// carried), then deletes the session the ticket named, so that a copy of
// the cookie stops working too. The cookie is expired even when deleting
// fails; the error (a backend failure) then means the session may still be
// valid for anyone holding a copy of the ticket.
func (s *TicketStore) Clear(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, s.cookies.expired(s.name))
	s.cookies.expireCarried(w, r, func(name string) bool { return name == s.name })
	t, err := s.ticket(AppendCookies(nil, r.Header))
	if err != nil {
		return nil // nothing to delete
	}
	ctx := r.Context()
	cur, err := s.fetch(ctx, t)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("session: clear: %w", err)
	}
	if err := s.remove(ctx, t.id, cur); err != nil {
		return fmt.Errorf("session: clear: %w", err)
	}
	return nil
}

// RevokeSID deletes every session whose ScopedSID is sid (an OpenID
// Connect back-channel logout naming an IdP session; sid is Scope(idp, the
// IdP's sid), see Revoker) and reports how many there were. sid must not be
// empty, nor scope an empty sid. On a backend failure it returns how many
// it had deleted so far and the error; calling it again is safe.
func (s *TicketStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	if emptyScope(sid) {
		return 0, errors.New("session: revoke: empty sid")
	}
	return s.revoke(ctx, sidKeyPrefix+hashName(sid))
}

// RevokeSubject deletes every session whose ScopedSubject is sub (a
// back-channel logout naming a user; sub is Scope(idp, the IdP's sub), see
// Revoker) and reports how many there were. sub must not be empty, nor
// scope an empty subject. On a backend failure it returns how many it had
// deleted so far and the error; calling it again is safe.
func (s *TicketStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	if emptyScope(sub) {
		return 0, errors.New("session: revoke: empty subject")
	}
	return s.revoke(ctx, subKeyPrefix+hashName(sub))
}

// revoke deletes the sessions the index at key names, counting those that
// still existed, and drops them from the index one by one, so that a
// session indexed meanwhile stays indexed.
func (s *TicketStore) revoke(ctx context.Context, key string) (int, error) {
	ids, err := s.backend.SetMembers(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("session: revoke: %w", err)
	}
	n := 0
	for _, id := range ids {
		_, err := s.backend.Get(ctx, sessionKeyPrefix+id)
		switch {
		case err == nil:
			if err := s.backend.Delete(ctx, sessionKeyPrefix+id); err != nil {
				return n, fmt.Errorf("session: revoke: %w", err)
			}
			if err := s.backend.Delete(ctx, infoKeyPrefix+id); err != nil {
				return n, fmt.Errorf("session: revoke: %w", err)
			}
			n++
		case !errors.Is(err, ErrNotFound):
			return n, fmt.Errorf("session: revoke: %w", err)
		}
		if err := s.backend.RemoveFromSet(ctx, key, id); err != nil {
			return n, fmt.Errorf("session: revoke: %w", err)
		}
	}
	return n, nil
}
