package session

import (
	"math/rand/v2"
	"net/http"
	"testing"
)

// BenchmarkCachedStoreLoad loads a typical session (two cookies) through a
// CachedStore that holds it: the hit path every signed-in request takes.
func BenchmarkCachedStoreLoad(b *testing.B) {
	inner := newTestStore(b, CookieOptions{Secure: true, SameSite: http.SameSiteLaxMode})
	c := Cached(inner, CacheOptions{Now: fixedClock(testNow)})
	br := newBrowser(b)
	saveTo(b, br, inner, newSession(b, typicalTokenBytes))
	r := br.request()
	r.Header.Set("Cookie", r.Header.Get("Cookie")+"; app_pref=dark; app_lang=en")
	b.ReportAllocs()
	for b.Loop() {
		if _, cached, err := c.Lookup(r); err != nil || (!cached && c.Stats().Hits > 0) {
			b.Fatal(cached, err)
		}
	}
}

// BenchmarkCacheInvalidation measures what a replica does with each
// invalidation message, on a full cache of DefaultCacheSize sessions: drop
// one session by ID (what a refresh, an idle touch or a sign-out sends),
// and, for comparison, drop everything. hit-% is the share of loads answered
// from the cache when every user's load has a 1 in 30 chance of coming with
// a touch of that user (a request every 2 s, activity recorded once a
// minute) that invalidates as the case says.
func BenchmarkCacheInvalidation(b *testing.B) {
	for _, all := range []bool{false, true} {
		name := "by_id"
		if all {
			name = "everything"
		}
		b.Run(name, func(b *testing.B) {
			inner := newTestStore(b, CookieOptions{})
			c := Cached(inner, CacheOptions{Now: fixedClock(testNow)})
			users := make([]*http.Request, DefaultCacheSize)
			ids := make([]nameSum, len(users))
			for i := range users {
				br := newBrowser(b)
				sess := newSession(b, 100)
				saveTo(b, br, inner, sess)
				users[i], ids[i] = br.request(), sumName(sess.ID)
				if _, err := c.Load(users[i]); err != nil {
					b.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			hits, loads := c.Stats().Hits, 0
			b.ReportAllocs()
			for b.Loop() {
				u := rng.IntN(len(users))
				if _, err := c.Load(users[u]); err != nil {
					b.Fatal(err)
				}
				loads++
				if rng.IntN(30) == 0 {
					inv := invalidation{ids: []nameSum{ids[u]}}
					if all {
						inv = invalidation{all: true}
					}
					c.apply(&inv)
				}
			}
			b.ReportMetric(100*float64(c.Stats().Hits-hits)/float64(loads), "hit-%")
		})
	}
}
