package e2e

// authproxy's Redis ticket store against a real redis-server: a small cookie, sessions that
// outlive an authproxy restart and a cookie-secret rotation, replicas sharing sessions, and what
// happens while Redis is down.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireRedis returns the redis-server binary, skipping the test when there is none (failing
// instead under CI=true).
func requireRedis(t *testing.T) string {
	t.Helper()
	requireStack(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "no redis-server on PATH (run scripts/install-deps.sh)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; CI=true, so this fails instead of skipping")
		}
		t.Skip(msg + "; under CI=true this fails")
	}
	return bin
}

// redisServer is a redis-server of the test's own on a loopback port, without persistence: what
// it holds is lost when it stops.
type redisServer struct {
	ps   *procSet
	bin  string
	addr string // 127.0.0.1:port
	p    *process
}

// startRedis starts a redis-server on a free loopback port and waits until it answers PING.
func startRedis(t *testing.T, ps *procSet) *redisServer {
	t.Helper()
	bin := requireRedis(t)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	r := &redisServer{ps: ps, bin: bin, addr: ports[0]}
	r.start(t)
	return r
}

// url is the AUTHPROXY_REDIS_URL of the server.
func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

// start starts the server (again) on its port.
func (r *redisServer) start(t *testing.T) {
	t.Helper()
	_, port, _ := strings.Cut(r.addr, ":")
	r.p = r.ps.startProc(t, "redis", nil, r.bin,
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.ps.dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply, err := r.command("PING")
		if err == nil && reply == "PONG" {
			return
		}
		select {
		case <-r.p.done:
			t.Fatalf("redis-server exited during start-up: %v", r.p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s does not answer PING after 10s: %q, %v", r.addr, reply, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server; what it held is gone.
func (r *redisServer) stop(t *testing.T) {
	t.Helper()
	r.ps.stopProc(t, r.p)
}

// command sends one command and returns its reply: a simple or bulk string, an integer in
// decimal, or an array's elements joined by newlines.
func (r *redisServer) command(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	var req strings.Builder
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(req.String())); err != nil {
		return "", err
	}
	return readRESP(bufio.NewReader(conn))
}

func readRESP(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		var items []string
		for range n {
			item, err := readRESP(br)
			if err != nil {
				return "", err
			}
			items = append(items, item)
		}
		return strings.Join(items, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// keys lists the keys matching pattern.
func (r *redisServer) keys(t *testing.T, pattern string) []string {
	t.Helper()
	reply, err := r.command("KEYS", pattern)
	if err != nil {
		t.Fatalf("redis KEYS %s: %v", pattern, err)
	}
	if reply == "" {
		return nil
	}
	return strings.Split(reply, "\n")
}

// whoamiAt asks the legacy app who the cookies belong to, through the proxy at proxyURL, as an
// API client would (no Accept: text/html). It returns the status and, on 200, the app's answer.
func whoamiAt(t *testing.T, proxyURL string, cookies []*http.Cookie) (int, whoami, []byte) {
	t.Helper()
	resp, body := call(t, http.MethodGet, proxyURL+"/api/whoami", cookies, nil, nil)
	var w whoami
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatalf("GET %s/api/whoami: 200 but not the app's JSON: %v: %q", proxyURL, err, body)
		}
	}
	return resp.StatusCode, w, body
}

// wantSignedIn checks that the cookies are u's session at proxyURL.
func wantSignedIn(t *testing.T, step, proxyURL string, cookies []*http.Cookie, u user) whoami {
	t.Helper()
	code, w, body := whoamiAt(t, proxyURL, cookies)
	if code != http.StatusOK || w.Email != u.email {
		t.Fatalf("%s: GET %s/api/whoami with the session's cookies: %d %q; want 200 from the app for %s", step, proxyURL, code, body, u.email)
	}
	return w
}

// wantSignedOut checks that the cookies are no session at proxyURL: 401 for an API request.
func wantSignedOut(t *testing.T, step, proxyURL string, cookies []*http.Cookie) {
	t.Helper()
	code, _, body := whoamiAt(t, proxyURL, cookies)
	if code != http.StatusUnauthorized {
		t.Errorf("%s: GET %s/api/whoami with the old cookies: %d %q; want 401", step, proxyURL, code, body)
	}
}

// TestRedisTicketStore signs in with AUTHPROXY_SESSION_STORE=redis: the browser holds one small
// ticket cookie, the session lives in Redis, and it survives an authproxy restart and a
// cookie-secret rotation ("new,old"), but not a secret replaced outright.
func TestRedisTicketStore(t *testing.T) {
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	proxy := newProxy(t, ps, "authproxy-redis")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{proxy.callbackURL()}})
	oldSecret, newSecretValue := newSecret(), newSecret()
	proxy.start(t, dexProxyEnv(dex, proxy.callbackURL(), oldSecret,
		"AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url())...)

	tab := newBrowser(t)
	dexSignIn(t, tab, proxy.url, dex, alice, "/redis/page?x=1")

	cookies := proxyCookies(t, tab, proxy.url)
	if len(cookies) != 1 || cookies[0].Name != "_authproxy" {
		t.Fatalf("after signing in the browser holds authproxy cookies %v; want one, _authproxy", cookieNames(httpCookies(cookies)))
	}
	size := len(cookies[0].Name) + 1 + len(cookies[0].Value)
	t.Logf("ticket cookie: %d bytes as sent (name=value), value %d bytes", size, len(cookies[0].Value))
	if size >= 200 {
		t.Errorf("ticket cookie is %d bytes (name=value); want under 200", size)
	}
	if keys := rd.keys(t, "authproxy:session:*"); len(keys) != 1 {
		t.Errorf("Redis holds sessions %q; want exactly one authproxy:session:* key", keys)
	}

	jar := httpCookies(cookies)
	before := wantSignedIn(t, "after signing in", proxy.url, jar, alice)
	checkDexSubject(t, before.User, alice)

	// Close the browser first: Chromium keeps a preconnected socket to the proxy, which Go's
	// http.Server.Shutdown waits up to 5 seconds for.
	closeBrowser(t, tab)

	start := time.Now()
	proxy.restart(t)
	t.Logf("authproxy restarted in %v", time.Since(start).Round(time.Millisecond))
	if w := wantSignedIn(t, "after an authproxy restart", proxy.url, jar, alice); w.User != before.User {
		t.Errorf("after an authproxy restart the app sees user %q; before it saw %q", w.User, before.User)
	}

	proxy.restart(t, "AUTHPROXY_COOKIE_SECRET="+newSecretValue+","+oldSecret)
	wantSignedIn(t, "after rotating the cookie secret to \"new,old\"", proxy.url, jar, alice)

	// The control: once the old secret is dropped, the ticket it sealed opens nothing.
	proxy.restart(t, "AUTHPROXY_COOKIE_SECRET="+newSecretValue)
	wantSignedOut(t, "after replacing the cookie secret outright", proxy.url, jar)
}

// TestRedisTwoReplicas runs two authproxy replicas sharing one Redis and cookie secret: a
// session signed in through A is served by B, and signing out through B ends it at A too.
func TestRedisTwoReplicas(t *testing.T) {
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	a, b := newProxy(t, ps, "authproxy-a"), newProxy(t, ps, "authproxy-b")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{a.callbackURL()}})
	env := dexProxyEnv(dex, a.callbackURL(), newSecret(), "AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url())
	a.start(t, env...)
	b.start(t, env...)

	tab := newBrowser(t)
	dexSignIn(t, tab, a.url, dex, alice, "/replica/a")
	jar := httpCookies(proxyCookies(t, tab, a.url))

	wa := wantSignedIn(t, "replica A", a.url, jar, alice)
	wb := wantSignedIn(t, "replica B", b.url, jar, alice)
	if wb.User != wa.User {
		t.Errorf("replica B forwards user %q, replica A %q", wb.User, wa.User)
	}
	// The app's X-Forwarded-Host says which replica forwarded the request.
	if wb.ForwardedHost != b.addr || wa.ForwardedHost != a.addr {
		t.Errorf("X-Forwarded-Host: %q through A, %q through B; want %q and %q", wa.ForwardedHost, wb.ForwardedHost, a.addr, b.addr)
	}

	// An event stream open through each replica.
	streams := map[string]*eventStream{"A": openEventStream(t, a.url, jar), "B": openEventStream(t, b.url, jar)}

	resp, body := call(t, http.MethodGet, b.url+"/oauth2/sign_out", jar, nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET B/oauth2/sign_out: %s %q; want 302", resp.Status, body)
	}
	signedOut := time.Now()
	t.Logf("sign-out through B: 302 to %q", resp.Header.Get("Location"))
	wantSignedOut(t, "replica B after signing out through B", b.url, jar)
	// A hears of it through Redis pub/sub (its cache), within a second.
	wantRefusedWithin(t, "replica A after signing out through B", a, jar, signedOut, time.Second)

	// Both streams end: the session is over on every replica, not only on the one that signed out.
	for _, name := range []string{"B", "A"} {
		t.Run("stream through "+name+" ends at sign-out through B", func(t *testing.T) {
			select {
			case <-streams[name].done:
				_, ended, err := streams[name].state()
				t.Logf("the stream through %s ended %v after the sign-out (%v)", name, ended.Sub(signedOut).Round(time.Millisecond), err)
			case <-time.After(time.Until(signedOut.Add(5 * time.Second))):
				events, _, _ := streams[name].state()
				t.Errorf("the event stream through replica %s is still open 5s after signing out through B (%d events so far)", name, events)
			}
		})
	}
	if keys := rd.keys(t, "authproxy:session:*"); len(keys) != 0 {
		t.Errorf("after sign-out Redis still holds sessions %q", keys)
	}
	// A browser navigation to A is sent to sign in again.
	resp, _ = call(t, http.MethodGet, a.url+"/replica/a", jar, http.Header{"Accept": {"text/html"}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, dex.issuer+"/auth?") {
		t.Errorf("navigation to A after sign-out: %s, Location %q; want 302 to Dex", resp.Status, loc)
	}
}

// waitReadyz polls the proxy's /readyz until it answers 200, for up to 15 seconds.
func waitReadyz(t *testing.T, proxyURL, step string) {
	t.Helper()
	start := time.Now()
	for {
		resp, body := call(t, http.MethodGet, proxyURL+"/readyz", nil, nil, nil)
		if resp.StatusCode == http.StatusOK {
			t.Logf("%s: /readyz 200 again after %v", step, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%s: /readyz still %s %q after 15s", step, resp.Status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRedisDown makes Redis hang (SIGSTOP), then stops it, while a user is signed in: requests
// get 503 promptly (no redirect to sign in, which would loop; no hang), /readyz says 503; once
// Redis resumes the session works again; once Redis is back after a stop (empty: it kept
// nothing) /readyz is 200 again and the old session is gone.
func TestRedisDown(t *testing.T) {
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	proxy := newProxy(t, ps, "authproxy-redis")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{proxy.callbackURL()}})
	proxy.start(t, dexProxyEnv(dex, proxy.callbackURL(), newSecret(),
		"AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url())...)

	tab := newBrowser(t)
	dexSignIn(t, tab, proxy.url, dex, alice, "/before/redis/stops")
	jar := httpCookies(proxyCookies(t, tab, proxy.url))
	wantSignedIn(t, "before Redis stops", proxy.url, jar, alice)

	// First Redis hangs (SIGSTOP): requests must not hang with it.
	if err := rd.p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	hung := rd.p
	t.Cleanup(func() { hung.cmd.Process.Signal(syscall.SIGCONT) }) // should the test end early
	// The session cache may answer until the proxy notices that its subscription no longer
	// answers PING (under a second; nothing can be revoked meanwhile): then 503.
	waitCacheOff(t, "Redis hung", proxy.url, jar)
	start := time.Now()
	resp, body := call(t, http.MethodGet, proxy.url+"/readyz", nil, nil, nil)
	if took := time.Since(start); resp.StatusCode != http.StatusServiceUnavailable || took > 5*time.Second {
		t.Errorf("Redis hung: /readyz %s %q in %v; want 503 within a few seconds", resp.Status, body, took)
	}
	if err := rd.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitReadyz(t, proxy.url, "after Redis resumed")
	wantSignedIn(t, "after Redis resumed", proxy.url, jar, alice)

	// Then Redis stops, and loses everything. Until the proxy has read its subscription's end
	// (milliseconds) the cache may still answer, as above.
	rd.stop(t)
	waitCacheOff(t, "Redis down", proxy.url, jar)

	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"API request", nil},
		{"browser navigation", http.Header{"Accept": {"text/html,application/xhtml+xml,*/*;q=0.8"}}},
	} {
		start := time.Now()
		resp, body := call(t, http.MethodGet, proxy.url+"/api/whoami", jar, tc.header, nil)
		took := time.Since(start)
		t.Logf("Redis down, %s: %s in %v", tc.name, resp.Status, took.Round(time.Millisecond))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" {
			t.Errorf("Redis down, %s: %s, Location %q, body %.200q; want 503 and no redirect", tc.name, resp.Status, resp.Header.Get("Location"), body)
		}
		if took > 5*time.Second {
			t.Errorf("Redis down, %s: took %v; want an answer within a few seconds", tc.name, took)
		}
	}
	// The browser stays on the proxy's error page: no redirect loop.
	var status int
	run(t, tab, "open /api/whoami while Redis is down",
		chromedp.Navigate(proxy.url+"/after/redis/stopped"),
		chromedp.Evaluate(`performance.getEntriesByType("navigation")[0].responseStatus`, &status),
	)
	if loc := location(t, tab); loc != proxy.url+"/after/redis/stopped" || status != http.StatusServiceUnavailable {
		t.Errorf("browser navigation while Redis is down: at %s with status %d; want to stay there with 503\n%s", loc, status, describe(tab))
	}
	start = time.Now()
	resp, body = call(t, http.MethodGet, proxy.url+"/readyz", nil, nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.TrimSpace(string(body)) != `{"status":"unavailable","not_ready":["session_store"]}` {
		t.Errorf("/readyz while Redis is down: %s %q (in %v); want 503 naming only the session store", resp.Status, body, time.Since(start).Round(time.Millisecond))
	}

	rd.start(t)
	waitReadyz(t, proxy.url, "after Redis restarted")
	wantSignedOut(t, "after Redis restarted empty", proxy.url, jar)

	// Signing in again works.
	dexSignIn(t, tab, proxy.url, dex, alice, "/after/redis/restart")
	wantSignedIn(t, "after signing in again", proxy.url, httpCookies(proxyCookies(t, tab, proxy.url)), alice)
}

// waitCacheOff asks for a cached session's page until the proxy answers 503: once its Redis is
// hung or down, the session cache may still answer from memory until the proxy notices its
// subscription is lost (under a second; nothing can be revoked meanwhile), never longer, and no
// request may hang.
func waitCacheOff(t *testing.T, what, proxyURL string, jar []*http.Cookie) {
	t.Helper()
	since := time.Now()
	for {
		start := time.Now()
		resp, body := call(t, http.MethodGet, proxyURL+"/api/whoami", jar, nil, nil)
		took := time.Since(start)
		if took > 5*time.Second {
			t.Fatalf("%s: API request %s in %v; want an answer within a few seconds", what, resp.Status, took)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			t.Logf("%s: API request %s in %v, %v after", what, resp.Status, took.Round(time.Millisecond), time.Since(since).Round(time.Millisecond))
			return
		}
		if resp.StatusCode != http.StatusOK || time.Since(since) > 2*time.Second {
			t.Fatalf("%s for %v: API request %s %.200q; want 503 (200 from the cache only for the first second)", what, time.Since(since).Round(time.Millisecond), resp.Status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
