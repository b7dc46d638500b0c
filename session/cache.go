package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for CacheOptions.
const (
	DefaultCacheSize   = 2000
	DefaultCacheMaxAge = time.Minute
)

// CacheOptions configure a CachedStore. The zero value is usable: a cache of
// DefaultCacheSize sessions, each used for up to DefaultCacheMaxAge, for a
// store every change of which goes through this process.
type CacheOptions struct {
	// Size bounds how many opened sessions are kept; default 2000. Each
	// holds a decoded session (a few KB with an IdP's tokens). When the
	// cache is full, each new session takes the place of one picked at
	// random, so the cache never empties all at once.
	Size int
	// MaxAge bounds how long one opened session is used before it is
	// loaded from the store again; default one minute. It limits how long
	// a change whose invalidation was lost (a failed publish) can go
	// unseen.
	MaxAge time.Duration
	// Broadcaster, when not nil, carries invalidations between the
	// replicas that share the store's backend: each change made through
	// the CachedStore is published, and each replica's cache drops what
	// another's changes affect. The cache is used only while its
	// subscription is in place; while it is down (not yet confirmed, or
	// lost) every Load goes to the store, and when it comes back the cache
	// starts empty, since messages may have been missed.
	//
	// Leave it nil only when every change to the store's sessions goes
	// through this process (no Redis): then nothing else can revoke them.
	Broadcaster Broadcaster
	// Logger says when the subscription is lost and back, and when
	// publishing fails; nil discards.
	Logger *slog.Logger
	// Now is the clock that expiry is checked with on every hit; nil
	// means time.Now.
	Now func() time.Time
}

// CachedStore is a Store that remembers the sessions it opened, by the exact
// bytes of the request's session cookies (their SHA-256), so that a
// browser's repeated requests skip decrypting and decoding its cookie, or
// the backend round trip of a ticket. A hit is a session opened, and
// authenticated, from those very bytes; expiry (ExpiresAt and the idle
// timeout) is checked on every hit. Make one with Cached.
//
// Every Save, Clear, RevokeSID and RevokeSubject made through it drops the
// sessions it affects, after the store has recorded the change, and, with a
// Broadcaster, tells the other replicas to drop them too. A Load that was in
// flight while anything was dropped does not put its session in the cache:
// it may have read the store before the change. So a revocation made through
// this process takes effect in it at once, and one made through another
// replica as soon as its message arrives (well within a second while the
// subscription is up; the cache is not used while it is down).
//
// Sessions returned by Load may be shared between requests: callers must not
// modify them (copy, then Save the copy).
//
// It implements Revoker, Pinger and CookieOwner by passing them on to the
// wrapped store; a wrapped store that does not implement them makes them
// fail, report nil and own nothing. It is safe for concurrent use. Close
// stops its subscription.
type CachedStore struct {
	store  Store
	owner  CookieOwner // nil: the store sets no cookies of its own, so nothing is cached
	size   int
	maxAge time.Duration
	bc     Broadcaster
	log    *slog.Logger
	now    func() time.Time

	stop     func() // ends the subscription; nil without a Broadcaster
	stopOnce sync.Once
	bufs     sync.Pool // *[]byte, for building keys

	mu  sync.RWMutex
	m   map[cacheKey]cacheEntry
	gen uint64 // incremented whenever anything is dropped
	on  bool   // whether the cache is used: always without a Broadcaster, else while subscribed

	hits, misses, bypassed atomic.Uint64
}

// cacheEntry is one opened session with the sums invalidations name it by:
// of its ID, ScopedSID and ScopedSubject.
type cacheEntry struct {
	sess          *Session
	until         time.Time // stored + MaxAge
	id, sid, subj nameSum
}

var (
	_ Store       = (*CachedStore)(nil)
	_ Revoker     = (*CachedStore)(nil)
	_ Pinger      = (*CachedStore)(nil)
	_ CookieOwner = (*CachedStore)(nil)
)

// Cached returns store with a cache of opened sessions in front (see
// CachedStore); store must not be nil. With opts.Broadcaster it subscribes
// at once, in the background; until the subscription is in place, every Load
// goes to store.
func Cached(store Store, opts CacheOptions) *CachedStore {
	if store == nil {
		panic("session: Cached: nil store")
	}
	c := &CachedStore{
		store:  store,
		size:   opts.Size,
		maxAge: opts.MaxAge,
		bc:     opts.Broadcaster,
		log:    opts.Logger,
		now:    opts.Now,
		m:      map[cacheKey]cacheEntry{},
		on:     opts.Broadcaster == nil,
	}
	c.owner, _ = store.(CookieOwner)
	if c.size <= 0 {
		c.size = DefaultCacheSize
	}
	if c.maxAge <= 0 {
		c.maxAge = DefaultCacheMaxAge
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	if c.bc != nil {
		c.stop = c.bc.Subscribe(invalidationChannel, cacheSubscriber{c})
	}
	return c
}

// Close ends the cache's subscription, if it has one; the cache is not used
// after (every Load goes to the store). It does not close the store.
func (c *CachedStore) Close() error {
	c.stopOnce.Do(func() {
		if c.stop != nil {
			c.stop()
		}
		c.disable()
	})
	return nil
}

// Load returns the session the request's cookies open: from the cache when
// they opened one before that is still usable, else from the store (and
// then remembers it). Errors are the store's.
func (c *CachedStore) Load(r *http.Request) (*Session, error) {
	sess, _, err := c.Lookup(r)
	return sess, err
}

// Lookup is Load, and also reports whether the session came from the cache,
// so that no operation of the store was made.
func (c *CachedStore) Lookup(r *http.Request) (sess *Session, cached bool, err error) {
	return c.LookupCookies(r, AppendCookies(nil, r.Header))
}

// LookupCookies is Lookup from the request's cookies, already split
// (AppendCookies): the cache key and, on a miss, the store's load
// (CookieLoader) read them, not the Cookie header again.
func (c *CachedStore) LookupCookies(r *http.Request, cookies []Cookie) (sess *Session, cached bool, err error) {
	key, ok := c.key(cookies)
	if !ok {
		sess, err = LoadWith(c.store, r, cookies) // no cookie of the store's: it says why
		return sess, false, err
	}
	now := c.now()
	c.mu.RLock()
	e, hit := c.m[key]
	gen, on := c.gen, c.on
	c.mu.RUnlock()
	if !on {
		c.bypassed.Add(1)
		sess, err = LoadWith(c.store, r, cookies)
		return sess, false, err
	}
	if hit && now.Before(e.until) && !e.sess.Expired(now) {
		c.hits.Add(1)
		return e.sess, true, nil
	}
	c.misses.Add(1)
	sess, err = LoadWith(c.store, r, cookies)
	if err == nil {
		c.put(key, sess, gen, now)
	}
	return sess, false, err
}

// LoadFresh loads the request's session from the store, past the cache,
// for a caller that must see a change another replica made a moment ago
// (whose invalidation may still be on its way).
func (c *CachedStore) LoadFresh(r *http.Request) (*Session, error) {
	return c.store.Load(r)
}

// put remembers sess under key, unless anything has been dropped since gen
// was taken: sess may have been revoked while it was being loaded.
func (c *CachedStore) put(key cacheKey, sess *Session, gen uint64, now time.Time) {
	e := cacheEntry{sess: sess, until: now.Add(c.maxAge), id: sumName(sess.ID), sid: sumName(sess.ScopedSID()), subj: sumName(sess.ScopedSubject())}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen || !c.on {
		return
	}
	if _, ok := c.m[key]; !ok && len(c.m) >= c.size {
		// Map iteration starts at a random place: this evicts one entry
		// picked at random for each one added.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}

// Save saves sess with the store, then drops the request's cached session
// and every cached copy of sess (by ID), here and, with a Broadcaster, on
// every replica. A failure to publish is logged, not returned: the session
// was saved, and other replicas see it within MaxAge at worst.
func (c *CachedStore) Save(w http.ResponseWriter, r *http.Request, sess *Session) error {
	inv := c.requestInvalidation(r, false)
	if sess != nil && sess.ID != "" {
		inv.ids = append(inv.ids, sumName(sess.ID))
	}
	err := c.store.Save(w, r, sess)
	if perr := c.invalidate(r.Context(), inv); perr != nil {
		c.log.Warn("session cache: other replicas may keep the session from before a save for up to a minute", "err", perr)
	}
	return err
}

// Clear clears the request's session with the store, then drops it (every
// cached copy of it, by ID) here and, with a Broadcaster, on every replica.
// A failure to publish is returned, joined to the store's error, if any:
// other replicas may still accept the session for up to MaxAge.
func (c *CachedStore) Clear(w http.ResponseWriter, r *http.Request) error {
	inv := c.requestInvalidation(r, true)
	err := c.store.Clear(w, r)
	return errors.Join(err, c.invalidate(r.Context(), inv))
}

// RevokeSID revokes every session whose ScopedSID is sid with the store
// (see Revoker: sid is scoped by its IdP), then drops them here and, with
// a Broadcaster, on every replica. A failure to publish is returned as for
// Clear.
func (c *CachedStore) RevokeSID(ctx context.Context, sid string) (int, error) {
	return c.revoke(ctx, invalidation{sids: []nameSum{sumName(sid)}}, func(rv Revoker) (int, error) {
		return rv.RevokeSID(ctx, sid)
	})
}

// RevokeSubject revokes every session whose ScopedSubject is sub with the
// store (see Revoker: sub is scoped by its IdP), then drops them here and,
// with a Broadcaster, on every replica. A failure to publish is returned as
// for Clear.
func (c *CachedStore) RevokeSubject(ctx context.Context, sub string) (int, error) {
	return c.revoke(ctx, invalidation{subs: []nameSum{sumName(sub)}}, func(rv Revoker) (int, error) {
		return rv.RevokeSubject(ctx, sub)
	})
}

// errCannotRevoke is what a CachedStore's Revoker methods return when its
// store is no Revoker.
var errCannotRevoke = errors.New("session: revoke: the store cannot revoke sessions")

func (c *CachedStore) revoke(ctx context.Context, inv invalidation, do func(Revoker) (int, error)) (int, error) {
	rv, ok := c.store.(Revoker)
	if !ok {
		return 0, errCannotRevoke
	}
	n, err := do(rv)
	// Even after a failure: some sessions may have been revoked.
	return n, errors.Join(err, c.invalidate(ctx, inv))
}

// Ping reports whether the store answers, when it is a Pinger; else nil.
func (c *CachedStore) Ping(ctx context.Context) error {
	if p, ok := c.store.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Owns reports whether cookieName is one of the store's cookies; false when
// it sets none (is not a CookieOwner).
func (c *CachedStore) Owns(cookieName string) bool {
	return c.owner != nil && c.owner.Owns(cookieName)
}

// Reset drops every cached session in this process, as when the keys that
// open cookies change. Other replicas are not told.
func (c *CachedStore) Reset() {
	c.apply(&invalidation{all: true})
}

// CacheStats are a CachedStore's counts since it was made.
type CacheStats struct {
	// Hits are Loads answered from the cache, Misses those that went to
	// the store while the cache was in use, Bypassed those that went to
	// the store because it was not (its subscription was down). Loads of a
	// request without the store's cookies are not counted.
	Hits, Misses, Bypassed uint64
	// Entries is how many sessions the cache holds now.
	Entries int
	// Enabled reports whether the cache is in use now.
	Enabled bool
}

// Stats returns the cache's counts.
func (c *CachedStore) Stats() CacheStats {
	c.mu.RLock()
	n, on := len(c.m), c.on
	c.mu.RUnlock()
	return CacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Bypassed: c.bypassed.Load(), Entries: n, Enabled: on}
}

// key returns the SHA-256 of the request's cookies that the store owns,
// each "name=value" exactly as sent and in order, and false when there are
// none.
func (c *CachedStore) key(cookies []Cookie) (cacheKey, bool) {
	if c.owner == nil {
		return cacheKey{}, false
	}
	bp := c.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	for _, ck := range cookies {
		if c.owner.Owns(ck.Name) {
			b = append(b, ck.Part...)
			b = append(b, ';')
		}
	}
	var key cacheKey
	ok := len(b) > 0
	if ok {
		key = sha256.Sum256(b)
	}
	*bp = b
	c.bufs.Put(bp)
	return key, ok
}

// requestInvalidation names the request's cached session: by its cookies
// and, when it is cached (or, if load, when the store opens it), its ID.
func (c *CachedStore) requestInvalidation(r *http.Request, load bool) invalidation {
	var inv invalidation
	key, ok := c.key(AppendCookies(nil, r.Header))
	if !ok {
		return inv
	}
	inv.keys = []cacheKey{key}
	c.mu.RLock()
	e, hit := c.m[key]
	c.mu.RUnlock()
	switch {
	case hit:
		inv.ids = []nameSum{e.id}
	case load:
		if sess, err := c.store.Load(r); err == nil {
			inv.ids = []nameSum{sumName(sess.ID)}
		}
	}
	return inv
}

// invalidate drops what inv names here, then publishes it for the other
// replicas; the caller has already made the change in the store. The
// publish is not cancelled with ctx: a client that goes away must not keep
// a revocation from the other replicas.
func (c *CachedStore) invalidate(ctx context.Context, inv invalidation) error {
	if inv.empty() {
		return nil
	}
	c.apply(&inv)
	if c.bc == nil {
		return nil
	}
	if err := c.bc.Publish(context.WithoutCancel(ctx), invalidationChannel, inv.encode()); err != nil {
		return fmt.Errorf("session: cache: publishing an invalidation: %w", err)
	}
	return nil
}

// apply drops the cached sessions inv names, and keeps every Load in flight
// from putting its session.
func (c *CachedStore) apply(inv *invalidation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if inv.all {
		clear(c.m)
		return
	}
	for _, k := range inv.keys {
		delete(c.m, k)
	}
	if len(inv.ids)+len(inv.sids)+len(inv.subs) == 0 {
		return
	}
	for k, e := range c.m {
		if matchSum(e.id, inv.ids) || (e.sess.SID != "" && matchSum(e.sid, inv.sids)) || (e.sess.Subject != "" && matchSum(e.subj, inv.subs)) {
			delete(c.m, k)
		}
	}
}

func matchSum(s nameSum, in []nameSum) bool {
	for _, x := range in {
		if x == s {
			return true
		}
	}
	return false
}

// enable starts using the cache, empty; disable stops using it.
func (c *CachedStore) enable()  { c.setOn(true) }
func (c *CachedStore) disable() { c.setOn(false) }

func (c *CachedStore) setOn(on bool) {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.on = on
	c.mu.Unlock()
}

// cacheSubscriber is a CachedStore's side of its subscription.
type cacheSubscriber struct{ c *CachedStore }

// Subscribed starts using the cache, empty: whatever was cached before may
// have been changed by a message that was missed.
func (s cacheSubscriber) Subscribed() {
	s.c.enable()
	s.c.log.Info("session cache: invalidation subscription in place; caching opened sessions")
}

// Lost stops using the cache until the subscription is back.
func (s cacheSubscriber) Lost(err error) {
	s.c.disable()
	s.c.log.Warn("session cache: invalidation subscription down; every request's session is loaded from the store until it is back", "err", err)
}

// Receive drops what another replica's (or this one's) change affects.
func (s cacheSubscriber) Receive(msg []byte) {
	inv := decodeInvalidation(msg)
	s.c.apply(&inv)
}
