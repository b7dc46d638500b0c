package authproxy

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/authproxy/authproxy/session"
)

// routes is the whole route table. Identity headers are stripped from every
// request before anything else sees it, skip-auth routes and authproxy's own
// endpoints included.
func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.accessLog, stripIdentityHeaders)

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

// forwardAuth serves nginx auth_request and Traefik ForwardAuth: 202 with
// identity response headers, 401 without a session, 403 when not allowed.
func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	sess, err := s.session(w, r)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	if reason := s.authorize(sess.Email, sess.Groups); reason != "" {
		s.log.Info("access denied", "event", "denied", "user", sess.User, "reason", reason, "path", authPath)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden"})
		return
	}
	h := w.Header()
	setHeader(h, "X-Auth-Request-User", sess.User)
	setHeader(h, "X-Auth-Request-Email", sess.Email)
	setHeader(h, "X-Auth-Request-Preferred-Username", sess.PreferredUsername)
	setHeader(h, "X-Auth-Request-Groups", joinGroups(sess.Groups))
	w.WriteHeader(http.StatusAccepted)
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
