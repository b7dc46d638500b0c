package authproxy

import (
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
)

// bearerCacheSize bounds the cache of verified bearer tokens.
const bearerCacheSize = 10000

// bearerRefusal is a refused bearer token (401): why, and the name of the
// IdP whose token it is (unknownIdP when no IdP could be told from it).
type bearerRefusal struct {
	idp string
	err error
}

func (e *bearerRefusal) Error() string { return "authproxy: invalid bearer token: " + e.err.Error() }
func (e *bearerRefusal) Unwrap() error { return e.err }

// bearerToken returns the token of an "Authorization: Bearer …" header and
// whether the request has one (a Bearer header with no token counts: it is
// an API client whose token is missing).
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// bearerCache remembers verified tokens until they expire, so that an API
// client's repeated requests cost one signature check, not one each.
type bearerCache struct {
	mu      sync.Mutex
	entries map[[32]byte]*session.Session
}

func (c *bearerCache) get(key [32]byte, now time.Time) *session.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.entries[key]; s != nil && now.Before(s.ExpiresAt) {
		return s
	}
	return nil
}

func (c *bearerCache) put(key [32]byte, s *session.Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= bearerCacheSize {
		c.entries = make(map[[32]byte]*session.Session)
	}
	c.entries[key] = s
}

// bearerSession authenticates an API client by a JWT access token from the
// IdP. The result behaves as a session for policy and identity headers, but
// is never stored.
//
// With several IdPs the token's issuer picks the IdP that verifies it, with
// that IdP's keys and bearer audiences; the session records the IdP. A
// refused token's error is a *bearerRefusal; any other error means the
// token could not be checked (the IdP failed), not that it was refused.
func (s *Server) bearerSession(r *http.Request, raw string) (*session.Session, error) {
	if raw == "" {
		return nil, &bearerRefusal{unknownIdP, errors.New("empty")}
	}
	key := sha256.Sum256([]byte(raw))
	if sess := s.bearers.get(key, s.now()); sess != nil {
		return sess, nil
	}
	p, err := s.idps.forToken(raw)
	if err != nil {
		return nil, &bearerRefusal{unknownIdP, err}
	}
	bv, ok := p.provider.(providers.BearerVerifier)
	if !ok {
		return nil, &bearerRefusal{p.name(), errors.New("this provider cannot verify bearer tokens")}
	}
	id, err := bv.VerifyBearer(r.Context(), raw, p.cfg.BearerAudiences)
	if err != nil {
		if errors.Is(err, providers.ErrRejected) {
			return nil, &bearerRefusal{p.name(), err}
		}
		return nil, err
	}
	if !p.emailTrusted(id) {
		return nil, &bearerRefusal{p.name(), errors.New("email not verified")}
	}
	sess := &session.Session{
		ID:                "bearer",
		IdP:               s.idps.sessionName(p),
		User:              id.User,
		Subject:           id.Subject,
		Email:             id.Email,
		PreferredUsername: id.PreferredUsername,
		Groups:            id.Groups,
		Extra:             id.Extra,
		AccessToken:       raw,
		TokenExpiry:       id.Expiry,
		CreatedAt:         s.now(),
		ExpiresAt:         id.Expiry,
	}
	s.bearers.put(key, sess)
	return sess, nil
}

// badBearer is the answer to a refused bearer token (RFC 6750 section 3).
func badBearer(r *http.Request, err *bearerRefusal) *answer {
	setOutcome(r, outcomeUnauth, "")
	return jsonAnswer(http.StatusUnauthorized, map[string]string{"error": "invalid_token", "message": "the bearer token is not valid"}).
		with("WWW-Authenticate", `Bearer error="invalid_token"`).
		logged(slog.LevelInfo, "bearer token refused", err, "event", "denied", "idp", err.idp, "reason", "invalid bearer token", "path", r.URL.Path)
}
