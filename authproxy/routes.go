package authproxy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// routes is the whole route table. A header block over the limit is refused
// first (431), then identity headers are stripped from every
// request before anything else sees it, skip-auth routes and authproxy's own
// endpoints included. authproxy's own paths are routed by chi; every other
// request, whatever its method (WebDAV's PROPFIND too), goes to protect.
func (s *Server) routes() http.Handler {
	own := s.ownRoutes()
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A request body must arrive promptly unless the request is proxied
		// (protect lifts the deadline then): a slow body cannot hold a
		// connection before authentication, nor while Go's server drains
		// the unread body of a refused request.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(readHeaderTimeout))
		if isOwnPath(r.URL.Path) {
			own.ServeHTTP(w, r)
			return
		}
		if err := s.protect(w, r); err != nil {
			s.answer(w, r, err)
		}
	})
	return s.accessLog(s.limitHeaderBlock(s.stripIdentityHeaders(h)))
}

// isOwnPath reports whether a request path is one of authproxy's endpoints
// rather than the app's.
func isOwnPath(p string) bool {
	switch p {
	case healthPath, readyPath, metricsPath, jwksPath:
		return true
	}
	return strings.HasPrefix(p, "/oauth2/")
}

func (s *Server) ownRoutes() http.Handler {
	r := chi.NewRouter()

	r.Get(healthPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get(readyPath, s.ready)
	if s.cfg.MetricsListen == "" {
		r.Method(http.MethodGet, metricsPath, s.metrics.handler())
	}
	if s.identity != nil {
		r.Get(jwksPath, s.identity.serveJWKS)
	}
	r.Get(startPath, s.handle(s.limited(s.limits.start, s.start)))
	r.Get(callbackPath, s.handle(s.limited(s.limits.callback, s.callback)))
	r.Get(signOutPath, s.handle(s.signOut))
	r.Post(signOutPath, s.handle(s.signOut))
	r.Get(signedOutPath, s.signedOut)
	r.Get(userinfoPath, s.handle(s.userinfo))
	r.HandleFunc(authPath, s.handle(s.forwardAuth))
	r.Post(backchannelLogoutPath, s.handle(s.limited(s.limits.backchannel, s.backchannelLogout)))
	r.NotFound(s.handle(s.protect))
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.answer(w, r, jsonAnswer(http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"}))
	})
	return r
}

// readyTimeout bounds /readyz's ping of the session store, so that it
// answers within a probe's timeout even when Redis hangs.
const readyTimeout = time.Second

// readyAnswer is /readyz's body: which dependencies are not ready, by name
// ("identity_provider", "session_store"), never why: /readyz is on the
// public listener, and the causes (issuer URLs, Redis addresses and errors)
// go to the log.
type readyAnswer struct {
	Status   string   `json:"status"`
	NotReady []string `json:"not_ready,omitempty"`
	// IdPs says, with several IdPs, whether each is "ok" or "unavailable".
	IdPs map[string]string `json:"idps,omitempty"`
}

// ready answers 200 once the IdP's discovery is loaded and the session store
// answers within readyTimeout, else 503 naming what is not ready. With
// several IdPs it reports each ("unavailable" while one is not discovered
// or missed its last probe), and is ready once a browser IdP's discovery is
// loaded: bearer-only IdPs alone cannot sign anyone in.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	var notReady []string
	var each map[string]string
	if s.idps.several() {
		each = map[string]string{}
	}
	// Ready once a browser IdP's discovery is loaded, as with one IdP: an
	// IdP that stops answering its probes later is shown unavailable (and
	// on the chooser) but does not make the replica unready, since every
	// replica would be taken out at once with it, and with them the
	// signed-in users and API clients they still serve.
	browsersDiscovered := 0
	for _, p := range s.idps.list {
		err := p.available()
		if err != nil {
			s.idpNotReady.failed(err, "idp", p.name())
		}
		if !p.cfg.BearerOnly && p.provider.Ready() == nil {
			browsersDiscovered++
		}
		switch {
		case each == nil:
		case err != nil:
			each[p.name()] = "unavailable"
		default:
			each[p.name()] = "ok"
		}
	}
	if browsersDiscovered == 0 {
		notReady = append(notReady, "identity_provider")
	}
	if err := s.pingStore(r.Context()); err != nil {
		notReady = append(notReady, "session_store")
		s.storeFailures.failed(err, "path", r.URL.Path)
	}
	if len(notReady) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readyAnswer{Status: "unavailable", NotReady: notReady, IdPs: each})
		return
	}
	writeJSON(w, http.StatusOK, readyAnswer{Status: "ok", IdPs: each})
}

// pingStore reports whether the session store, if it depends on a server,
// answers within readyTimeout.
func (s *Server) pingStore(ctx context.Context) error {
	p, ok := s.current(ctx).store.(session.Pinger)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	return p.Ping(ctx)
}

// userinfo answers the signed-in user's identity as JSON, 401 without a session.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.session(w, r)
	if err != nil {
		return s.storeError(r, err)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":               sess.User,
		"email":              sess.Email,
		"preferred_username": sess.PreferredUsername,
		"groups":             nonNil(sess.Groups),
		"idp":                s.idps.nameOf(sess),
	})
	return nil
}

// forwardAuth serves nginx auth_request and Traefik ForwardAuth: 202 (with
// X-Auth-Request-* identity headers when signed in), 401 without a session,
// 403 when signed in but not allowed. The original request's method and URI
// are read from X-Forwarded-Method/-Uri (Traefik) or X-Original-Method/-URI
// (nginx) only when the request comes from AUTHPROXY_TRUSTED_PROXIES; then
// the policy is applied to them. Without them only the session and the
// global allow-lists are checked.
func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) error {
	method, uri, known := s.originalRequest(r)
	pol := s.current(r.Context()).policy
	clean := ""
	var rule *policy.Rule
	if known {
		u, err := url.ParseRequestURI(uri)
		if err == nil && u.Opaque != "" {
			err = errors.New("opaque request URI")
		}
		if err == nil {
			clean, err = policy.CleanPath(u.EscapedPath())
		}
		if err != nil || !policy.ValidMethod(method) {
			setOutcome(r, outcomeBadRequest, "")
			return jsonAnswer(http.StatusForbidden, map[string]string{"error": "forbidden", "message": "ambiguous method or path"})
		}
		rule = pol.Match(method, clean)
		if s.tracer != nil {
			spanRule(r, rule)
		}
		if rule.Public() {
			setOutcome(r, outcomePublic, "")
			w.WriteHeader(http.StatusAccepted)
			return nil
		}
	}
	sess, _, err := s.identify(w, r)
	if bad := (*answer)(nil); errors.As(err, &bad) {
		return err // a refused bearer token
	}
	if err != nil {
		return s.storeError(r, err)
	}
	var d policy.Decision
	if known {
		d = s.judge(pol, rule, method, clean, sess)
	} else if d = pol.Admit(&policy.Identity{IdP: s.idps.nameOf(sess), Email: sess.Email, Groups: sess.Groups}); !d.Allow {
		s.log.Info("access denied", "event", "denied", "user", sess.User, "idp", s.idps.nameOf(sess), "path", authPath, "reason", s.reason(d, sess))
	}
	if !d.Allow {
		setOutcome(r, outcomeForbidden, sess.User)
		return jsonAnswer(http.StatusForbidden, map[string]string{"error": "forbidden"})
	}
	setOutcome(r, outcomeProxied, sess.User)
	h := w.Header()
	setHeader(h, "X-Auth-Request-User", sess.User)
	setHeader(h, "X-Auth-Request-Email", sess.Email)
	setHeader(h, "X-Auth-Request-Preferred-Username", sess.PreferredUsername)
	setHeader(h, "X-Auth-Request-Groups", joinGroups(sess.Groups))
	setHeader(h, "X-Auth-Request-Idp", s.idps.nameOf(sess))
	if s.cfg.PassAccessToken {
		setHeader(h, "X-Auth-Request-Access-Token", sess.AccessToken)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// originalRequest returns the method and request URI a forward-auth
// request asks about, and whether they are known: only a trusted proxy may
// say.
func (s *Server) originalRequest(r *http.Request) (method, uri string, known bool) {
	if !s.trusted.contains(r.RemoteAddr) {
		return "", "", false
	}
	uri = cmp.Or(r.Header.Get("X-Forwarded-Uri"), r.Header.Get("X-Original-URI"))
	method = cmp.Or(r.Header.Get("X-Forwarded-Method"), r.Header.Get("X-Original-Method"), http.MethodGet)
	return method, uri, uri != ""
}

// storeError is the JSON answer to a failed session load: 401 when there
// is no session, 503 with Retry-After when the store itself failed.
func (s *Server) storeError(r *http.Request, err error) *answer {
	if errors.Is(err, session.ErrNotFound) {
		return jsonAnswer(http.StatusUnauthorized, unauthorizedBody)
	}
	a := s.storeUnavailable(r, err, templates.Page{Status: http.StatusServiceUnavailable})
	a.json = map[string]string{"error": "session_store_unavailable"}
	return a
}

var unauthorizedBody = map[string]string{"error": "unauthorized", "message": "sign-in required"}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
