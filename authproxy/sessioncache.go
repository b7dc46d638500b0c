package authproxy

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/session"
)

// sessionCacheSize bounds the opened-session cache; when full it starts over.
const sessionCacheSize = 10000

// sessionCache remembers the sessions opened from exact session-cookie
// values, so that a browser's repeated requests skip decrypting and decoding
// its cookie. A hit is the same bytes that were authenticated when first
// opened, so every request is still authenticated; expiry and idle time are
// checked on every hit. It is used only when every revocation reaches this
// process (the cookie store without Redis), and any sign-out, revocation or
// refresh here empties it, so revocation takes effect at once.
type sessionCache struct {
	name string // the session cookie name

	mu sync.RWMutex
	m  map[string]*session.Session
}

func newSessionCache(cookieName string) *sessionCache {
	return &sessionCache{name: cookieName, m: make(map[string]*session.Session)}
}

// key returns the request's session cookies (the bare cookie or its
// chunks, in order) as one string, or "" when it has none.
func (c *sessionCache) key(r *http.Request) string {
	var b strings.Builder
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			name, _, _ := strings.Cut(part, "=")
			if isOwnCookie(name, c.name) && !strings.HasPrefix(name, c.name+"_csrf_") {
				b.WriteString(part)
				b.WriteByte(';')
			}
		}
	}
	return b.String()
}

// get returns the cached session for key when it is still usable at now.
func (c *sessionCache) get(key string, now time.Time) *session.Session {
	c.mu.RLock()
	sess := c.m[key]
	c.mu.RUnlock()
	if sess == nil || sess.Expired(now) {
		return nil
	}
	return sess
}

func (c *sessionCache) put(key string, sess *session.Session) {
	c.mu.Lock()
	if len(c.m) >= sessionCacheSize {
		clear(c.m)
	}
	c.m[key] = sess
	c.mu.Unlock()
}

// reset forgets every cached session.
func (c *sessionCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
