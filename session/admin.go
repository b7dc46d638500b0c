package session

import (
	"context"
	"strings"
	"time"
)

// AdminRevoker is implemented by stores that an operator can end sessions
// of from outside the serving process (authproxy sessions revoke): every
// session of one email address, at whichever IdP it was signed in, or
// every session; and, as a Revoker, those of one scoped subject. The
// ticket store deletes them and reports how many there were; a
// RevocableStore marks them revoked in its list and cannot count them (it
// reports 0).
type AdminRevoker interface {
	Revoker
	// RevokeEmail ends every session whose Email is email (compared
	// without regard to case), signed in at any IdP, and reports how many
	// it ended, when the store can know.
	RevokeEmail(ctx context.Context, email string) (int, error)
	// RevokeAll ends every session and reports how many it ended, when
	// the store can know.
	RevokeAll(ctx context.Context) (int, error)
}

// Lister is implemented by stores that keep sessions on a server and can
// show a user's (the ticket store). A Lister's Revoke methods report exact
// counts.
type Lister interface {
	// ListSubject returns the live sessions whose ScopedSubject is sub:
	// sub is Scope(idp, the IdP's sub), as for Revoker.RevokeSubject, so a
	// raw sub lists only the default IdP's sessions.
	ListSubject(ctx context.Context, sub string) ([]Info, error)
	// ListEmail returns the live sessions whose Email is email, compared
	// without regard to case, at any IdP.
	ListEmail(ctx context.Context, email string) ([]Info, error)
}

// Info is what a Lister shows of a session: at which IdP it was signed in,
// when it began, was last seen and ends. It holds no token and nothing that
// opens the session: Ref is a short digest of the session's backend key, to
// tell rows apart, not a ticket. Sessions stored before Info was recorded
// show only Ref.
type Info struct {
	Ref string `json:"ref"`
	// IdP is the session's Session.IdP: "" for the default IdP, and for
	// every session recorded before Info held it.
	IdP       string    `json:"idp,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// LastSeen is zero when the session's use has not been recorded (see
	// Session.LastSeen).
	LastSeen    time.Time     `json:"last_seen,omitzero"`
	ExpiresAt   time.Time     `json:"expires_at,omitzero"`
	IdleTimeout time.Duration `json:"idle_timeout,omitzero"`
}

// Ends returns when the session ends: ExpiresAt, or earlier when its idle
// timeout runs out first; zero when unknown.
func (i Info) Ends() time.Time {
	s := Session{CreatedAt: i.CreatedAt, LastSeen: i.LastSeen, ExpiresAt: i.ExpiresAt, IdleTimeout: i.IdleTimeout}
	return s.end()
}

// infoOf returns what a Lister shows of sess.
func infoOf(sess *Session) Info {
	return Info{IdP: sess.IdP, CreatedAt: sess.CreatedAt, LastSeen: sess.LastSeen, ExpiresAt: sess.ExpiresAt, IdleTimeout: sess.IdleTimeout}
}

// NormalEmail returns email as indexes and revocation marks key it:
// lower-cased, without surrounding space (IdPs and operators differ in
// case).
func NormalEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// prefixDeleter is implemented by backends that can delete every key under
// a prefix (RedisBackend, MemoryBackend); RevokeAll needs one.
type prefixDeleter interface {
	// DeletePrefix deletes every key that begins with prefix and reports
	// how many it deleted. Keys written while it runs may survive it.
	DeletePrefix(ctx context.Context, prefix string) (int, error)
}

// multiGetter is implemented by backends that can read several values in
// one round trip (RedisBackend, MemoryBackend).
type multiGetter interface {
	// GetEach returns the value at each key, nil where there is none.
	GetEach(ctx context.Context, keys []string) ([][]byte, error)
}
