package authproxy

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// maxLogoutBody bounds the back-channel logout request body.
const maxLogoutBody = 64 << 10

// signOut ends the session, closes its open streams and, when the IdP has
// an end_session_endpoint, sends the browser there to end the IdP's session
// too; otherwise it returns to ?rd= (a local path, else "/"), or without rd
// to the signed-out page.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.store.Load(r)
	if err != nil && !errors.Is(err, session.ErrNotFound) {
		s.log.Warn("session store failed at sign-out; clearing the cookie anyway", "err", err)
	}
	if err := s.store.Clear(w, r); err != nil {
		// The browser's cookie is gone, but the store may still hold the
		// session: say so, and let the user try again, never a 500.
		w.Header().Set("Cache-Control", "no-store")
		return s.storeUnavailable(r, err, templates.Page{
			Status:   http.StatusServiceUnavailable,
			Title:    "Sign-out is not complete",
			Message:  "authproxy removed your session from this browser but could not end it on the server right now.",
			Hint:     "Try signing out again in a moment.",
			Link:     signOutPath,
			LinkText: "Sign out again",
		})
	}
	target := signedOutPath
	if rd := r.URL.Query().Get("rd"); rd != "" {
		target = safeRedirect(rd)
	}
	if sess != nil {
		s.refresher.forget(sess.ID)
		n := s.streams.closeWhere(func(o *session.Session) bool { return o.ID == sess.ID })
		// A session of an IdP since removed is named by what it recorded.
		s.log.Info("signed out", "event", "sign_out", "user", sess.User, "idp", cmp.Or(s.idps.nameOf(sess), sess.IdP), "streams_closed", n)
		// The session's IdP ends its own session too, when it can; one
		// since removed from the configuration (nil) cannot.
		if p := s.idps.get(sess.IdP); p != nil {
			if es, ok := p.provider.(providers.EndSessioner); ok {
				if u := es.EndSessionURL(sess.IDToken, s.cfg.PostLogoutRedirectURL.String()); u != "" {
					target = u
				}
			}
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusFound)
	return nil
}

// signedOut is the page a sign-out without rd ends on: it says the session
// has ended and offers to sign in again.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request) {
	err := s.pages.Render(w, templates.SignedOutPage, templates.Page{
		Status:    http.StatusOK,
		Title:     "Signed out",
		Message:   "You are signed out.",
		Link:      startPath + "?rd=%2F",
		LinkText:  "Sign in again",
		RequestID: infoFrom(r.Context()).id,
	})
	if err != nil {
		s.log.Error("rendering page failed", "err", err)
	}
}

// backchannelLogout implements OpenID Connect Back-Channel Logout 1.0: a
// valid logout token ends every session it names (by sid, else by sub) and
// closes their streams, answering 200; anything else is 400 and ends nothing.
func (s *Server) backchannelLogout(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	idpLabel := unknownIdP // until the token names one
	bad := func(reason string, err error) error {
		s.metrics.logouts.WithLabelValues("refused", idpLabel).Inc()
		return jsonAnswer(http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": reason}).
			logged(slog.LevelWarn, "back-channel logout refused", err, "event", "backchannel_logout", "result", "refused", "idp", idpLabel, "reason", reason)
	}
	unavailable := func(what string, err error) error {
		return jsonAnswer(http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable"}).
			logged(slog.LevelError, "back-channel logout: "+what+" failed", err, "idp", idpLabel)
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
	if err := r.ParseForm(); err != nil {
		return bad("malformed request body", err)
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		return bad("missing logout_token", nil)
	}
	// With several IdPs the token's iss picks whose keys verify it; that
	// IdP's verifier checks iss itself, and the sessions it may end are
	// only that IdP's (session.Scope).
	p, err := s.idps.forToken(raw)
	if err != nil {
		return bad("invalid logout token", err)
	}
	idpLabel = p.name()
	lv, ok := p.provider.(providers.LogoutVerifier)
	if !ok {
		return bad("back-channel logout is not supported with this provider", nil)
	}
	tok, err := lv.VerifyLogoutToken(r.Context(), raw)
	if err != nil {
		return bad("invalid logout token", err)
	}
	// A logout token is used once: remember its jti until it expires.
	ttl := time.Until(tok.Expiry)
	if ttl < time.Minute {
		ttl = time.Minute
	}
	fresh, err := s.locker.SetNX(r.Context(), "logout-jti:"+session.Scope(s.idps.sessionName(p), tok.JTI), []byte("1"), ttl+2*time.Minute)
	if err != nil {
		return unavailable("replay check", err)
	}
	if !fresh {
		return bad("logout token replayed", nil)
	}
	n, err := s.revoke(r.Context(), s.idps.sessionName(p), tok)
	if err != nil {
		return unavailable("revoking sessions", err)
	}
	s.metrics.logouts.WithLabelValues("ok", p.name()).Inc()
	s.log.Info("back-channel logout", "event", "backchannel_logout", "result", "ok", "idp", p.name(), "sessions_ended", n)
	w.WriteHeader(http.StatusOK)
	return nil
}

// revoke ends the sessions a logout token from IdP idp (its session name)
// names, in the store (and so in every replica's cache) and in this
// process's open streams: only that IdP's sessions.
func (s *Server) revoke(ctx context.Context, idp string, tok *providers.LogoutToken) (int, error) {
	rv, ok := s.store.(session.Revoker)
	if !ok {
		return 0, errors.New("authproxy: session store cannot revoke sessions")
	}
	var n int
	var err error
	if tok.SID != "" {
		n, err = rv.RevokeSID(ctx, session.Scope(idp, tok.SID))
	} else {
		n, err = rv.RevokeSubject(ctx, session.Scope(idp, tok.Subject))
	}
	if err != nil {
		return 0, err
	}
	s.streams.closeWhere(func(o *session.Session) bool {
		if o.IdP != idp {
			return false
		}
		if tok.SID != "" {
			return o.SID == tok.SID
		}
		return o.Subject == tok.Subject
	})
	return n, nil
}
