package authproxy

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/session"
)

// sessionCacheSize bounds the opened-session cache (each entry holds a
// decoded session, ~3-4 KB with Dex's tokens); when full a quarter of it,
// picked at random, makes room, so memory stays bounded however many users
// are active and the cache never empties all at once.
const sessionCacheSize = 2000

// sessionCache remembers the sessions opened from exact session-cookie
// values, so that a browser's repeated requests skip decrypting and decoding
// its cookie. A hit is the same bytes that were authenticated when first
// opened, so every request is still authenticated; expiry and idle time are
// checked on every hit. It is used only when every revocation reaches this
// process (the cookie store without Redis), and any sign-out, revocation or
// refresh here empties it, so revocation takes effect at once.
//
// A load that was in flight when the cache was emptied must not put back a
// session that has since been revoked: callers take the generation before
// loading and put with it, and put refuses a generation that reset has
// passed. Revocations must be recorded in the store before reset is called.
type sessionCache struct {
	name string // the session cookie name

	mu  sync.RWMutex
	m   map[[32]byte]*session.Session
	gen uint64 // incremented by every reset
}

func newSessionCache(cookieName string) *sessionCache {
	return &sessionCache{name: cookieName, m: make(map[[32]byte]*session.Session)}
}

// key returns a SHA-256 of the request's session cookies (the bare cookie
// or its chunks, in order), and false when it has none.
func (c *sessionCache) key(r *http.Request) ([32]byte, bool) {
	var b []byte
	for part, name := range cookieParts(r.Header["Cookie"]) {
		if isOwnCookie(name, c.name) && !strings.HasPrefix(name, c.name+"_csrf_") {
			b = append(b, part...)
			b = append(b, ';')
		}
	}
	if len(b) == 0 {
		return [32]byte{}, false
	}
	return sha256.Sum256(b), true
}

// get returns the cached session for key when it is still usable at now.
func (c *sessionCache) get(key [32]byte, now time.Time) *session.Session {
	c.mu.RLock()
	sess := c.m[key]
	c.mu.RUnlock()
	if sess == nil || sess.Expired(now) {
		return nil
	}
	return sess
}

// generation returns the cache's generation, to be taken before a load
// whose result is then put.
func (c *sessionCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put remembers sess under key, unless the cache has been reset since gen
// was taken: the session may have been revoked while it was being loaded.
func (c *sessionCache) put(key [32]byte, sess *session.Session, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= sessionCacheSize {
		// Map iteration order is random: this evicts a random quarter.
		n := sessionCacheSize / 4
		for k := range c.m {
			delete(c.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.m[key] = sess
}

// reset forgets every cached session and refuses every put of a load that
// started before it. Call it after the store has recorded a revocation.
func (c *sessionCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	clear(c.m)
	c.gen++
	c.mu.Unlock()
}
