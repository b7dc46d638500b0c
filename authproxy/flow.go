package authproxy

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// start begins sign-in; ?rd= names the local path to return to, and ?idp=
// the IdP to sign in at (without it, with several browser IdPs, the
// chooser). Without rd, a trusted proxy's X-Original-URI is used: nginx's
// "error_page 401 = /oauth2/start" keeps the original request URI there.
func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rd := q.Get("rd")
	if _, uri, known := s.originalRequest(r); rd == "" && known {
		rd = uri
	}
	rd = safeRedirect(rd)
	if !q.Has("idp") {
		s.signIn(w, r, rd, s.idps.browsers)
		return
	}
	p := s.idps.get(q.Get("idp"))
	if q.Get("idp") == "" || p == nil || p.cfg.BearerOnly {
		s.page(w, r, templates.Page{
			Status:   http.StatusBadRequest,
			Title:    "Unknown sign-in",
			Message:  "This sign-in link names an identity provider this site does not offer for signing in.",
			Link:     startURL(nil, rd),
			LinkText: "Choose how to sign in",
		})
		return
	}
	s.beginSignIn(w, r, p, rd)
}

// signIn sends a browser that must sign in to return to rd: to the IdP
// when ps holds one, to the chooser listing ps when it holds several. With
// none (a rule that accepts no browser IdP), it says so (403).
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, rd string, ps []*idp) {
	switch len(ps) {
	case 0:
		s.page(w, r, templates.Page{
			Status:  http.StatusForbidden,
			Title:   "Access denied",
			Message: "This page accepts no identity provider that a browser can sign in with.",
		})
	case 1:
		s.beginSignIn(w, r, ps[0], rd)
	default:
		s.chooser(w, r, rd, ps)
	}
}

// chooser renders the sign-in page listing ps, each a link to its sign-in
// start returning to rd; an IdP whose discovery is not loaded is shown as
// unavailable, without a link.
func (s *Server) chooser(w http.ResponseWriter, r *http.Request, rd string, ps []*idp) {
	choices := make([]templates.Choice, len(ps))
	for i, p := range ps {
		choices[i] = templates.Choice{Name: p.name(), DisplayName: p.cfg.DisplayName, Link: startURL(p, rd), Unavailable: p.provider.Ready() != nil}
	}
	w.Header().Set("Cache-Control", "no-store")
	err := s.pages.Render(w, templates.ChoosePage, templates.Page{
		Status:    http.StatusOK,
		Title:     "Sign in",
		Message:   "Choose how to sign in.",
		Choices:   choices,
		RequestID: infoFrom(r.Context()).id,
	})
	if err != nil {
		s.log.Error("rendering page failed", "err", err)
	}
}

// beginSignIn starts the authorization-code flow at IdP p: it keeps state,
// nonce, PKCE verifier and the IdP in a sealed cookie of this sign-in's
// own and sends the browser to the IdP. rd must already be a safe local
// path.
func (s *Server) beginSignIn(w http.ResponseWriter, r *http.Request, p *idp, rd string) {
	st := signInState{
		State:    randomString(32),
		Nonce:    randomString(32),
		Verifier: randomString(32),
		Redirect: safeRedirect(rd),
		IdP:      s.idps.sessionName(p),
	}
	authURL, err := p.provider.AuthCodeURL(st.State, st.Nonce, st.Verifier)
	if err != nil {
		s.idpUnavailable(w, r, err)
		return
	}
	name := s.stateCookieName(st.State)
	sealed, err := s.current(r.Context()).state.Seal(name, st)
	if err != nil {
		s.internalError(w, r, "sealing sign-in state", err)
		return
	}
	http.SetCookie(w, s.stateCookie(name, sealed, int(stateTTL.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
}

// callback completes sign-in: it checks that the state belongs to a sign-in
// this browser started, exchanges the code with the PKCE verifier, verifies
// the ID token and its nonce, checks who may pass and sets the session.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	// The session store must be usable before the state cookie is spent and
	// the code exchanged (a code works once): then this same callback,
	// loaded again once the store is back, completes the sign-in.
	if err := s.pingStore(r.Context()); err != nil {
		s.storeFailed(w, r, err)
		s.page(w, r, templates.Page{
			Status:  http.StatusServiceUnavailable,
			Title:   "Sign-in is unavailable",
			Message: "authproxy cannot keep your session right now, so your sign-in is not complete yet.",
			Hint:    "Reload this page in a moment to finish signing in.",
		})
		return
	}
	q := r.URL.Query()
	st, ok := s.takeState(w, r, q.Get("state"))
	// The IdP this sign-in started at, and no other, completes it: its
	// iss check, its token endpoint, its keys (RFC 9700 4.4).
	p := s.idps.get(st.IdP)
	if p == nil || p.cfg.BearerOnly {
		ok = false // started before a configuration change removed the IdP
		p = s.idps.def()
	}
	if ac, isChecker := p.provider.(providers.AuthResponseChecker); ok && isChecker {
		// Before anything of the response is used (RFC 9207: a mix-up
		// attacker's error page or code alike).
		if err := ac.CheckAuthResponse(q); err != nil {
			s.signInFailed(w, r, p, st, err)
			return
		}
	}
	if idpErr := q.Get("error"); idpErr != "" {
		detail := idpErr
		if d := q.Get("error_description"); d != "" {
			detail += ": " + d
		}
		rd := "/"
		if ok {
			rd = st.Redirect
		}
		s.metrics.signIns.WithLabelValues("idp_error", p.name()).Inc()
		s.log.Info("sign-in refused by identity provider", "event", "sign_in", "result", "idp_error", "error", truncate(idpErr, 64))
		s.page(w, r, templates.Page{
			Status:   http.StatusBadRequest,
			Title:    "Sign-in was not completed",
			Message:  "The identity provider did not complete the sign-in.",
			Detail:   truncate(detail, 300),
			Link:     startPath + "?rd=" + url.QueryEscape(rd),
			LinkText: "Try again",
		})
		return
	}
	if !ok {
		s.metrics.signIns.WithLabelValues("bad_state", p.name()).Inc()
		s.log.Info("sign-in callback without matching state", "event", "sign_in", "result", "bad_state")
		s.page(w, r, templates.Page{
			Status:   http.StatusBadRequest,
			Title:    "This sign-in link has expired",
			Message:  "This sign-in was already completed, took too long, or was started in another browser.",
			Link:     startPath + "?rd=%2F",
			LinkText: "Sign in again",
		})
		return
	}
	code := q.Get("code")
	if code == "" {
		s.page(w, r, templates.Page{Status: http.StatusBadRequest, Title: "Sign-in was not completed",
			Message: "The identity provider sent no authorization code.", Link: startPath + "?rd=" + url.QueryEscape(st.Redirect), LinkText: "Try again"})
		return
	}

	id, err := p.provider.Exchange(r.Context(), code, st.Verifier, st.Nonce)
	if err != nil {
		s.signInFailed(w, r, p, st, err)
		return
	}

	d := s.current(r.Context()).policy.Admit(&policy.Identity{IdP: p.name(), Email: id.Email, Groups: id.Groups})
	reason, msg := d.Reason, forbiddenMessage(d.Cause)
	if d.Allow && !p.emailTrusted(id) {
		reason, msg = "email address not verified by the identity provider (email_verified is not true)", msgUnverified
	}
	if !d.Allow || msg == msgUnverified {
		s.metrics.signIns.WithLabelValues("denied", p.name()).Inc()
		s.log.Info("sign-in denied", "event", "sign_in", "result", "denied", "idp", p.name(), "user", id.User, "reason", reason)
		s.clearSession(w, r)
		s.forbidden(w, r, msg)
		return
	}
	sess := s.newSession(p, id, s.now())
	if err := s.store.Save(w, r, sess); err != nil {
		if errors.Is(err, session.ErrTooLarge) {
			s.metrics.signIns.WithLabelValues("too_large", p.name()).Inc()
			s.log.Error("session too large for cookies", "event", "sign_in", "result", "too_large", "user", id.User, "groups", len(id.Groups))
			// 507: this deployment cannot store what the sign-in needs; no
			// retry by the browser helps, only the operator (RFC 4918 11.5).
			s.page(w, r, templates.Page{
				Status:  http.StatusInsufficientStorage,
				Title:   "Your session is too large",
				Message: "Your account's sign-in data (tokens and groups) is too large to keep in browser cookies.",
				Hint:    "The people who run this site can fix this by setting AUTHPROXY_SESSION_STORE=redis, or by requesting fewer scopes or groups.",
			})
			return
		}
		// The store failed after the check above: the code is spent, so
		// this sign-in must start again.
		s.storeFailed(w, r, err)
		s.page(w, r, templates.Page{
			Status:   http.StatusServiceUnavailable,
			Title:    "Sign-in is unavailable",
			Message:  "authproxy could not keep your session, so your sign-in was not completed.",
			Hint:     "Try again in a moment.",
			Link:     startPath + "?rd=" + url.QueryEscape(st.Redirect),
			LinkText: "Sign in again",
		})
		return
	}
	s.metrics.signIns.WithLabelValues("ok", p.name()).Inc()
	s.log.Info("signed in", "event", "sign_in", "result", "ok", "idp", p.name(), "user", id.User)
	if s.cfg.CookieSameSite == http.SameSiteStrictMode {
		// The browser arrives from the IdP's site: a redirect would be part
		// of that cross-site navigation and drop a Strict cookie.
		_ = s.pages.Render(w, templates.ContinuePage, templates.Page{Status: http.StatusOK, Link: st.Redirect})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.Redirect, http.StatusFound)
}

// signInFailed answers a callback whose authorization response or code
// exchange at IdP p failed: 403 for a user the provider's rules refuse, 400 for an
// answer that failed a check (providers.ErrRejected), and for the IdP's own
// failure the status idpUnavailable picks.
func (s *Server) signInFailed(w http.ResponseWriter, r *http.Request, p *idp, st signInState, err error) {
	switch {
	case errors.Is(err, providers.ErrUnavailable):
		s.metrics.signIns.WithLabelValues("idp_unavailable", p.name()).Inc()
		s.idpUnavailable(w, r, err)
	case errors.Is(err, providers.ErrClientRefused):
		// The IdP works and the user did nothing wrong: it refused
		// authproxy's own credentials. Not an IdP failure (no 502/503, no
		// Retry-After: trying again cannot help) but a refusal, 403, until
		// the operator fixes what the log line names.
		s.metrics.signIns.WithLabelValues("client_refused", p.name()).Inc()
		s.log.Error("sign-in failed: the identity provider refused authproxy's client authentication", "event", "sign_in", "result", "client_refused", "err", err)
		s.page(w, r, templates.Page{Status: http.StatusForbidden, Title: "Sign-in is misconfigured",
			Message: "The identity provider did not accept this site's own credentials, so no one can sign in right now. This is not a problem with your account.",
			Hint:    "The people who run this site can fix it: authproxy's log says which setting to check."})
	case errors.Is(err, providers.ErrDenied):
		s.metrics.signIns.WithLabelValues("denied", p.name()).Inc()
		s.log.Info("sign-in denied by the provider's rules", "event", "sign_in", "result", "denied", "reason", err.Error())
		s.forbidden(w, r, msgNotAllowed)
	case errors.Is(err, providers.ErrRejected):
		s.metrics.signIns.WithLabelValues("rejected", p.name()).Inc()
		s.log.Warn("sign-in rejected", "event", "sign_in", "result", "rejected", "err", err)
		s.page(w, r, templates.Page{Status: http.StatusBadRequest, Title: "Sign-in was not completed",
			Message: "The sign-in response could not be verified, or was already used.", Link: startPath + "?rd=" + url.QueryEscape(st.Redirect), LinkText: "Sign in again"})
	default:
		s.metrics.signIns.WithLabelValues("idp_unavailable", p.name()).Inc()
		s.idpUnavailable(w, r, err)
	}
}

// takeState finds and opens the state cookie named by the callback's state
// parameter, and expires it so the callback cannot be replayed. It reports
// false when there is no such sign-in in this browser.
func (s *Server) takeState(w http.ResponseWriter, r *http.Request, state string) (signInState, bool) {
	var st signInState
	if len(state) < 12 || len(state) > 128 {
		return st, false
	}
	name := s.stateCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return st, false
	}
	http.SetCookie(w, s.stateCookie(name, "", -1))
	if err := s.current(r.Context()).state.Open(name, c.Value, &st); err != nil {
		return st, false
	}
	if subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 {
		return st, false
	}
	st.Redirect = safeRedirect(st.Redirect)
	return st, true
}

// idpUnavailable renders the page for an identity provider that failed:
// 504 when it did not answer in time, 502 when its answer was unreadable or
// oversized, else 503 (not reached, a server error, or discovery not loaded
// yet).
func (s *Server) idpUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, providers.ErrTimeout):
		status = http.StatusGatewayTimeout
	case errors.Is(err, providers.ErrBadResponse):
		status = http.StatusBadGateway
	}
	s.idpFailures.failed(err, "status", status)
	w.Header().Set("Retry-After", storeRetryAfter)
	s.page(w, r, templates.Page{
		Status:  status,
		Title:   "Identity provider unavailable",
		Message: "Sign-in is not possible right now because the identity provider cannot be reached.",
		Hint:    "Try again in a minute.",
	})
}

// internalError logs err and renders a generic 500 page that reveals nothing.
func (s *Server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Error(what+" failed", "err", err)
	s.page(w, r, templates.Page{
		Status:  http.StatusInternalServerError,
		Title:   "Something went wrong",
		Message: "authproxy could not complete this request.",
	})
}

// truncate shortens s to at most n bytes for logs and pages, never splitting
// a character, and replaces invalid UTF-8.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
