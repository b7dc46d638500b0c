// Package session keeps a signed-in user's session between requests.
//
// A Session is a plain value. A Store loads it from, saves it to and clears it
// from an HTTP request and response. The cookie store (NewCookieStore) seals
// the whole session into the browser's cookies; nothing is kept on a server.
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
// in the cookies the store may set. Nothing is written in that case.
var ErrTooLarge = errors.New("session: sealed session too large for cookies")

// Session is what authproxy knows about a signed-in user. It is sealed as a
// whole; no field is ever sent to the browser in clear.
type Session struct {
	// ID is a random identifier given at sign-in; a new sign-in gets a new ID.
	ID string `json:"id"`

	// User is the value of the configured user claim (sub by default).
	User string `json:"user"`
	// Subject is the ID token's sub claim.
	Subject           string   `json:"sub"`
	Email             string   `json:"email,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	// SID is the IdP's session id (the ID token's sid claim), if any.
	SID string `json:"sid,omitempty"`

	IDToken      string `json:"id_token,omitempty"`
	AccessToken  string `json:"access_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// TokenExpiry is when the access token expires; zero when unknown.
	TokenExpiry time.Time `json:"token_expiry,omitzero"`

	// CreatedAt is when the user signed in.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the absolute end of the session; a store never returns a
	// session past it.
	ExpiresAt time.Time `json:"expires_at"`
}

// Expired reports whether the session has passed its absolute end at now.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.ExpiresAt)
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
