package session

import (
	"net/http"
	"testing"
)

// BenchmarkTicketStoreLoad loads a typical session (about 3 KB of tokens)
// from a memory backend and, when redis-server is installed, from a local
// Redis.
func BenchmarkTicketStoreLoad(b *testing.B) {
	kits := []func(b *testing.B) backendKit{
		func(*testing.B) backendKit { return memoryKit },
		func(b *testing.B) backendKit {
			srv := startRedis(b)
			return redisKit("redis", RedisOptions{URL: "redis://" + srv.addr()})
		},
	}
	for i, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			kit := kits[i](b)
			backend, _ := kit.new(b, fixedClock(testNow))
			store := NewTicketStore(backend, newTestCodec(b, newSecret(b)), CookieOptions{Secure: true, SameSite: http.SameSiteLaxMode}, fixedClock(testNow))
			br := newBrowser(b)
			saveVia(b, br, store, newSession(b, typicalTokenBytes))
			r := br.request()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := store.Load(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTicketStoreUpdate saves a typical session over itself, as the
// proxy does to slide an idle timeout.
func BenchmarkTicketStoreUpdate(b *testing.B) {
	e := newTicketEnv(b, memoryKit)
	br := newBrowser(b)
	sess := newSession(b, typicalTokenBytes)
	saveVia(b, br, e.store, sess)
	r := br.request()
	w := discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.store.Save(w, r, sess); err != nil {
			b.Fatal(err)
		}
	}
}
