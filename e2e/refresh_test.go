package e2e

// Token refresh against a real Dex whose tokens live 65 seconds: authproxy refreshes a session
// whose access token is within a minute of expiry, once, however many of its requests arrive at
// the same moment, and across replicas sharing Redis.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// dexTokenLifetime is the Dex ID and access token lifetime of the refresh test: a token is due
// for refresh (within authproxy's one-minute margin) 5 seconds after it was issued, and a fresh
// one is not due again for 5 seconds, much longer than a burst of requests takes.
const (
	dexTokenLifetime = 65 * time.Second
	refreshMargin    = time.Minute // authproxy's refreshMargin (authproxy/refresh.go)
)

// burstResult is what a burst of concurrent requests of one session saw.
type burstResult struct {
	codes      map[int]int
	setCookies int // responses that set a new session cookie
	took       time.Duration
	newCookies []*http.Cookie // the session cookies one of the responses set
	users      map[string]int // the app's X-Forwarded-Email on 200s
}

// burst sends n GET /api/whoami requests with cookies at the same moment, spread over the proxies
// in turn, and waits for all of them.
func burst(t *testing.T, n int, cookies []*http.Cookie, proxies ...*proxyProc) burstResult {
	t.Helper()
	res := burstResult{codes: map[int]int{}, users: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{})
	client := &http.Client{
		Timeout:       20 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, proxies[i%len(proxies)].url+"/api/whoami", nil)
			for _, c := range cookies {
				req.AddCookie(c)
			}
			<-gate
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var w whoami
			json.Unmarshal(body, &w)
			mu.Lock()
			defer mu.Unlock()
			res.codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusOK {
				res.users[w.Email]++
			}
			var set []*http.Cookie
			for _, c := range resp.Cookies() {
				if strings.HasPrefix(c.Name, "_authproxy") && c.MaxAge >= 0 && c.Value != "" {
					set = append(set, c)
				}
			}
			if len(set) > 0 {
				res.setCookies++
				res.newCookies = set
			}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	res.took = time.Since(start)
	close(errs)
	for err := range errs {
		t.Errorf("request of the burst failed: %v", err)
	}
	return res
}

// carol is the demo's third user, without groups.
var carol = user{"carol@example.com", "carol", "carol", "0e4b2f6c-5a1d-4c8e-9b7a-ca7010000003", nil}

// refreshCase is one session whose burst is measured.
type refreshCase struct {
	name        string
	user        user
	refused     bool // Dex refuses the refresh: the session must end for every request
	ticketStore bool // AUTHPROXY_SESSION_STORE=redis
	// sequential: instead of the burst, one request to the first target, then one with the same
	// (old) cookies to the second, as when a browser's parallel requests are spread over replicas
	// and one arrives a moment after another replica refreshed.
	sequential bool
	signInAt   *proxyProc   // where the browser signs in
	targets    []*proxyProc // where the burst goes (their refresh counts are summed)
	cookies    []*http.Cookie
	signedIn   time.Time
}

// TestRefreshOnceUnderConcurrency signs in with Dex tokens of 65s, waits until the access token
// is within authproxy's one-minute refresh margin, then fires 50 concurrent API requests with the
// session: all are served, and the token is refreshed exactly once (authproxy's
// authproxy_refreshes_total{result="ok"} and Dex's token endpoint count agree). With the cookie
// store, the Redis store, two Redis-store replicas sharing the burst, and two cookie-store
// replicas sharing Redis (for their revocation list and refresh locks) and the burst.
//
// Also one request to a cookie-store replica, then one with the same cookies to another: the
// second must not spend the refresh token the first already spent (Dex rotates refresh tokens and
// refuses a spent one, which ends the session).
//
// And once with a refresh token Dex no longer honours: Dex keeps one refresh token per user and
// client, so a user's second sign-in deletes the refresh token of the first session. That
// session's burst must get 401 throughout: the IdP ended the session, and no request may be
// served with it any more.
func TestRefreshOnceUnderConcurrency(t *testing.T) {
	const n = 50
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	cookieProxy := newProxy(t, ps, "authproxy-cookie")
	redisA, redisB := newProxy(t, ps, "authproxy-redis-a"), newProxy(t, ps, "authproxy-redis-b")
	cookieRA, cookieRB := newProxy(t, ps, "authproxy-cookie-redis-a"), newProxy(t, ps, "authproxy-cookie-redis-b")
	dex := startDex(t, ps, dexOptions{
		Callbacks:  []string{cookieProxy.callbackURL(), redisA.callbackURL(), cookieRA.callbackURL()},
		IDTokens:   dexTokenLifetime.String(),
		ExtraUsers: 5,
	})
	cookieProxy.start(t, dexProxyEnv(dex, cookieProxy.callbackURL(), newSecret())...)
	redisEnv := dexProxyEnv(dex, redisA.callbackURL(), newSecret(), "AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url())
	redisA.start(t, redisEnv...)
	redisB.start(t, redisEnv...)
	cookieREnv := dexProxyEnv(dex, cookieRA.callbackURL(), newSecret(), "AUTHPROXY_REDIS_URL="+rd.url())
	cookieRA.start(t, cookieREnv...)
	cookieRB.start(t, cookieREnv...)

	refusedUser := extraUser(1)
	cases := []*refreshCase{
		{name: "refresh refused by Dex, redis store", user: refusedUser, refused: true, ticketStore: true, signInAt: redisA, targets: []*proxyProc{redisA}},
		{name: "cookie store", user: alice, signInAt: cookieProxy, targets: []*proxyProc{cookieProxy}},
		{name: "redis store", user: bob, ticketStore: true, signInAt: redisA, targets: []*proxyProc{redisA}},
		// The replicas race for the refresh lock: three tries.
		{name: "redis store, two replicas", user: carol, ticketStore: true, signInAt: redisA, targets: []*proxyProc{redisA, redisB}},
		{name: "redis store, two replicas, second try", user: extraUser(3), ticketStore: true, signInAt: redisA, targets: []*proxyProc{redisA, redisB}},
		{name: "redis store, two replicas, third try", user: extraUser(4), ticketStore: true, signInAt: redisA, targets: []*proxyProc{redisA, redisB}},
		{name: "cookie store with redis, two replicas", user: extraUser(2), signInAt: cookieRA, targets: []*proxyProc{cookieRA, cookieRB}},
		{name: "cookie store with redis, two replicas, one after the other", user: extraUser(5), sequential: true, signInAt: cookieRA, targets: []*proxyProc{cookieRA, cookieRB}},
	}
	// Sign the sessions in, one after the other in one browser, then close it: it must not use
	// (and so refresh) the sessions itself.
	tab := newBrowser(t)
	signIn := func(c *refreshCase, path string) []*http.Cookie {
		clearCookies(t, tab)
		dexSignIn(t, tab, c.signInAt.url, dex, c.user, path)
		c.signedIn = time.Now()
		browserSet := proxyCookies(t, tab, c.signInAt.url)
		size := 0
		for _, bc := range browserSet {
			size += len(bc.Name) + 1 + len(bc.Value)
		}
		t.Logf("%s: signed in as %s; %d session cookie(s), %d bytes as sent", c.name, c.user.email, len(browserSet), size)
		cookies := httpCookies(browserSet)
		// Now, while the token is far from due (a request later could refresh it).
		wantSignedIn(t, c.name+": right after signing in", c.targets[0].url, cookies, c.user)
		return cookies
	}
	for _, c := range cases {
		c.cookies = signIn(c, "/refresh/"+strings.NewReplacer(" ", "-", ",", "").Replace(c.name))
		if c.refused {
			// The same user signs in again: Dex deletes the first session's refresh token.
			signIn(c, "/refresh/again")
		}
	}
	closeBrowser(t, tab)

	// Every session's token is due once it is older than lifetime - margin. The token was issued
	// a little before the browser landed back on the app; wait half a second more.
	due := cases[len(cases)-1].signedIn.Add(dexTokenLifetime - refreshMargin + 500*time.Millisecond)
	time.Sleep(time.Until(due))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refreshes := func() map[string]float64 {
				m := map[string]float64{}
				for _, p := range c.targets {
					for _, result := range []string{"ok", "refused", "unavailable"} {
						m[result] += p.metric(t, "authproxy_refreshes_total", "result", result)
					}
				}
				return m
			}
			before, dexBefore := refreshes(), dex.tokenRequests(t)
			if age := time.Since(c.signedIn); age > dexTokenLifetime-5*time.Second {
				t.Fatalf("the session is %v old: its token may have expired (lifetime %v)", age, dexTokenLifetime)
			}

			if c.sequential {
				wantSignedIn(t, "the first request, to replica A", c.targets[0].url, c.cookies, c.user)
				code, _, body := whoamiAt(t, c.targets[1].url, c.cookies)
				after, dexAfter := refreshes(), dex.tokenRequests(t)
				dexDelta := map[string]float64{}
				for code, v := range dexAfter {
					if d := v - dexBefore[code]; d != 0 {
						dexDelta[code] = d
					}
				}
				t.Logf("one request to A, then one with the same cookies to B: B answered %d; authproxy_refreshes_total over both %v → %v; Dex token endpoint calls by status +%v",
					code, before, after, dexDelta)
				if code != http.StatusOK {
					t.Errorf("replica B, with the cookies from before replica A refreshed them: %d %q; want 200 (the session was refreshed fine)", code, body)
				}
				if after["ok"]-before["ok"] != 1 || after["refused"] != before["refused"] || len(dexDelta) != 1 || dexDelta["200"] != 1 {
					t.Errorf("authproxy_refreshes_total %v → %v, Dex token requests by status +%v; want one refresh, spent once (a second spend of the rotated refresh token ends the session)",
						before, after, dexDelta)
				}
				return
			}

			burstStart := time.Now()
			res := burst(t, n, c.cookies, c.targets...)

			after, dexAfter := refreshes(), dex.tokenRequests(t)
			delta := map[string]float64{}
			for k, v := range after {
				delta[k] = v - before[k]
			}
			dexDelta := map[string]float64{}
			dexCalls := 0.0
			for code, v := range dexAfter {
				if d := v - dexBefore[code]; d != 0 {
					dexDelta[code] = d
					dexCalls += d
				}
			}
			t.Logf("%d concurrent requests over %d replica(s) in %v: statuses %v, %d set a new session cookie; authproxy_refreshes_total +%v; Dex token endpoint calls +%v (by status %v)",
				n, len(c.targets), res.took.Round(time.Millisecond), res.codes, res.setCookies, delta, dexCalls, dexDelta)
			if res.took > 5*time.Second {
				t.Errorf("the burst took %v; a refresh must not hold requests for long", res.took.Round(time.Millisecond))
			}
			if c.refused {
				if res.codes[http.StatusUnauthorized] != n {
					t.Errorf("burst after Dex refused the refresh token: statuses %v (the app served %v); want all %d requests 401: the IdP ended the session",
						res.codes, res.users, n)
				}
				if delta["refused"] != 1 || delta["ok"] != 0 {
					t.Errorf("authproxy_refreshes_total rose by %v; want one refused refresh", delta)
				}
				if dexCalls != 1 || dexDelta["400"] != 1 {
					t.Errorf("Dex answered %v token requests (by status %v); want exactly 1, answered 400", dexCalls, dexDelta)
				}
				wantSignedOut(t, "after the refused refresh", c.targets[0].url, c.cookies)
				return
			}
			if res.codes[http.StatusOK] != n || res.users[c.user.email] != n {
				t.Errorf("burst: statuses %v, users %v; want all %d served (200) for %s", res.codes, res.users, n, c.user.email)
			}
			if delta["ok"] != 1 || delta["refused"] != 0 {
				t.Errorf("authproxy_refreshes_total rose by %v; want exactly 1 ok refresh for %d concurrent requests, none refused", delta, n)
			}
			if dexCalls != 1 || dexDelta["200"] != 1 {
				t.Errorf("Dex answered %v token requests (by status %v); want exactly 1, answered 200", dexCalls, dexDelta)
			}
			// Requests after the burst, with the old cookies and with the refreshed ones: served,
			// and no further refresh.
			wantSignedIn(t, "the cookies from before the refresh, after it", c.targets[0].url, c.cookies, c.user)
			if c.ticketStore {
				if res.setCookies != 0 {
					t.Errorf("%d responses set a new ticket cookie; the ticket store refreshes in place", res.setCookies)
				}
			} else {
				// The cookie store's refreshed session is in the new cookie.
				if len(res.newCookies) == 0 {
					t.Fatalf("no response of the burst set a refreshed session cookie")
				}
				wantSignedIn(t, "the refreshed cookies", c.targets[0].url, res.newCookies, c.user)
			}
			// (A refreshed token is due again 5s after the refresh: only a prompt check tells.)
			if now := refreshes(); now["ok"] != after["ok"] && time.Since(burstStart) < dexTokenLifetime-refreshMargin {
				t.Errorf("requests after the burst refreshed again: authproxy_refreshes_total{result=\"ok\"} %v → %v", after["ok"], now["ok"])
			}
		})
	}
	// Dex logs nothing for a good refresh (nor for the deleted refresh token of the refused
	// session), but an error for a refresh token spent twice or expired.
	for _, line := range strings.Split(dex.log(t), "\n") {
		if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "no signing key found") {
			t.Errorf("Dex logged an error: %s", line)
		}
	}
}
