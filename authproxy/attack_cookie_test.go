package authproxy

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
)

// The cookie corpus: forged, truncated, tampered, replayed, cross-key,
// reordered, oversized and misnamed session and sign-in state cookies. None
// may give a session, and none may make authproxy answer 500.

// newProductionEnv is newTestEnv with the Server built the way the binary
// builds it (NewFromConfig: the cookie store wrapped with an in-memory
// revocation list, discovery in the background), so that sign-out revokes
// copies of the session cookie. Its store and provider fields are nil:
// sessions come from signing in.
func newProductionEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	return buildProductionEnv(t, nil, opts...)
}

// buildProductionEnv is newProductionEnv logging to logs (nil: testEnv.logs).
func buildProductionEnv(t *testing.T, logs io.Writer, opts ...envOption) *testEnv {
	t.Helper()
	setup := envSetup{vars: map[string]string{}}
	for _, o := range opts {
		o(&setup)
	}
	e := &testEnv{logs: &lockedBuffer{}}
	e.idp = newFakeIdP(t, testClientID, testClientSecret)
	for _, fn := range setup.idp {
		e.idp.set(fn)
	}
	e.up = newEchoUpstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"AUTHPROXY_UPSTREAM":      e.up.srv.URL,
		"AUTHPROXY_OIDC_ISSUER":   e.idp.URL(),
		"AUTHPROXY_CLIENT_ID":     testClientID,
		"AUTHPROXY_CLIENT_SECRET": testClientSecret,
		"AUTHPROXY_REDIRECT_URL":  "http://" + ln.Addr().String() + callbackPath,
		"AUTHPROXY_COOKIE_SECRET": testCookieSecret,
		"AUTHPROXY_COOKIE_SECURE": "false",

		"AUTHPROXY_SIGNIN_RATE_LIMIT":             testRateLimit,
		"AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT": testRateLimit,
	}
	maps.Copy(vars, setup.vars)
	e.cfg, err = LoadConfig(mapLookup(vars))
	if err != nil {
		ln.Close()
		t.Fatalf("LoadConfig: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if logs == nil {
		logs = e.logs
	}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv, err = NewFromConfig(ctx, e.cfg, log, "test", nil)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Close() })
	e.proxy = httptest.NewUnstartedServer(e.srv)
	e.proxy.Listener.Close()
	e.proxy.Listener = ln
	e.proxy.Start()
	t.Cleanup(e.proxy.Close)
	for i := 0; ; i++ { // discovery runs in the background
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, readyPath, nil))
		if rec.Code == http.StatusOK {
			break
		}
		if i == 500 {
			t.Fatalf("not ready after discovery: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return e
}

// sealer seals values as a server with secret would, for forging cookies.
func sealer(t *testing.T, secret string, maxAge time.Duration) func(name string, v any) string {
	t.Helper()
	c, err := session.NewCodec([][]byte{[]byte(secret)}, maxAge)
	if err != nil {
		t.Fatal(err)
	}
	return func(name string, v any) string {
		s, err := c.Seal(name, v)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// cookieValues parses a Cookie header value into name, value pairs in order.
func cookieValues(header string) [][2]string {
	var out [][2]string
	for part := range strings.SplitSeq(header, "; ") {
		n, v, _ := strings.Cut(part, "=")
		out = append(out, [2]string{n, v})
	}
	return out
}

func joinCookies(pairs [][2]string) string {
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p[0] + "=" + p[1]
	}
	return strings.Join(parts, "; ")
}

// checkNoSession sends cookie (written raw, so any byte goes) with
// requests to every kind of endpoint and fails unless each is treated as
// signed out, never with a 5xx, and never reaches the upstream.
func checkNoSession(t *testing.T, e *testEnv, cookie string) int {
	t.Helper()
	before := len(e.up.requests())
	n := 0
	for _, rq := range []struct {
		method, path, accept string
		want                 int
	}{
		{http.MethodGet, "/app", acceptHTML, http.StatusFound},
		{http.MethodGet, "/app", "application/json", http.StatusUnauthorized},
		{http.MethodPost, "/app", acceptHTML, http.StatusUnauthorized},
		{http.MethodGet, userinfoPath, "application/json", http.StatusUnauthorized},
		{http.MethodGet, authPath, "*/*", http.StatusUnauthorized},
	} {
		n++
		r := rawHTTP(t, e.addr(), rq.method+" "+rq.path+" HTTP/1.1\r\nHost: "+e.addr()+"\r\nAccept: "+rq.accept+"\r\nCookie: "+cookie+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		// Go's server itself refuses a header with a NUL or CR in it.
		refusedByGo := r.Status == http.StatusBadRequest && strings.HasPrefix(r.Body, "400 Bad Request")
		if r.Status != rq.want && !refusedByGo {
			t.Errorf("%s %s (Accept %q): got %d, want %d; body: %.200s", rq.method, rq.path, rq.accept, r.Status, rq.want, r.Body)
		}
		if rq.want == http.StatusFound && r.Status == http.StatusFound {
			e.toIdP(t, r)
		}
		if e.setsSession(r.Cookies) {
			t.Errorf("%s %s set a session cookie", rq.method, rq.path)
		}
	}
	if seen := e.up.requests()[before:]; len(seen) != 0 {
		t.Errorf("the upstream saw %d requests, the first as user %q", len(seen), seen[0].Header.Get("X-Forwarded-User"))
	}
	return n
}

func TestAttackSessionCookies(t *testing.T) {
	manyGroups := randomGroups(300)
	e := newProductionEnv(t)
	name := e.cfg.CookieName

	// A real session, one cookie.
	c := e.browser()
	fromUpstream(t, e.signIn(t, c, "/"))
	valid := e.sessionCookie(c)
	value := strings.TrimPrefix(valid, name+"=")
	if strings.Contains(valid, ";") || value == valid {
		t.Fatalf("want a single session cookie, got %.80s", valid)
	}

	// A real session split over chunks.
	e.idp.set(func(f *fakeIdP) { f.claims["groups"] = manyGroups })
	cc := e.browser()
	fromUpstream(t, e.signIn(t, cc, "/"))
	chunked := cookieValues(e.sessionCookie(cc))
	if len(chunked) < 3 {
		t.Fatalf("want a session over at least 3 cookies, got %d", len(chunked))
	}
	e.idp.set(func(f *fakeIdP) { f.claims = defaultClaims() })
	chunkedValue := ""
	for _, p := range chunked {
		chunkedValue += p[1]
	}

	// Controls: the real cookies, as checkNoSession sends them, are sessions.
	for _, ck := range []string{valid, joinCookies(chunked)} {
		r := rawHTTP(t, e.addr(), "GET "+userinfoPath+" HTTP/1.1\r\nHost: "+e.addr()+"\r\nCookie: "+ck+"\r\nConnection: close\r\n\r\n")
		if r.Status != http.StatusOK {
			t.Fatalf("control: a real session cookie gets %d from %s, want 200", r.Status, userinfoPath)
		}
	}

	// A session copied before its browser signed out.
	sc := e.browser()
	fromUpstream(t, e.signIn(t, sc, "/"))
	copied := e.sessionCookie(sc)
	if r := e.navigate(t, noFollow(sc), signOutPath); r.Status != http.StatusFound {
		t.Fatalf("sign-out: %d", r.Status)
	}
	// And one copied before a back-channel logout of its user.
	bc := e.browser()
	fromUpstream(t, e.signIn(t, bc, "/"))
	copiedBC := e.sessionCookie(bc)

	same := sealer(t, "0123456789abcdef0123456789abcdef", time.Hour)
	other := sealer(t, "another-32-byte-cookie-secret!!!", time.Hour)
	now := time.Now()
	forgedSession := &session.Session{ID: "forged", User: "mallory", Subject: "mallory", Email: "mallory@example.com", Groups: []string{"admins"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	state := signInState{State: strings.Repeat("S", 43), Nonce: "n", Verifier: "v", Redirect: "/"}

	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x01
		return string(b)
	}
	swap := func(pairs [][2]string, i, j int) [][2]string {
		out := append([][2]string(nil), pairs...)
		out[i][1], out[j][1] = out[j][1], out[i][1]
		return out
	}
	many := func(n int, v string) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf("%s_%d=%s", name, i, v))
		}
		return strings.Join(parts, "; ")
	}
	type tc struct{ name, cookie string }
	cases := []tc{
		{"forged base64", name + "=" + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("forged session ", 20)))},
		{"forged securecookie shape", name + "=" + base64.URLEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%s|%s", now.Unix(), base64.URLEncoding.EncodeToString([]byte(`{"user":"mallory"}`)), strings.Repeat("A", 43))))},
		{"sealed with another COOKIE_SECRET", name + "=" + other(name, forgedSession)},
		{"sealed under a state cookie's name", name + "=" + same(name+"_csrf_AAAAAAAAAAAA", forgedSession)},
		{"sealed under a chunk's name", name + "=" + same(name+"_0", forgedSession)},
		{"sealed under another cookie name", name + "=" + same("_oauth2_proxy", forgedSession)},
		{"expired session, right key", name + "=" + same(name, &session.Session{ID: "x", User: "u", CreatedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})},
		{"a sign-in state as the session", name + "=" + same(name, state)},
		{"empty JSON object, right key", name + "=" + same(name, map[string]any{})},
		{"JSON null, right key", name + "=" + same(name, nil)},
		{"replayed after sign-out", copied},
		{"empty", name + "="},
		{"garbage", name + "=!!!not*base64!!!"},
		{"NUL and controls", name + "=a\x01b\x00c\x7f"},
		{"valid value with a NUL inside", name + "=" + value[:10] + "\x00" + value[10:]},
		{"quoted garbage", name + `="abc"`},
		{"huge", name + "=" + strings.Repeat("A", 60<<10)},
		{"garbage before the real cookie", name + "=garbage; " + valid},
		{"empty chunk list", name + "_0="},
		{"chunks reordered", joinCookies(swap(chunked, 0, 1))},
		{"chunks reordered, last two", joinCookies(swap(chunked, len(chunked)-2, len(chunked)-1))},
		{"first chunk missing", joinCookies(chunked[1:])},
		{"last chunk missing", joinCookies(chunked[:len(chunked)-1])},
		{"a chunk doubled", joinCookies(append([][2]string{chunked[0], {chunked[1][0], chunked[0][1]}}, chunked[2:]...))},
		{"chunks renumbered from 1", func() string {
			var out [][2]string
			for i, p := range chunked {
				out = append(out, [2]string{fmt.Sprintf("%s_%d", name, i+1), p[1]})
			}
			return joinCookies(out)
		}()},
		{"chunks with leading zeros", func() string {
			var out [][2]string
			for i, p := range chunked {
				out = append(out, [2]string{fmt.Sprintf("%s_0%d", name, i), p[1]})
			}
			return joinCookies(out)
		}()},
		{"chunked value as the bare cookie, cut short", name + "=" + chunkedValue[:len(chunkedValue)-1]},
		{"valid chunks and a forged bare cookie", name + "=forged; " + joinCookies(chunked)},
		{"chunks of garbage", name + "_0=abc; " + name + "_1=def"},
		{"6 chunks (over MaxChunks)", many(6, "QUFB")},
		{"16 chunks", many(16, strings.Repeat("QUFB", 200))},
		{"100 chunks", many(100, "QUFB")},
		{"200 tiny chunks", many(200, "A")},
		{"chunk index 999999", name + "_999999=" + value},
		{"chunk index past int32", name + "_4294967296=" + value},
		{"chunk index negative", name + "_-1=" + value},
		{"valid value in a huge chunk count", many(5, value)},
	}
	for i := 0; i < len(value); i += max(1, len(value)/7) {
		cases = append(cases, tc{fmt.Sprintf("truncated to %d bytes", i), name + "=" + value[:i]})
		cases = append(cases, tc{fmt.Sprintf("bit flipped at %d", i), name + "=" + flip(value, i)})
	}
	cases = append(cases, tc{"last byte dropped", name + "=" + value[:len(value)-1]})
	cases = append(cases, tc{"one byte appended", name + "=" + value + "A"})

	// Back-channel logout revokes bc's session; its copy must stop working too.
	lt := logoutToken(e)
	req, err := http.NewRequest(http.MethodPost, e.url(backchannelLogoutPath), strings.NewReader("logout_token="+url.QueryEscape(e.idp.sign(lt))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r := doRequest(t, noFollow(e.browser()), req); r.Status != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", r.Status, r.Body)
	}
	cases = append(cases, tc{"replayed after back-channel logout", copiedBC})

	requests := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requests += checkNoSession(t, e, tc.cookie)
		})
	}
	t.Logf("%d session cookie cases, %d requests: none gave a session or a 5xx", len(cases), requests)
}

func TestAttackStateCookies(t *testing.T) {
	e := newProductionEnv(t)
	name := e.cfg.CookieName
	same := sealer(t, "0123456789abcdef0123456789abcdef", stateTTL)
	other := sealer(t, "another-32-byte-cookie-secret!!!", stateTTL)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// begin starts a sign-in and returns its callback URL (code minted by
	// the fake IdP) and its state cookie.
	begin := func(t *testing.T) (*url.URL, *http.Cookie) {
		t.Helper()
		r := e.navigate(t, client, startPath+"?rd=/")
		cb := e.idp.authorize(t, e.toIdP(t, r))
		for _, ck := range r.Cookies {
			if strings.HasPrefix(ck.Name, name+"_csrf_") {
				return cb, ck
			}
		}
		t.Fatal("no state cookie")
		return nil, nil
	}
	// A real session cookie to misuse as a state cookie.
	bc := e.browser()
	fromUpstream(t, e.signIn(t, bc, "/"))
	sessionValue := strings.TrimPrefix(e.sessionCookie(bc), name+"=")

	type attempt struct {
		name  string
		build func(t *testing.T) (cb *url.URL, cookie string)
	}
	attempts := []attempt{
		{"state cookie of another sign-in under this one's name", func(t *testing.T) (*url.URL, string) {
			cbA, ckA := begin(t)
			_, ckB := begin(t)
			return cbA, ckA.Name + "=" + ckB.Value
		}},
		{"state cookie of another sign-in, its own name", func(t *testing.T) (*url.URL, string) {
			cbA, _ := begin(t)
			_, ckB := begin(t)
			return cbA, ckB.Name + "=" + ckB.Value
		}},
		{"session cookie as the state cookie", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			return cb, ck.Name + "=" + sessionValue
		}},
		{"state cookie sealed under the session cookie's name", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			st := signInState{State: cb.Query().Get("state"), Nonce: "n", Verifier: "v", Redirect: "/"}
			return cb, ck.Name + "=" + same(name, st)
		}},
		{"state cookie sealed with another COOKIE_SECRET", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			st := signInState{State: cb.Query().Get("state"), Nonce: "n", Verifier: "v", Redirect: "/"}
			return cb, ck.Name + "=" + other(ck.Name, st)
		}},
		{"state cookie forged with the right key, wrong verifier", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			st := signInState{State: cb.Query().Get("state"), Nonce: "n", Verifier: "not-the-verifier", Redirect: "//evil.example"}
			return cb, ck.Name + "=" + same(ck.Name, st)
		}},
		{"state cookie truncated", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			return cb, ck.Name + "=" + ck.Value[:len(ck.Value)/2]
		}},
		{"state cookie bit flipped", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			b := []byte(ck.Value)
			b[len(b)/3] ^= 1
			return cb, ck.Name + "=" + string(b)
		}},
		{"state cookie empty", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			return cb, ck.Name + "="
		}},
		{"state parameter with the cookie's prefix, other tail", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			q := cb.Query()
			q.Set("state", q.Get("state")[:12]+"tampered-tail-tampered-tail")
			cb.RawQuery = q.Encode()
			return cb, ck.Name + "=" + ck.Value
		}},
		{"state parameter of 11 bytes", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			q := cb.Query()
			q.Set("state", q.Get("state")[:11])
			cb.RawQuery = q.Encode()
			return cb, ck.Name + "=" + ck.Value
		}},
		{"state parameter of 129 bytes", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			q := cb.Query()
			q.Set("state", q.Get("state")+strings.Repeat("A", 129-len(q.Get("state"))))
			cb.RawQuery = q.Encode()
			return cb, ck.Name + "=" + ck.Value
		}},
		{"state parameter with a NUL and non-UTF-8", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			q := cb.Query()
			q.Set("state", "\x00\xff"+q.Get("state"))
			cb.RawQuery = q.Encode()
			return cb, ck.Name + "=" + ck.Value
		}},
		{"state parameter repeated, the first forged", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			cb.RawQuery = "state=forged-state-forged-state&" + cb.RawQuery
			return cb, ck.Name + "=" + ck.Value
		}},
		{"200 state cookies, none matching", func(t *testing.T) (*url.URL, string) {
			cb, _ := begin(t)
			var parts []string
			for i := range 200 {
				parts = append(parts, fmt.Sprintf("%s_csrf_%012d=x", name, i))
			}
			return cb, strings.Join(parts, "; ")
		}},
		{"state cookie replayed after its callback", func(t *testing.T) (*url.URL, string) {
			cb, ck := begin(t)
			req, _ := http.NewRequest(http.MethodGet, cb.String(), nil)
			req.AddCookie(ck)
			req.Header.Set("Accept", acceptHTML)
			if r := doRequest(t, client, req); r.Status != http.StatusFound {
				t.Fatalf("first callback: %d", r.Status)
			}
			return cb, ck.Name + "=" + ck.Value
		}},
		{"state cookie replayed with a fresh code for another sign-in", func(t *testing.T) (*url.URL, string) {
			cbA, ckA := begin(t)
			cbB, _ := begin(t)
			q := cbA.Query()
			q.Set("code", cbB.Query().Get("code"))
			cbA.RawQuery = q.Encode()
			return cbA, ckA.Name + "=" + ckA.Value
		}},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			cb, cookie := a.build(t)
			r := e.request(t, client, http.MethodGet, cb.RequestURI(), "Accept", acceptHTML, "Cookie", cookie)
			if r.Status != http.StatusBadRequest {
				t.Errorf("callback: got %d, want 400; body %.200s", r.Status, r.Body)
			}
			if e.setsSession(r.Cookies) {
				t.Errorf("callback set a session cookie")
			}
			checkNoSession(t, e, cookie)
		})
	}
	t.Logf("%d state cookie cases: every callback refused with 400, none gave a session", len(attempts))
}
