package e2e

// The opened-session cache across two authproxy replicas sharing one real Redis: both serve a
// signed-in user's repeated requests from their caches; a sign-out or a back-channel logout
// through A is refused by A at once and by B within a second (Redis pub/sub carries it); while
// B's subscription is down B serves no session from its cache, and it caches again once it has
// subscribed again.

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// subscriptionDown is what authproxy logs when its cache's subscription is lost.
const subscriptionDown = "invalidation subscription down"

// cacheMetric returns one of the session cache's metrics at the proxy: the loads with result
// (hit, miss, bypass), or, with result "", the unlabeled metric name.
func cacheMetric(t *testing.T, pp *proxyProc, name, result string) float64 {
	t.Helper()
	if result == "" {
		return pp.metric(t, name, "", "")
	}
	return pp.metric(t, name, "result", result)
}

// wantCached has each replica serve the cookies, then again, and checks that a repeat came from
// its cache. A replica drops the session a load was putting in its cache when any invalidation
// arrives meanwhile (the load may predate a revocation): the sign-in's own invalidation, published
// by the replica it happened on, can reach this one during its first load on a loaded machine.
// So the repeat is tried up to three times, and one of them must be a hit.
func wantCached(t *testing.T, step string, jar []*http.Cookie, u user, replicas ...*proxyProc) {
	t.Helper()
	for _, pp := range replicas {
		wantSignedIn(t, step+", "+pp.name, pp.url, jar, u)
		hit := false
		for try := 1; try <= 3 && !hit; try++ {
			before := cacheMetric(t, pp, "authproxy_session_cache_loads_total", "hit")
			wantSignedIn(t, step+", "+pp.name+" again", pp.url, jar, u)
			hit = cacheMetric(t, pp, "authproxy_session_cache_loads_total", "hit")-before >= 1
			if !hit {
				t.Logf("%s: %s's repeat %d came from Redis, not its cache", step, pp.name, try)
			}
		}
		if !hit {
			t.Fatalf("%s: %s served the session's repeated requests from Redis, never from its cache", step, pp.name)
		}
	}
}

// wantRefusedWithin polls the proxy until the cookies get 401, failing after limit from since;
// it returns how long after since the first 401 came.
func wantRefusedWithin(t *testing.T, step string, pp *proxyProc, jar []*http.Cookie, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		code, _, body := whoamiAt(t, pp.url, jar)
		if code == http.StatusUnauthorized {
			return time.Since(since)
		}
		if code != http.StatusOK {
			t.Fatalf("%s: %s answered %d %q; want 200 until the session is refused, then 401", step, pp.name, code, body)
		}
		if time.Since(since) > limit {
			t.Fatalf("%s: %s still serves the session %v after it ended elsewhere; want 401 within %v", step, pp.name, time.Since(since).Round(time.Millisecond), limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitCacheEnabled polls the proxy's authproxy_session_cache_enabled until it is want.
func waitCacheEnabled(t *testing.T, step string, pp *proxyProc, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for cacheMetric(t, pp, "authproxy_session_cache_enabled", "") != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s's authproxy_session_cache_enabled is not %v after 10s", step, pp.name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisOK sends a command and fails the test unless Redis answers without an error.
func redisOK(t *testing.T, rd *redisServer, args ...string) {
	t.Helper()
	if _, err := rd.command(args...); err != nil {
		t.Fatalf("redis %v: %v", args, err)
	}
}

// TestCacheTwoReplicas signs in with Dex through replica A of two sharing a Redis: both cache
// the session; a sign-out through A is refused by A at once and by B within a second. Then
// Redis kills the replicas' subscriptions: they subscribe again by themselves, caching afresh.
// Then Redis kills them and refuses SUBSCRIBE for a while: B serves no session from its cache
// (a sign-out through A that B does not hear of is refused by B at once), and once Redis
// accepts SUBSCRIBE again B caches again.
func TestCacheTwoReplicas(t *testing.T) {
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	a, b := newProxy(t, ps, "authproxy-a"), newProxy(t, ps, "authproxy-b")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{a.callbackURL()}})
	env := dexProxyEnv(dex, a.callbackURL(), newSecret(), "AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url())
	a.start(t, env...)
	b.start(t, env...)
	for _, pp := range []*proxyProc{a, b} {
		waitCacheEnabled(t, "at start-up", pp, 1)
	}
	tab := newBrowser(t)
	signIn := func(path string) []*http.Cookie {
		t.Helper()
		clearCookies(t, tab)
		dexSignIn(t, tab, a.url, dex, alice, path)
		return httpCookies(proxyCookies(t, tab, a.url))
	}

	jar := signIn("/cache/first")
	wantCached(t, "signed in", jar, alice, a, b)
	resp, body := call(t, http.MethodGet, a.url+"/oauth2/sign_out", jar, nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET A/oauth2/sign_out: %s %q; want 302", resp.Status, body)
	}
	signedOut := time.Now()
	wantSignedOut(t, "replica A at once after signing out through A", a.url, jar)
	took := wantRefusedWithin(t, "replica B after signing out through A", b, jar, signedOut, time.Second)
	t.Logf("replica B refused the session %v after the sign-out through A answered", took.Round(time.Millisecond))

	// Connections killed: the replicas subscribe again at once, with empty caches.
	jar = signIn("/cache/second")
	wantCached(t, "signed in again", jar, alice, a, b)
	misses := cacheMetric(t, b, "authproxy_session_cache_loads_total", "miss")
	downs := strings.Count(b.log(t), subscriptionDown)
	redisOK(t, rd, "CLIENT", "KILL", "TYPE", "pubsub")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(b.log(t), subscriptionDown) == downs {
		if time.Now().After(deadline) {
			t.Fatalf("B did not log %q within 10s of CLIENT KILL TYPE pubsub", subscriptionDown)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitCacheEnabled(t, "after CLIENT KILL TYPE pubsub", b, 1)
	wantCached(t, "after the subscriptions were killed and made again", jar, alice, b)
	if got := cacheMetric(t, b, "authproxy_session_cache_loads_total", "miss"); got == misses {
		t.Errorf("after resubscribing B answered from a cache filled before: want it to start empty")
	}

	// Connections killed and SUBSCRIBE refused: B uses no cache until it subscribes again.
	redisOK(t, rd, "ACL", "SETUSER", "default", "-subscribe")
	redisOK(t, rd, "CLIENT", "KILL", "TYPE", "pubsub")
	waitCacheEnabled(t, "with SUBSCRIBE refused", b, 0)
	bypassed := cacheMetric(t, b, "authproxy_session_cache_loads_total", "bypass")
	wantSignedIn(t, "replica B with its subscription down", b.url, jar, alice)
	resp, body = call(t, http.MethodGet, a.url+"/oauth2/sign_out", jar, nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET A/oauth2/sign_out with the subscriptions down: %s %q; want 302", resp.Status, body)
	}
	wantSignedOut(t, "replica B at once after a sign-out through A it did not hear of", b.url, jar)
	if got := cacheMetric(t, b, "authproxy_session_cache_loads_total", "bypass") - bypassed; got < 2 {
		t.Errorf("B's authproxy_session_cache_loads_total{result=\"bypass\"} rose by %v with its subscription down; want every load (2)", got)
	}
	redisOK(t, rd, "ACL", "SETUSER", "default", "+subscribe")
	waitCacheEnabled(t, "with SUBSCRIBE accepted again", b, 1)
	jar = signIn("/cache/third")
	wantCached(t, "with the subscription back", jar, alice, a, b)
}

// TestCacheTwoReplicasBackchannelLogout signs in with oidc-provider through replica A of two
// sharing a Redis, both caching the session, then logs out at the provider: its back-channel
// logout token reaches A, which refuses the session at once; B refuses it within a second.
func TestCacheTwoReplicasBackchannelLogout(t *testing.T) {
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	a, b := newProxy(t, ps, "authproxy-a"), newProxy(t, ps, "authproxy-b")
	opts := opOptions{
		ClientID: "authproxy-op", ClientSecret: "op-secret", SkipConsent: true,
		RedirectURIs:           []string{a.callbackURL()},
		PostLogoutRedirectURIs: []string{a.url + "/"},
		BackchannelLogoutURI:   a.url + "/oauth2/backchannel_logout",
	}
	op := startOIDCProviderIn(t, ps.testStack, opts)
	secret := make([]byte, 32)
	rand.Read(secret)
	env := []string{
		"AUTHPROXY_UPSTREAM=" + stack.appURL,
		"AUTHPROXY_OIDC_ISSUER=" + op.issuer,
		"AUTHPROXY_CLIENT_ID=" + opts.ClientID,
		"AUTHPROXY_CLIENT_SECRET=" + opts.ClientSecret,
		"AUTHPROXY_REDIRECT_URL=" + a.callbackURL(),
		"AUTHPROXY_COOKIE_SECRET=" + base64.StdEncoding.EncodeToString(secret),
		"AUTHPROXY_COOKIE_SECURE=false",
		"AUTHPROXY_SCOPES=openid email profile groups offline_access",
		"AUTHPROXY_LOG_FORMAT=text",
		"AUTHPROXY_SESSION_STORE=redis",
		"AUTHPROXY_REDIS_URL=" + rd.url(),
	}
	a.start(t, env...)
	b.start(t, env...)

	tab := newBrowser(t)
	opSignedIn(t, &opStack{op: op, proxyURL: a.url}, tab, opAda, "/cache/bcl")
	jar := httpCookies(proxyCookies(t, tab, a.url))
	for _, pp := range []*proxyProc{a, b} {
		waitCacheEnabled(t, "signed in", pp, 1)
		before := cacheMetric(t, pp, "authproxy_session_cache_loads_total", "hit")
		for range 2 {
			wantOPUser(t, "signed in, "+pp.name, pp.url, jar, opAda)
		}
		if cacheMetric(t, pp, "authproxy_session_cache_loads_total", "hit") == before {
			t.Fatalf("%s served the session's repeated request from Redis, not from its cache", pp.name)
		}
	}

	// Log out at the provider, in another tab: it posts a logout token to A.
	opTab := newTab(t, tab)
	run(t, opTab, "open the provider's end-session endpoint", chromedp.Navigate(op.endSessionURL()))
	if page := op.opPage(t, opTab, "open the end-session endpoint"); page != "logout" {
		t.Fatalf("the provider's end-session endpoint shows %q; want its logout confirmation\n%s", page, describe(opTab))
	}
	op.opAct(t, opTab, "confirm the logout at the provider", chromedp.Click(`button[name="logout"][value="yes"]`, chromedp.ByQuery))
	deadline := time.Now().Add(10 * time.Second)
	for a.metric(t, "authproxy_backchannel_logouts_total", "result", "ok") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("A counted no back-channel logout 10s after the logout at the provider\nprovider log:\n%s", op.log(t))
		}
		time.Sleep(10 * time.Millisecond)
	}
	loggedOut := time.Now()
	wantSignedOut(t, "replica A at once after the back-channel logout", a.url, jar)
	took := wantRefusedWithin(t, "replica B after the back-channel logout through A", b, jar, loggedOut, time.Second)
	t.Logf("replica B refused the session %v after A had counted the back-channel logout", took.Round(time.Millisecond))
}
