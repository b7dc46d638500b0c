package authproxy

import (
	"time"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
)

// newSession is the session a sign-in as id at IdP p starts at now. It
// holds each identity claim once, in its own field, and of the tokens only
// what a later request reads (see keepTokens), so that a session fits one
// cookie.
func (s *Server) newSession(p *idp, id *providers.Identity, now time.Time) *session.Session {
	sess := &session.Session{
		ID:                randomString(18),
		IdP:               s.idps.sessionName(p),
		User:              id.User,
		Subject:           id.Subject,
		Email:             id.Email,
		PreferredUsername: id.PreferredUsername,
		Groups:            id.Groups,
		SID:               id.SID,
		Extra:             id.Extra,
		CreatedAt:         now,
		ExpiresAt:         now.Add(s.cfg.SessionTTL),
		LastSeen:          now,
		IdleTimeout:       s.cfg.SessionIdleTimeout,
	}
	s.keepTokens(p, sess, id)
	return sess
}

// keepTokens puts into sess what it needs of the tokens of id, a sign-in's
// or a refresh's result:
//   - the access token's expiry, which says when to refresh;
//   - the refresh token, unless id has none (a refresh that does not rotate
//     it keeps the one sess had);
//   - the access token only when AUTHPROXY_PASS_ACCESS_TOKEN forwards it;
//     nothing else reads it after sign-in, and a session sealed before that
//     rule loses it at its next refresh;
//   - the raw ID token only when sign-out sends it to the IdP as
//     id_token_hint, which it does only when the IdP has an
//     end_session_endpoint; a refresh without a new one keeps the old.
//
// Claims inside the tokens are never read again: the session's own fields
// hold them. p is the session's IdP.
func (s *Server) keepTokens(p *idp, sess *session.Session, id *providers.Identity) {
	sess.TokenExpiry = id.Expiry
	if id.RefreshToken != "" {
		sess.RefreshToken = id.RefreshToken
	}
	sess.AccessToken = ""
	if s.cfg.PassAccessToken {
		sess.AccessToken = id.AccessToken
	}
	switch {
	case !p.sendsIDTokenHint():
		sess.IDToken = ""
	case id.IDToken != "":
		sess.IDToken = id.IDToken
	}
}

// sendsIDTokenHint reports whether sign-out sends the browser to the IdP's
// end_session_endpoint, with the session's ID token as id_token_hint.
func (p *idp) sendsIDTokenHint() bool {
	es, ok := p.provider.(providers.EndSessioner)
	return ok && es.EndSessionURL("", "") != ""
}
