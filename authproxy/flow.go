package authproxy

import (
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// start begins sign-in; ?rd= names the local path to return to, and ?idp=
// the IdP to sign in at. Without rd, a trusted proxy's X-Original-URI is
// used: nginx's "error_page 401 = /oauth2/start" keeps the original request
// URI there.
//
// The IdPs offered are those the policy rule for rd (matched as a GET of
// its path) accepts, as for an unauthenticated navigation to rd: without
// idp, one such IdP is started at straight away, several get the chooser
// listing only them, none the 403 page that says so. An idp that rd's rule
// does not accept is refused (403, linking to the start without idp) rather
// than signed in at: the session could not open rd, and a link must not
// sign a browser in where the page it names refuses it. An idp that is not
// a browser IdP is refused with 400.
func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	rd := q.Get("rd")
	if _, uri, known := s.originalRequest(r); rd == "" && known {
		rd = uri
	}
	rd = safeRedirect(rd)
	pol := s.current(r.Context()).policy
	ps := s.acceptedIdPs(pol, returnRule(pol, rd), s.idps.browsers)
	if !q.Has("idp") {
		return s.signIn(w, r, rd, ps)
	}
	p := s.idps.get(q.Get("idp"))
	if q.Get("idp") == "" || p == nil || p.cfg.BearerOnly {
		return pageAnswer(templates.Page{
			Status:   http.StatusBadRequest,
			Title:    "Unknown sign-in",
			Message:  "This sign-in link names an identity provider this site does not offer for signing in.",
			Link:     startURL(nil, rd),
			LinkText: "Choose how to sign in",
		})
	}
	if !slices.Contains(ps, p) {
		if len(ps) == 0 {
			return s.signIn(w, r, rd, ps)
		}
		return pageAnswer(templates.Page{
			Status:   http.StatusForbidden,
			Title:    "Sign-in not accepted here",
			Message:  "The page this sign-in returns to does not accept accounts from " + p.cfg.DisplayName + ".",
			Link:     startURL(nil, rd),
			LinkText: "Choose how to sign in",
		})
	}
	return s.beginSignIn(w, r, p, rd)
}

// returnRule is the rule of pol that a browser returning to rd (a safe
// local path) meets: the one matched for a GET of rd's cleaned path; nil
// when none matches, or when the path is one protect refuses (400).
func returnRule(pol *policy.Policy, rd string) *policy.Rule {
	u, err := url.Parse(rd)
	if err != nil {
		return nil
	}
	clean, err := policy.CleanPath(u.EscapedPath())
	if err != nil {
		return nil
	}
	return pol.Match(http.MethodGet, clean)
}

// signIn sends a browser that must sign in to return to rd: to the IdP
// when ps holds one, to the chooser listing ps when it holds several. With
// none (a rule that accepts no browser IdP), it says so (403).
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, rd string, ps []*idp) error {
	switch len(ps) {
	case 0:
		return pageAnswer(templates.Page{
			Status:  http.StatusForbidden,
			Title:   "Access denied",
			Message: "This page accepts no identity provider that a browser can sign in with.",
		})
	case 1:
		return s.beginSignIn(w, r, ps[0], rd)
	}
	s.chooser(w, r, rd, ps)
	return nil
}

// chooser renders the sign-in page listing ps, each a link to its sign-in
// start returning to rd; an IdP whose discovery is not loaded is shown as
// unavailable, without a link.
func (s *Server) chooser(w http.ResponseWriter, r *http.Request, rd string, ps []*idp) {
	choices := make([]templates.Choice, len(ps))
	for i, p := range ps {
		choices[i] = templates.Choice{Name: p.name(), DisplayName: p.cfg.DisplayName, Link: startURL(p, rd), Unavailable: p.available() != nil}
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
func (s *Server) beginSignIn(w http.ResponseWriter, r *http.Request, p *idp, rd string) error {
	st := signInState{
		State:    randomString(32),
		Nonce:    randomString(32),
		Verifier: randomString(32),
		Redirect: safeRedirect(rd),
		IdP:      s.idps.sessionName(p),
	}
	if err := p.available(); err != nil {
		return s.idpUnavailable(err) // never send a browser to an IdP known to be down
	}
	authURL, err := p.provider.AuthCodeURL(st.State, st.Nonce, st.Verifier)
	if err != nil {
		return s.idpUnavailable(err)
	}
	name := s.stateCookieName(st.State)
	sealed, err := s.current(r.Context()).state.Seal(name, st)
	if err != nil {
		return internalError("sealing sign-in state", err)
	}
	http.SetCookie(w, s.stateCookie(name, sealed, int(stateTTL.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// callback completes sign-in: it checks that the state belongs to a sign-in
// this browser started, exchanges the code with the PKCE verifier, verifies
// the ID token and its nonce, checks who may pass and sets the session.
func (s *Server) callback(w http.ResponseWriter, r *http.Request) error {
	// The session store must be usable before the state cookie is spent and
	// the code exchanged (a code works once): then this same callback,
	// loaded again once the store is back, completes the sign-in.
	if err := s.pingStore(r.Context()); err != nil {
		return s.storeUnavailable(r, err, templates.Page{
			Status:  http.StatusServiceUnavailable,
			Title:   "Sign-in is unavailable",
			Message: "authproxy cannot keep your session right now, so your sign-in is not complete yet.",
			Hint:    "Reload this page in a moment to finish signing in.",
		})
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
			return s.signInFailed(p, st, err)
		}
	}
	if idpErr := q.Get("error"); idpErr != "" {
		detail := idpErr
		if d := q.Get("error_description"); d != "" {
			detail += ": " + d
		}
		// Without a valid state, which IdP sent this is not known.
		label, retry := unknownIdP, startURL(nil, "/")
		if ok {
			label, retry = p.name(), s.retryURL(p, st.Redirect)
		}
		s.metrics.signIns.WithLabelValues("idp_error", label).Inc()
		return pageAnswer(templates.Page{
			Status:   http.StatusBadRequest,
			Title:    "Sign-in was not completed",
			Message:  "The identity provider did not complete the sign-in.",
			Detail:   truncate(detail, 300),
			Link:     retry,
			LinkText: "Try again",
		}).logged(slog.LevelInfo, "sign-in refused by identity provider", nil, "event", "sign_in", "result", "idp_error", "idp", label, "error", truncate(idpErr, 64))
	}
	if !ok {
		s.metrics.signIns.WithLabelValues("bad_state", unknownIdP).Inc()
		return pageAnswer(templates.Page{
			Status:   http.StatusBadRequest,
			Title:    "This sign-in link has expired",
			Message:  "This sign-in was already completed, took too long, or was started in another browser.",
			Link:     startPath + "?rd=%2F",
			LinkText: "Sign in again",
		}).logged(slog.LevelInfo, "sign-in callback without matching state", nil, "event", "sign_in", "result", "bad_state", "idp", unknownIdP)
	}
	code := q.Get("code")
	if code == "" {
		return pageAnswer(templates.Page{Status: http.StatusBadRequest, Title: "Sign-in was not completed",
			Message: "The identity provider sent no authorization code.", Link: s.retryURL(p, st.Redirect), LinkText: "Try again"})
	}

	id, err := p.provider.Exchange(r.Context(), code, st.Verifier, st.Nonce)
	if err != nil {
		return s.signInFailed(p, st, err)
	}

	d := s.current(r.Context()).policy.Admit(&policy.Identity{IdP: p.name(), Email: id.Email, Groups: id.Groups})
	reason, msg := d.Reason, forbiddenMessage(d.Cause)
	if d.Allow && !p.emailTrusted(id) {
		reason, msg = "email address not verified by the identity provider (email_verified is not true)", msgUnverified
	}
	if !d.Allow || msg == msgUnverified {
		s.metrics.signIns.WithLabelValues("denied", p.name()).Inc()
		s.clearSession(w, r)
		return forbidden(msg).logged(slog.LevelInfo, "sign-in denied", nil, "event", "sign_in", "result", "denied", "idp", p.name(), "user", id.User, "reason", reason)
	}
	sess := s.newSession(p, id, s.now())
	if err := s.store.Save(w, r, sess); err != nil {
		if errors.Is(err, session.ErrTooLarge) {
			s.metrics.signIns.WithLabelValues("too_large", p.name()).Inc()
			// 507: this deployment cannot store what the sign-in needs; no
			// retry by the browser helps, only the operator (RFC 4918 11.5).
			return pageAnswer(templates.Page{
				Status:  http.StatusInsufficientStorage,
				Title:   "Your session is too large",
				Message: "Your account's sign-in data (tokens and groups) is too large to keep in browser cookies.",
				Hint:    "The people who run this site can fix this by setting AUTHPROXY_SESSION_STORE=redis, or by requesting fewer scopes or groups.",
			}).logged(slog.LevelError, "session too large for cookies", nil, "event", "sign_in", "result", "too_large", "idp", p.name(), "user", id.User, "groups", len(id.Groups))
		}
		// The store failed after the check above: the code is spent, so
		// this sign-in must start again.
		return s.storeUnavailable(r, err, templates.Page{
			Status:   http.StatusServiceUnavailable,
			Title:    "Sign-in is unavailable",
			Message:  "authproxy could not keep your session, so your sign-in was not completed.",
			Hint:     "Try again in a moment.",
			Link:     s.retryURL(p, st.Redirect),
			LinkText: "Sign in again",
		})
	}
	s.metrics.signIns.WithLabelValues("ok", p.name()).Inc()
	s.log.Info("signed in", "event", "sign_in", "result", "ok", "idp", p.name(), "user", id.User)
	if s.cfg.CookieSameSite == http.SameSiteStrictMode {
		// The browser arrives from the IdP's site: a redirect would be part
		// of that cross-site navigation and drop a Strict cookie.
		_ = s.pages.Render(w, templates.ContinuePage, templates.Page{Status: http.StatusOK, Link: st.Redirect})
		return nil
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.Redirect, http.StatusFound)
	return nil
}

// retryURL is where a failed sign-in at IdP p, returning to rd, starts
// again: at p itself when there are several IdPs.
func (s *Server) retryURL(p *idp, rd string) string {
	if s.idps.several() {
		return startURL(p, rd)
	}
	return startURL(nil, rd)
}

// signInFailed is the answer to a callback whose authorization response or
// code exchange at IdP p failed: 403 for a user the provider's rules
// refuse, 400 for an answer that failed a check (providers.ErrRejected),
// and for the IdP's own failure the status idpUnavailable picks.
func (s *Server) signInFailed(p *idp, st signInState, err error) *answer {
	switch {
	case errors.Is(err, providers.ErrClientRefused):
		// The IdP works and the user did nothing wrong: it refused
		// authproxy's own credentials. Not an IdP failure (no 502/503, no
		// Retry-After: trying again cannot help) but a refusal, 403, until
		// the operator fixes what the log line names.
		s.metrics.signIns.WithLabelValues("client_refused", p.name()).Inc()
		return pageAnswer(templates.Page{Status: http.StatusForbidden, Title: "Sign-in is misconfigured",
			Message: "The identity provider did not accept this site's own credentials, so no one can sign in right now. This is not a problem with your account.",
			Hint:    "The people who run this site can fix it: authproxy's log says which setting to check."}).
			logged(slog.LevelError, "sign-in failed: the identity provider refused authproxy's client authentication", err, "event", "sign_in", "result", "client_refused", "idp", p.name())
	case errors.Is(err, providers.ErrDenied):
		s.metrics.signIns.WithLabelValues("denied", p.name()).Inc()
		return forbidden(msgNotAllowed).logged(slog.LevelInfo, "sign-in denied by the provider's rules", nil, "event", "sign_in", "result", "denied", "idp", p.name(), "reason", err.Error())
	case errors.Is(err, providers.ErrRejected):
		s.metrics.signIns.WithLabelValues("rejected", p.name()).Inc()
		return pageAnswer(templates.Page{Status: http.StatusBadRequest, Title: "Sign-in was not completed",
			Message: "The sign-in response could not be verified, or was already used.", Link: s.retryURL(p, st.Redirect), LinkText: "Sign in again"}).
			logged(slog.LevelWarn, "sign-in rejected", err, "event", "sign_in", "result", "rejected", "idp", p.name())
	}
	// providers.ErrUnavailable, and anything else the IdP's exchange gave.
	s.metrics.signIns.WithLabelValues("idp_unavailable", p.name()).Inc()
	return s.idpUnavailable(err)
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

// idpUnavailable is the page for an identity provider that failed: 504
// when it did not answer in time, 502 when its answer was unreadable or
// oversized, else 503 (not reached, a server error, or discovery not loaded
// yet); logged throttled, as it fails every sign-in meanwhile.
func (s *Server) idpUnavailable(err error) *answer {
	status := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, providers.ErrTimeout):
		status = http.StatusGatewayTimeout
	case errors.Is(err, providers.ErrBadResponse):
		status = http.StatusBadGateway
	}
	return &answer{
		page: templates.Page{
			Status:  status,
			Title:   "Identity provider unavailable",
			Message: "Sign-in is not possible right now because the identity provider cannot be reached.",
			Hint:    "Try again in a minute.",
		},
		throttle: s.idpFailures, attrs: []any{"status", status}, cause: err,
		header: map[string]string{"Retry-After": storeRetryAfter},
	}
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
