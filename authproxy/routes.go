package authproxy

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/authproxy/authproxy/policy"
	"github.com/authproxy/authproxy/session"
)

// routes is the whole route table. Identity headers are stripped from every
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
		s.protect(w, r)
	})
	return s.accessLog(s.stripIdentityHeaders(h))
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
	r.Get(startPath, s.start)
	r.Get(callbackPath, s.callback)
	r.Get(signOutPath, s.signOut)
	r.Post(signOutPath, s.signOut)
	r.Get(signedOutPath, s.signedOut)
	r.Get(userinfoPath, s.userinfo)
	r.HandleFunc(authPath, s.forwardAuth)
	r.Post(backchannelLogoutPath, s.backchannelLogout)
	r.NotFound(s.protect)
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed"})
	})
	return r
}

// ready answers 200 once the IdP's discovery is loaded and the session store
// answers, else 503 with the reason.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.provider.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	if p, ok := s.store.(session.Pinger); ok {
		if err := p.Ping(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": "session store: " + err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// userinfo answers the signed-in user's identity as JSON, 401 without a session.
func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	sess, err := s.session(w, r)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"user":               sess.User,
		"email":              sess.Email,
		"preferred_username": sess.PreferredUsername,
		"groups":             nonNil(sess.Groups),
	})
}

// forwardAuth serves nginx auth_request and Traefik ForwardAuth: 202 (with
// X-Auth-Request-* identity headers when signed in), 401 without a session,
// 403 when signed in but not allowed. The original request's method and URI
// are read from X-Forwarded-Method/-Uri (Traefik) or X-Original-Method/-URI
// (nginx) only when the request comes from AUTHPROXY_TRUSTED_PROXIES; then
// the policy is applied to them. Without them only the session and the
// global allow-lists are checked.
func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	method, uri, known := s.originalRequest(r)
	clean := ""
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
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "message": "ambiguous method or path"})
			return
		}
		if d := s.cfg.Policy.Decide(method, clean, nil); !d.NeedsSession {
			setOutcome(r, outcomePublic, "")
			w.WriteHeader(http.StatusAccepted)
			return
		}
	}
	sess, answered, err := s.identify(w, r)
	if answered {
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	reason := ""
	if known {
		reason = s.decide(method, clean, sess)
	} else if reason = s.authorize(sess.Email, sess.Groups); reason != "" {
		s.log.Info("access denied", "event", "denied", "user", sess.User, "path", authPath, "reason", reason)
	}
	if reason != "" {
		setOutcome(r, outcomeForbidden, sess.User)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
		return
	}
	setOutcome(r, outcomeProxied, sess.User)
	h := w.Header()
	setHeader(h, "X-Auth-Request-User", sess.User)
	setHeader(h, "X-Auth-Request-Email", sess.Email)
	setHeader(h, "X-Auth-Request-Preferred-Username", sess.PreferredUsername)
	setHeader(h, "X-Auth-Request-Groups", joinGroups(sess.Groups))
	if s.cfg.PassAccessToken {
		setHeader(h, "X-Auth-Request-Access-Token", sess.AccessToken)
	}
	w.WriteHeader(http.StatusAccepted)
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

// storeError answers a failed session load: 401 when there is no session,
// 500 when the store itself failed.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, session.ErrNotFound) {
		writeJSON(w, http.StatusUnauthorized, unauthorizedBody)
		return
	}
	s.log.Error("session store failed", "err", err, "path", r.URL.Path)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "session_store_unavailable"})
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
