// Package session keeps a signed-in user's session between requests.
//
// A Session is a plain value. A Store loads it from, saves it to and clears it
// from an HTTP request and response. The cookie store (NewCookieStore) seals
// the whole session, compressed, into the browser's cookies; nothing is kept
// on a server, so it cannot end a session before it expires unless wrapped
// with a RevocationList (WithRevocation). The ticket store (NewTicketStore) keeps
// sessions, encrypted, in a Backend (NewRedisBackend, NewMemoryBackend) and
// gives the browser only a small ticket; it can end sessions for good.
//
// Stores that can do more say so by implementing Pinger (they depend on a
// server), Revoker (back-channel logout), AdminRevoker and Lister (an
// operator's revocations and listings, from outside the serving process)
// and CookieOwner (which cookie names are the session's: the proxy keeps
// them from the upstream).
//
// Cached puts a cache of opened sessions in front of any of them. Every
// change made through it (Save, Clear, RevokeSID, RevokeSubject) drops the
// sessions it affects, after the store has recorded it, and a load in flight
// meanwhile is not cached. Replicas sharing Redis tell each other what they
// changed over a Broadcaster (Redis pub/sub); a replica whose subscription is
// down uses no cache until it is back.
package session

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// ErrNotFound is returned by Store.Load when the request carries no valid
// session: no cookie, a cookie that does not open with any configured key,
// a truncated or tampered cookie, or an expired session. Callers treat it as
// "not signed in" and must not show its cause to the browser.
var ErrNotFound = errors.New("session: no valid session")

// ErrTooLarge is returned by Store.Save when the sealed session does not fit
// in the cookies the store may set, even compressed, or its JSON is longer
// than 64 KiB. Nothing is written in that case.
var ErrTooLarge = errors.New("session: sealed session too large for cookies")

// Session is what authproxy knows about a signed-in user. It is sealed as a
// whole; no field is ever sent to the browser in clear.
type Session struct {
	// ID is a random identifier given at sign-in; a new sign-in gets a new ID.
	ID string `json:"id"`
	// IdP is the name of the IdP the user signed in at; "" means the
	// default IdP, whatever its configured name, and is what every session
	// made before sessions knew their IdP holds. SID and Subject are the
	// IdP's and are indexed and revoked scoped by it (see Scope).
	IdP string `json:"idp,omitempty"`

	// User is the value of the configured user claim (sub by default).
	User string `json:"user"`
	// Subject is the ID token's sub claim.
	Subject           string   `json:"sub"`
	Email             string   `json:"email,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	// Extra holds the claims AUTHPROXY_CLAIM_HEADERS sends upstream.
	Extra map[string]string `json:"extra,omitempty"`
	// SID is the IdP's session id (the ID token's sid claim), if any.
	SID string `json:"sid,omitempty"`

	// IDToken is the raw ID token. Every byte of the session costs cookie
	// space, so callers keep it only when they send it back (as
	// id_token_hint); its claims belong in the fields above. A compact JWS
	// is stored with its payload decoded, so that compression finds the
	// claims it shares with those fields, and comes back byte for byte.
	IDToken string `json:"id_token,omitempty"`
	// AccessToken is kept only when something sends it on after sign-in.
	AccessToken string `json:"access_token,omitempty"`
	// RefreshToken, when not empty, renews the tokens before TokenExpiry.
	RefreshToken string `json:"refresh_token,omitempty"`
	// TokenExpiry is when the access token expires; zero when unknown.
	TokenExpiry time.Time `json:"token_expiry,omitzero"`

	// CreatedAt is when the user signed in.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the absolute end of the session; a store never returns a
	// session past it.
	ExpiresAt time.Time `json:"expires_at"`

	// LastSeen is when the session was last recorded as in use; zero means
	// not since sign-in, and CreatedAt stands in for it. Stores do not set
	// it: the caller sets it and saves the session again, at most every so
	// often (each save of a cookie session sends the browser new cookies).
	LastSeen time.Time `json:"last_seen,omitzero"`
	// IdleTimeout, when positive, ends the session once it has gone unused
	// this long after LastActive; zero (the default) means no idle limit.
	// It travels with the session, so a changed setting reaches a session
	// only when the caller saves it again.
	IdleTimeout time.Duration `json:"idle_timeout,omitzero"`
}

// Expired reports whether the session has ended at now: it has passed its
// absolute end (ExpiresAt) or has been idle too long (IdleExpired). Stores
// never return a session that has ended.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.ExpiresAt) || s.IdleExpired(now)
}

// IdleExpired reports whether the session has an IdleTimeout and has gone
// unused at least that long at now.
func (s *Session) IdleExpired(now time.Time) bool {
	return s.IdleTimeout > 0 && !now.Before(s.LastActive().Add(s.IdleTimeout))
}

// LastActive returns when the session was last known to be in use:
// LastSeen, or CreatedAt when LastSeen is zero.
func (s *Session) LastActive() time.Time {
	if s.LastSeen.IsZero() {
		return s.CreatedAt
	}
	return s.LastSeen
}

// end returns when the session ends: ExpiresAt, or earlier when its idle
// timeout runs out first.
func (s *Session) end() time.Time {
	if s.IdleTimeout > 0 {
		if idle := s.LastActive().Add(s.IdleTimeout); idle.Before(s.ExpiresAt) {
			return idle
		}
	}
	return s.ExpiresAt
}

// Store loads, saves and clears sessions. Implementations must be safe for
// concurrent use.
type Store interface {
	// Load returns the request's session, or ErrNotFound when it has none
	// that is valid. Other errors mean the store itself failed.
	Load(r *http.Request) (*Session, error)
	// Save writes s for the browser that sent r, replacing any session it had.
	Save(w http.ResponseWriter, r *http.Request, s *Session) error
	// Clear removes the request's session, if any.
	Clear(w http.ResponseWriter, r *http.Request) error
}

// Pinger is implemented by stores that depend on a server; Ping reports
// whether it answers. Stores without one (the cookie store) do not implement it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Revoker is implemented by stores that can end sessions other than the
// request's, as OpenID Connect back-channel logout asks: every session of
// one IdP session (sid) or of one user (sub). The ticket store does it
// itself; the cookie store needs a RevocationList (WithRevocation).
//
// Both methods take a scoped value, Scope(idp, sid) or Scope(idp, sub) for
// the IdP that issued it, and end only that IdP's sessions: a logout from
// one IdP never ends a session signed in at another that happens to carry
// the same sid or sub. A raw value is the default IdP's scoped value
// (Scope("", v) == v for any v not starting with NUL), so callers that know
// only the default IdP may pass raw values.
type Revoker interface {
	// RevokeSID ends every session whose ScopedSID is sid and reports how
	// many it ended, when the store can know (see each store).
	RevokeSID(ctx context.Context, sid string) (int, error)
	// RevokeSubject ends every session whose ScopedSubject is sub and
	// reports how many it ended, when the store can know (see each store).
	RevokeSubject(ctx context.Context, sub string) (int, error)
}

// CookieOwner is implemented by stores that set cookies of their own; Owns
// reports whether cookieName is one of them, so that the proxy can keep them
// from the upstream.
type CookieOwner interface {
	Owns(cookieName string) bool
}
