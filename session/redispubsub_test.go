package session

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// newRedisPair returns two RedisBackends on srv under one key prefix, as two
// replicas sharing a Redis have.
func newRedisPair(t *testing.T, srv *redisProc) (*RedisBackend, *RedisBackend) {
	t.Helper()
	var bs [2]*RedisBackend
	for i := range bs {
		b, err := NewRedisBackend(RedisOptions{URL: "redis://" + srv.addr() + "/0", KeyPrefix: "pubsub-test:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		bs[i] = b
	}
	return bs[0], bs[1]
}

// redisCommand sends an inline command to srv and fails the test unless
// Redis answers without an error.
func redisCommand(t *testing.T, srv *redisProc, command string) string {
	t.Helper()
	reply, err := rawCommand(srv.addr(), command)
	if err != nil || reply == "" || reply[0] == '-' {
		t.Fatalf("redis %s: %q, %v", command, reply, err)
	}
	return reply
}

// TestRedisBroadcaster runs a subscription against a real redis-server:
// confirmed, delivering what another backend publishes; lost when Redis
// kills its connection and made again by itself; kept down while Redis
// refuses SUBSCRIBE (messages meanwhile are missed), back once it accepts
// it; lost while Redis is down and back when it is; and ended by Close.
func TestRedisBroadcaster(t *testing.T) {
	srv := startRedis(t)
	a, b := newRedisPair(t, srv)
	ctx := context.Background()
	rec := newRecorder()
	b.Subscribe("c", rec)
	const wait = 10 * time.Second
	rec.want(t, wait, "subscribed")
	publish := func(msg string) {
		t.Helper()
		if err := a.Publish(ctx, "c", []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	publish("m1")
	rec.want(t, wait, "msg:m1")
	if err := a.Publish(ctx, "another channel", []byte("x")); err != nil {
		t.Fatal(err)
	}

	redisCommand(t, srv, "CLIENT KILL TYPE pubsub")
	rec.want(t, wait, "lost")
	rec.want(t, wait, "subscribed")
	publish("m2")
	rec.want(t, wait, "msg:m2")

	redisCommand(t, srv, "ACL SETUSER default -subscribe")
	redisCommand(t, srv, "CLIENT KILL TYPE pubsub")
	rec.want(t, wait, "lost")
	publish("m3") // nobody subscribed: missed
	redisCommand(t, srv, "ACL SETUSER default +subscribe")
	rec.want(t, wait, "subscribed")
	publish("m4")
	rec.want(t, wait, "msg:m4")

	srv.stop()
	rec.want(t, wait, "lost")
	srv.start()
	rec.want(t, wait, "subscribed")
	publish("m5")
	rec.want(t, wait, "msg:m5")

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	publish("m6")
	rec.wantNothing(t, "after Close")
}

// TestRedisCachedStoreAcrossReplicas: two replicas' CachedStores over ticket
// stores on one real Redis. A sign-out and a revocation through A reach B's
// cache in well under a second (the time is logged); while B's subscription
// is down B loads from Redis (a sign-out it does not hear of still takes
// effect on it), and it caches again once resubscribed.
func TestRedisCachedStoreAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	ba, bb := newRedisPair(t, srv)
	codec := newTestCodec(t, newSecret(t))
	innerA := NewTicketStore(ba, codec, CookieOptions{}, nil)
	a := Cached(innerA, CacheOptions{Broadcaster: ba})
	b := Cached(NewTicketStore(bb, codec, CookieOptions{}, nil), CacheOptions{Broadcaster: bb})
	t.Cleanup(func() { a.Close(); b.Close() })
	enabled := func(c *CachedStore) func() bool { return func() bool { return c.Stats().Enabled } }
	poll(t, 10*time.Second, "both caches subscribed", func() bool { return a.Stats().Enabled && b.Stats().Enabled })

	signIn := func(sid string) *browser {
		br := newBrowser(t)
		sess := newSession(t, 300)
		sess.CreatedAt, sess.ExpiresAt, sess.SID = time.Now(), time.Now().Add(time.Hour), sid
		saveVia(t, br, innerA, sess)
		for i := range 2 {
			if _, cached, err := b.Lookup(br.request()); err != nil || cached != (i == 1) {
				t.Fatalf("B's load %d: cached %v, %v; want the session, from the cache the second time", i+1, cached, err)
			}
		}
		return br
	}
	reachesB := func(what string, br *browser) {
		t.Helper()
		start := time.Now()
		poll(t, time.Second, what+" reaches B's cache", func() bool { return b.Stats().Entries == 0 })
		t.Logf("%s through A reached B's cache in %v", what, time.Since(start))
		got, err := b.Load(br.request())
		wantNotFound(t, "B's Load after "+what, got, err)
	}

	br := signIn("sid-1")
	if err := a.Clear(httptest.NewRecorder(), br.request()); err != nil {
		t.Fatal(err)
	}
	reachesB("a sign-out", br)

	br = signIn("sid-2")
	if _, err := a.RevokeSID(context.Background(), "sid-2"); err != nil {
		t.Fatal(err)
	}
	reachesB("a revocation by sid", br)

	br = signIn("sid-3")
	redisCommand(t, srv, "ACL SETUSER default -subscribe")
	redisCommand(t, srv, "CLIENT KILL TYPE pubsub")
	poll(t, 10*time.Second, "B's cache off", func() bool { return !b.Stats().Enabled })
	if err := a.Clear(httptest.NewRecorder(), br.request()); err != nil {
		t.Fatal(err)
	}
	got, cached, err := b.Lookup(br.request())
	if cached || !errors.Is(err, ErrNotFound) {
		t.Errorf("B with its subscription down, after a sign-out through A: %+v, cached %v, %v; want ErrNotFound from Redis", got, cached, err)
	}
	redisCommand(t, srv, "ACL SETUSER default +subscribe")
	poll(t, 10*time.Second, "B's cache on again", enabled(b))
	signIn("sid-4")
}
