package authproxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// protect handles every request that is not one of authproxy's endpoints.
// The policy's rule is matched once: a public route goes straight to the
// upstream; anything else needs a session (or an API client's bearer
// token), whose user the matched rule (with the allow-lists, which are part
// of the policy) then judges. Without one, a browser navigation is sent to
// sign in and any other request gets 401.
func (s *Server) protect(w http.ResponseWriter, r *http.Request) error {
	clean, err := s.cleanRequest(r)
	if err != nil {
		return err
	}
	pol := s.current(r.Context()).policy
	rule := pol.Match(r.Method, clean)
	if s.tracer != nil {
		spanRule(r, rule)
	}
	if rule.Public() {
		setOutcome(r, outcomePublic, "")
		s.serveUpstream(w, r)
		return nil
	}

	sess, bearer, err := s.identify(w, r)
	if bad := (*answer)(nil); errors.As(err, &bad) {
		return err // a refused bearer token
	}
	if sess != nil && s.idps.several() {
		infoFrom(r.Context()).idp = s.idps.nameOf(sess)
	}
	// Only a verified bearer token reaches the upstream in Authorization
	// on a route that needs a session.
	if !bearer {
		r.Header.Del("Authorization")
	}
	switch {
	case errors.Is(err, session.ErrNotFound):
		return s.unauthenticated(w, r, pol, rule)
	case err != nil:
		return s.storeUnavailable(r, err, templates.Page{
			Status:  http.StatusServiceUnavailable,
			Title:   "Sign-in is unavailable",
			Message: "authproxy could not read your session right now.",
			Hint:    "Try again in a moment.",
		})
	}
	if d := s.judge(pol, rule, r.Method, clean, sess); !d.Allow {
		setOutcome(r, outcomeForbidden, sess.User)
		return forbidden(forbiddenMessage(d.Cause))
	}
	setOutcome(r, outcomeProxied, sess.User)
	ctx := withSession(r.Context(), sess)
	if isStream(r) {
		var done func()
		ctx, done = s.streams.track(ctx, sess)
		defer done()
		if sess.ID != "bearer" {
			go s.recheckStream(ctx, r, sess, done)
		}
	}
	s.serveUpstream(w, r.WithContext(ctx))
	return nil
}

// serveUpstream proxies r, lifting the read deadline set for authproxy's own
// answers: uploads and WebSockets take as long as they take.
func (s *Server) serveUpstream(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	s.proxy.ServeHTTP(w, r)
}

// identify returns who makes the request: an API client's verified bearer
// token (bearer is then true), or the browser's session. A refused bearer
// token's error is its 401 answer (badBearer).
func (s *Server) identify(w http.ResponseWriter, r *http.Request) (sess *session.Session, bearer bool, err error) {
	tok, bearer := bearerToken(r)
	if !bearer {
		sess, err = s.session(w, r)
		return sess, false, err
	}
	sess, err = s.bearerSession(r, tok)
	if refused := (*bearerRefusal)(nil); errors.As(err, &refused) {
		return nil, true, badBearer(r, refused)
	}
	return sess, true, err
}

// cleanRequest refuses (400) a request whose method or path an upstream
// could read differently than the policy does, and returns the cleaned path
// the policy matches. When only repeated slashes differ, the request is
// forwarded with the cleaned path.
func (s *Server) cleanRequest(r *http.Request) (string, error) {
	clean, err := policy.CleanPath(r.URL.EscapedPath())
	if err != nil || !policy.ValidMethod(r.Method) || r.URL.Opaque != "" {
		setOutcome(r, outcomeBadRequest, "")
		return "", pageAnswer(templates.Page{
			Status:  http.StatusBadRequest,
			Title:   "This address is not valid",
			Message: "The request's method or path contains encoded slashes or dots, backslashes, dot segments or control characters, which authproxy does not pass on.",
		})
	}
	if esc := r.URL.EscapedPath(); strings.Contains(esc, "//") {
		// Forward the path the policy matched: an upstream might read
		// "//public/admin" as host "public". Encoded slashes were refused
		// above, so collapsing the escaped form matches clean exactly.
		for strings.Contains(esc, "//") {
			esc = strings.ReplaceAll(esc, "//", "/")
		}
		r.URL.Path, r.URL.RawPath = clean, esc
	}
	return clean, nil
}

// judge returns what rule of pol, matched for this method and cleaned path
// (nil when none matched), does with the signed-in user of sess, and writes
// the audit line when it denies them.
func (s *Server) judge(pol *policy.Policy, rule *policy.Rule, method, clean string, sess *session.Session) policy.Decision {
	idp := s.idps.nameOf(sess)
	d := pol.Judge(rule, &policy.Identity{IdP: idp, Email: sess.Email, Groups: sess.Groups})
	if !d.Allow {
		var src string
		if d.Rule != nil {
			src = d.Rule.Source + ": " + d.Rule.String()
		}
		s.log.Info("access denied", "event", "denied", "user", sess.User, "idp", idp, "method", method, "path", truncate(clean, 256), "rule", src, "reason", s.reason(d, sess))
	}
	return d
}

// reason is d's reason for an audit line about sess: the allow-list's
// refusals name the variables of the user's IdP.
func (s *Server) reason(d policy.Decision, sess *session.Session) string {
	p := s.idps.get(sess.IdP)
	if !d.Cause.ByAllowList() || p == nil || p == s.idps.def() {
		return d.Reason
	}
	return fmt.Sprintf("%s (for IdP %q: its %s, %s, %s)", d.Reason, p.name(),
		p.cfg.vars.of("ALLOWED_EMAIL_DOMAINS"), p.cfg.vars.of("ALLOWED_EMAILS"), p.cfg.vars.of("ALLOWED_GROUPS"))
}

// session loads the request's session and refreshes its tokens when they
// are about to expire. It returns an error wrapping session.ErrNotFound when
// there is no usable session (none, invalid, or ended by the IdP at
// refresh), and other errors when the store failed.
func (s *Server) session(w http.ResponseWriter, r *http.Request) (*session.Session, error) {
	now := s.now()
	sess, err := s.loadSession(r)
	if err != nil {
		return nil, err
	}
	if s.idps.get(sess.IdP) == nil {
		// Signed in at an IdP since removed from the configuration.
		s.clearSession(w, r)
		return nil, fmt.Errorf("%w: identity provider %q is not configured", session.ErrNotFound, sess.IdP)
	}
	if idle := s.cfg.SessionIdleTimeout; idle > 0 && !now.Before(sess.LastActive().Add(idle)) {
		s.clearSession(w, r)
		return nil, fmt.Errorf("%w: idle for %s", session.ErrNotFound, idle)
	}
	sess, err = s.refreshIfDue(w, r, sess)
	if errors.Is(err, errSessionEnded) {
		s.clearSession(w, r)
		return nil, fmt.Errorf("%w: %w", session.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	if s.cfg.SessionIdleTimeout > 0 && now.Sub(sess.LastActive()) >= idleTouchEvery {
		// Slide the idle timeout; at most once a minute, so a busy user
		// costs one store write a minute, not one per request.
		touched := *sess
		touched.LastSeen, touched.IdleTimeout = now, s.cfg.SessionIdleTimeout
		if err := s.store.Save(w, r, &touched); err != nil {
			if errors.Is(err, session.ErrNotFound) {
				return nil, err
			}
			s.log.Warn("recording session activity failed", "err", err)
		} else {
			sess = &touched
		}
	}
	return sess, nil
}

// loadSession loads the request's session, from the opened-session cache
// when it holds it, and times the store's work when there was some.
func (s *Server) loadSession(r *http.Request) (*session.Session, error) {
	start := time.Now()
	var sess *session.Session
	var cached bool
	var err error
	if s.cache != nil {
		sess, cached, err = s.cache.LookupCookies(r, requestCookies(r))
	} else {
		sess, err = session.LoadWith(s.store, r, requestCookies(r))
	}
	if !cached {
		s.metrics.observeStore("load", start, err != nil && !errors.Is(err, session.ErrNotFound))
	}
	return sess, err
}

// loadFresh loads the request's session from the store, past the cache:
// for a look at what another replica may have saved a moment ago.
func (s *Server) loadFresh(r *http.Request) (*session.Session, error) {
	if s.cache != nil {
		return s.cache.LoadFresh(r)
	}
	return s.store.Load(r)
}

// clearSession ends the request's session in the store (and so in every
// replica's cache).
func (s *Server) clearSession(w http.ResponseWriter, r *http.Request) {
	_ = s.store.Clear(w, r)
}

// idleTouchEvery is how often a session's activity is recorded.
const idleTouchEvery = time.Minute

// storeRetryAfter is the Retry-After, in seconds, of every answer given
// because the session store failed: a Redis restart or a Sentinel failover
// takes seconds, so clients should try again soon.
const storeRetryAfter = "5"

// storeUnavailable is the answer p (a 503 page) to r when the session
// store failed with err: with Retry-After, never a redirect to sign in
// (which would loop while the store is down), and logged throttled (the
// first at once, then a line every few seconds with the count: while the
// store is down every request fails).
func (s *Server) storeUnavailable(r *http.Request, err error, p templates.Page) *answer {
	return &answer{page: p, throttle: s.storeFailures, attrs: []any{"path", r.URL.Path}, cause: err,
		header: map[string]string{"Retry-After": storeRetryAfter}}
}

// unauthenticated answers a request without a session, to which rule of
// pol applies: a browser navigation is sent to sign in at an IdP the rule
// accepts, or to the chooser when it accepts several, and returns here
// after sign-in (a sign-in start, so within AUTHPROXY_SIGNIN_RATE_LIMIT);
// anything else (fetch, XHR, API clients, non-GET) gets a 401 JSON body,
// never a redirect; with several IdPs it names those the rule accepts.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, pol *policy.Policy, rule *policy.Rule) error {
	if !isNavigation(r) {
		setOutcome(r, outcomeUnauth, "")
		if !s.idps.several() {
			return jsonAnswer(http.StatusUnauthorized, unauthorizedBody)
		}
		return jsonAnswer(http.StatusUnauthorized, unauthorizedIdPs{Error: "unauthorized", Message: "sign-in required", IdPs: s.accepted(pol, rule, s.idps.list)})
	}
	if err := s.allow(r, s.limits.start); err != nil {
		return err
	}
	setOutcome(r, outcomeSignIn, "")
	return s.signIn(w, r, r.URL.RequestURI(), s.acceptedIdPs(pol, rule, s.idps.browsers))
}

// unauthorizedIdPs is the 401 body with several IdPs: the names of those
// whose users (or bearer tokens) the route accepts.
type unauthorizedIdPs struct {
	Error   string   `json:"error"`
	Message string   `json:"message"`
	IdPs    []string `json:"idps"`
}

// acceptedIdPs returns those of ps whose users rule (of pol) could let
// through, in their order.
func (s *Server) acceptedIdPs(pol *policy.Policy, rule *policy.Rule, ps []*idp) []*idp {
	if !s.idps.several() {
		return ps
	}
	var out []*idp
	for _, p := range ps {
		if pol.Accepts(rule, p.name()) {
			out = append(out, p)
		}
	}
	return out
}

// accepted is acceptedIdPs by name.
func (s *Server) accepted(pol *policy.Policy, rule *policy.Rule, ps []*idp) []string {
	names := []string{}
	for _, p := range s.acceptedIdPs(pol, rule, ps) {
		names = append(names, p.name())
	}
	return names
}

// isNavigation reports whether r is a browser loading a page: GET or HEAD,
// accepting text/html, and not marked as a script's request by
// Sec-Fetch-Mode or X-Requested-With.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" && mode != "navigate" {
		return false
	}
	return acceptsHTML(r)
}

// acceptsHTML reports whether the request's Accept header lists text/html.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}

// emailTrusted reports whether an identity's email, from IdP p, may be
// relied on: verified by the IdP, absent, or the IdP's
// AUTHPROXY_INSECURE_ALLOW_UNVERIFIED_EMAIL.
func (p *idp) emailTrusted(id *providers.Identity) bool {
	return id.Email == "" || id.EmailVerified || p.cfg.InsecureAllowUnverifiedEmail
}

// The 403 page's message, by why the user was refused.
const (
	msgNotAllowed = "You are signed in, but your account is not allowed to use this application."
	msgNotInGroup = "You are signed in, but your account is not in a group that may use this application."
	msgUnverified = "Your identity provider has not verified your email address, so it cannot be used to sign in here."
	msgWrongIdP   = "You are signed in, but with an account of a kind this page does not accept. Sign out, then sign in with another account."
)

// forbiddenMessage is the 403 page's message for a policy's cause.
func forbiddenMessage(c policy.Cause) string {
	switch c {
	case policy.CauseGroupNotAllowed:
		return msgNotInGroup
	case policy.CauseWrongIdP:
		return msgWrongIdP
	}
	return msgNotAllowed
}

// forbidden is the 403 page for a signed-in user who may not pass, with
// one of the msg* messages.
func forbidden(msg string) *answer {
	return pageAnswer(templates.Page{
		Status:   http.StatusForbidden,
		Title:    "Access denied",
		Message:  msg,
		Hint:     "If you think you should have access, ask the people who run this site. You can also sign in with another account.",
		Link:     signOutPath,
		LinkText: "Sign out",
	})
}
