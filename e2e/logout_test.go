package e2e

// Logout against node oidc-provider (e2e/oidcprovider), which has an end-session endpoint and
// sends back-channel logout tokens: RP-initiated logout through /oauth2/sign_out, back-channel
// logout closing the session's WebSocket and event stream, and logout tokens that must be refused.

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// opSignedIn opens path through s's proxy in tab, signs in at the provider as u, and waits for
// the legacy app's page.
func opSignedIn(t *testing.T, s *opStack, tab context.Context, u opUser, path string) {
	t.Helper()
	run(t, tab, "open "+path+" without a session", chromedp.Navigate(s.proxyURL+path))
	s.op.signIn(t, tab, u)
	run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
	if loc := location(t, tab); loc != s.proxyURL+path {
		t.Fatalf("after signing in as %s: landed on %s, want %s", u.login, loc, s.proxyURL+path)
	}
}

// wantOPUser checks that the cookies are u's session at proxyURL.
func wantOPUser(t *testing.T, step, proxyURL string, cookies []*http.Cookie, u opUser) {
	t.Helper()
	code, w, body := whoamiAt(t, proxyURL, cookies)
	if code != http.StatusOK || w.User != u.login {
		t.Fatalf("%s: GET %s/api/whoami with the session's cookies: %d %q; want 200 from the app for %s", step, proxyURL, code, body, u.login)
	}
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q…", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err == nil {
		err = json.Unmarshal(b, &claims)
	}
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	return claims
}

// TestRPInitiatedLogout signs out through /oauth2/sign_out with oidc-provider: the browser lands
// on the provider's logout confirmation with an id_token_hint for the user; after "Yes" the
// provider's session is over too (the next sign-in shows its login form) and the old cookies are
// no session.
func TestRPInitiatedLogout(t *testing.T) {
	s := startOPStack(t, opOptions{SkipConsent: true})
	tab := newBrowser(t)
	opSignedIn(t, s, tab, opAda, "/rp/logout")
	jar := httpCookies(proxyCookies(t, tab, s.proxyURL))
	wantOPUser(t, "after signing in", s.proxyURL, jar, opAda)

	run(t, tab, "open /oauth2/sign_out", chromedp.Navigate(s.proxyURL+"/oauth2/sign_out"))
	if page := s.op.opPage(t, tab, "after /oauth2/sign_out"); page != "logout" {
		t.Fatalf("after /oauth2/sign_out the tab shows %q; want the provider's logout confirmation\n%s", page, describe(tab))
	}
	loc, err := url.Parse(location(t, tab))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != s.op.endSessionURL() {
		t.Errorf("the logout confirmation is at %s; want the end_session_endpoint %s", got, s.op.endSessionURL())
	}
	hint := q.Get("id_token_hint")
	if hint == "" {
		t.Fatalf("the end-session request %s has no id_token_hint", loc.Redacted())
	}
	claims := jwtClaims(t, hint)
	if claims["sub"] != opAda.login || claims["aud"] != "authproxy-op" || claims["iss"] != s.op.issuer {
		t.Errorf("id_token_hint is for sub %v, aud %v, iss %v; want %s, authproxy-op, %s", claims["sub"], claims["aud"], claims["iss"], opAda.login, s.op.issuer)
	}
	if got := q.Get("post_logout_redirect_uri"); got != s.postLogoutURL() {
		t.Errorf("post_logout_redirect_uri = %q; want %q", got, s.postLogoutURL())
	}
	// authproxy ended its own session before sending the browser on.
	wantSignedOut(t, "after /oauth2/sign_out, before confirming at the provider", s.proxyURL, jar)

	// Yes: the provider ends its session and returns to post_logout_redirect_uri, the proxy's
	// "/", which has no session and sends the browser to sign in: the provider's login form.
	page := s.op.opAct(t, tab, "confirm the logout at the provider",
		chromedp.Click(`button[name="logout"][value="yes"]`, chromedp.ByQuery))
	if page != "login" {
		t.Fatalf("after confirming the logout the tab shows %q; want the provider's login form (its session ended)\n%s", page, describe(tab))
	}
	if log := s.op.log(t); !strings.Contains(log, "event end_session.success") {
		t.Errorf("the provider did not log end_session.success:\n%s", log)
	}
	wantSignedOut(t, "after the logout", s.proxyURL, jar)
	wantSignedOut(t, "after the logout, with the browser's cookies now", s.proxyURL, httpCookies(cookiesAt(t, tab, s.proxyURL)))

	// A browser navigation is sent to sign in, and the provider asks for the password again.
	run(t, tab, "open /api/whoami after the logout", chromedp.Navigate(s.proxyURL+"/after/logout"))
	if page := s.op.opPage(t, tab, "open /after/logout"); page != "login" {
		t.Fatalf("after the logout, a navigation shows %q; want the provider's login form\n%s", page, describe(tab))
	}
	s.op.signIn(t, tab, opAda)
	run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
	jar = httpCookies(proxyCookies(t, tab, s.proxyURL))
	wantOPUser(t, "after signing in again", s.proxyURL, jar, opAda)

	// The ID token authproxy sent as id_token_hint is signed by the provider but is no logout token.
	resp, body := postLogoutToken(t, s.proxyURL, hint)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an ID token posted as a logout token: %s %q; want 400", resp.Status, body)
	}
	wantOPUser(t, "after the ID token was refused as a logout token", s.proxyURL, jar, opAda)
}

// postLogoutToken posts logout_token=raw to the proxy's back-channel logout endpoint.
func postLogoutToken(t *testing.T, proxyURL, raw string) (*http.Response, []byte) {
	t.Helper()
	form := url.Values{"logout_token": {raw}}.Encode()
	return call(t, http.MethodPost, proxyURL+"/oauth2/backchannel_logout", nil,
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, strings.NewReader(form))
}

// logoutRelay stands between the provider and authproxy's back-channel logout endpoint: it
// forwards each logout request and keeps the token and authproxy's answer, so that a test can
// see the answer and replay the token.
type logoutRelay struct {
	srv        *httptest.Server
	mu         sync.Mutex
	target     string
	deliveries []delivery
}

type delivery struct {
	token    string
	status   int
	body     string
	received time.Time // when the provider's request arrived
	answered time.Time // when authproxy answered it
}

func newLogoutRelay(t *testing.T) *logoutRelay {
	t.Helper()
	lr := &logoutRelay{}
	lr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received := time.Now()
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		lr.mu.Lock()
		target := lr.target
		lr.mu.Unlock()
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, target, strings.NewReader(string(body)))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		form, _ := url.ParseQuery(string(body))
		lr.mu.Lock()
		lr.deliveries = append(lr.deliveries, delivery{token: form.Get("logout_token"), status: resp.StatusCode, body: string(answer), received: received, answered: time.Now()})
		lr.mu.Unlock()
		w.WriteHeader(resp.StatusCode)
		w.Write(answer)
	}))
	t.Cleanup(lr.srv.Close)
	return lr
}

func (lr *logoutRelay) setTarget(u string) {
	lr.mu.Lock()
	lr.target = u
	lr.mu.Unlock()
}

func (lr *logoutRelay) received() []delivery {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]delivery(nil), lr.deliveries...)
}

// wsState is what the page's WebSocket saw (see openPageWebSocket).
type wsState struct {
	Opened   bool    `json:"opened"`
	Messages int     `json:"messages"`
	Echoed   bool    `json:"echoed"`
	Closed   bool    `json:"closed"`
	Code     int     `json:"code"`
	ClosedAt float64 `json:"closedAt"` // ms since the epoch
	Last     string  `json:"last"`
}

// openPageWebSocket opens a WebSocket to the legacy app's /ws from the page in tab (on the proxy's
// origin, so the session cookie goes with it), recording what happens in window.__ws.
func openPageWebSocket(t *testing.T, tab context.Context) {
	t.Helper()
	const js = `(() => {
		window.__ws = {opened: false, messages: 0, echoed: false, closed: false, code: 0, closedAt: 0, last: ""};
		const ws = new WebSocket("ws://" + location.host + "/ws");
		ws.onopen = () => { __ws.opened = true; ws.send("hello from the page"); };
		ws.onmessage = (e) => { __ws.messages++; __ws.last = e.data; if (e.data === "hello from the page") __ws.echoed = true; };
		ws.onclose = (e) => { __ws.closed = true; __ws.code = e.code; __ws.closedAt = Date.now(); };
		window.__wsConn = ws;
		return true;
	})()`
	run(t, tab, "open a WebSocket from the page", chromedp.Evaluate(js, nil))
	st := waitWebSocket(t, tab, 10*time.Second, func(s wsState) bool { return s.Closed || (s.Opened && s.Echoed && s.Messages >= 2) })
	if !st.Opened || !st.Echoed || st.Closed {
		t.Fatalf("the page's WebSocket through the proxy: %+v; want it open, echoing, with a tick", st)
	}
}

// readWebSocket returns the page's window.__ws.
func readWebSocket(t *testing.T, tab context.Context) wsState {
	t.Helper()
	var st wsState
	run(t, tab, "read the WebSocket's state", chromedp.Evaluate(`window.__ws`, &st))
	return st
}

// waitWebSocket polls window.__ws until done says so or timeout passes, and returns the last state.
func waitWebSocket(t *testing.T, tab context.Context, timeout time.Duration, done func(wsState) bool) wsState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := readWebSocket(t, tab)
		if done(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// eventStream is a Server-Sent-Events response read in the background.
type eventStream struct {
	mu     sync.Mutex
	events int
	ended  time.Time
	err    error
	done   chan struct{}
	first  chan struct{}
}

// openEventStream requests the legacy app's /events?n=1000 (about four minutes of ticks) through
// the proxy with the cookies, as an EventSource would, and reads it until it ends.
func openEventStream(t *testing.T, proxyURL string, cookies []*http.Cookie) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, proxyURL+"/events?n=1000", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("GET /events through the proxy: %s, Content-Type %q; want 200 text/event-stream", resp.Status, resp.Header.Get("Content-Type"))
	}
	es := &eventStream{done: make(chan struct{}), first: make(chan struct{})}
	go func() {
		defer close(es.done)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				es.mu.Lock()
				es.ended, es.err = time.Now(), err
				es.mu.Unlock()
				return
			}
			if strings.HasPrefix(line, "event: tick") {
				es.mu.Lock()
				es.events++
				if es.events == 1 {
					close(es.first)
				}
				es.mu.Unlock()
			}
		}
	}()
	select {
	case <-es.first:
	case <-es.done:
		t.Fatalf("the event stream ended before its first event: %v", es.err)
	case <-time.After(5 * time.Second):
		t.Fatal("no event on the stream within 5s")
	}
	return es
}

// state returns how many events arrived and, once it ended, when and why.
func (es *eventStream) state() (events int, ended time.Time, err error) {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.events, es.ended, es.err
}

// forgedLogoutToken returns a logout token for sub at the provider, which would end sub's sessions
// were it accepted; it is signed as alg says: "none" (unsigned) or "RS256" with a key of the
// test's own, under kid.
func forgedLogoutToken(t *testing.T, issuer, clientID, sub, alg, kid string) string {
	t.Helper()
	header := map[string]any{"alg": alg, "typ": "logout+jwt"}
	if kid != "" {
		header["kid"] = kid
	}
	now := time.Now().Unix()
	jti := make([]byte, 16)
	rand.Read(jti)
	claims := map[string]any{
		"iss": issuer, "aud": clientID, "sub": sub, "iat": now, "exp": now + 120,
		"jti":    base64.RawURLEncoding.EncodeToString(jti),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	switch alg {
	case "none":
		return signing + "."
	case "RS256":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(signing))
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	t.Fatalf("forgedLogoutToken: alg %q", alg)
	return ""
}

// opSigningKID returns the kid of the provider's signing key, from its JWKS.
func opSigningKID(t *testing.T, issuer string) string {
	t.Helper()
	_, body := call(t, http.MethodGet, issuer+"/.well-known/openid-configuration", nil, nil, nil)
	var disco struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &disco); err != nil || disco.JWKSURI == "" {
		t.Fatalf("provider discovery: %v: %q", err, body)
	}
	_, body = call(t, http.MethodGet, disco.JWKSURI, nil, nil, nil)
	var jwks struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &jwks); err != nil || len(jwks.Keys) == 0 || jwks.Keys[0].KID == "" {
		t.Fatalf("provider JWKS: %v: %q", err, body)
	}
	return jwks.Keys[0].KID
}

// TestBackchannelLogout signs in with oidc-provider, holds a WebSocket (from the page) and an
// event stream open through authproxy, then:
//   - posts logout tokens that must be refused (malformed requests, an unsigned token, tokens
//     signed by another key, all naming the user): each gets 400, and the session, the WebSocket
//     and the stream go on;
//   - logs out at the provider directly (its end-session page, "Yes"), so that the provider posts
//     a real logout token to authproxy's /oauth2/backchannel_logout (through a relay that keeps it):
//     authproxy answers 200, the old cookies are no session, and authproxy closes the WebSocket and
//     the stream within a few seconds;
//   - replays that logout token: 400 (a logout token is used once), and a new session is untouched.
//
// With the Redis store, and with the cookie store (whose revocation list is in memory without Redis).
func TestBackchannelLogout(t *testing.T) {
	for _, store := range []string{"redis", "cookie"} {
		t.Run(store+" store", func(t *testing.T) {
			var env []string
			if store == "redis" {
				rd := startRedis(t, newProcSet(t))
				env = append(env, "AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url())
			}
			relay := newLogoutRelay(t)
			s := startOPStack(t, opOptions{SkipConsent: true, BackchannelLogoutURI: relay.srv.URL + "/backchannel_logout"}, env...)
			relay.setTarget(s.backchannelLogoutURL())
			refused := func() float64 {
				return proxyMetric(t, s.proxyURL, "authproxy_backchannel_logouts_total", "result", "refused")
			}

			tab := newBrowser(t)
			opSignedIn(t, s, tab, opAda, "/bcl/page")
			jar := httpCookies(proxyCookies(t, tab, s.proxyURL))
			wantOPUser(t, "after signing in", s.proxyURL, jar, opAda)
			openPageWebSocket(t, tab)
			stream := openEventStream(t, s.proxyURL, jar)

			// Logout tokens and requests that must be refused, each naming ada's sessions.
			kid := opSigningKID(t, s.op.issuer)
			form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			refusedBefore := refused()
			bad := []struct {
				name   string
				header http.Header
				body   string
			}{
				{"empty body", form, ""},
				{"malformed form", form, "logout_token=%zz&x"},
				{"JSON body", http.Header{"Content-Type": {"application/json"}}, `{"logout_token":"x"}`},
				{"not a JWT", form, "logout_token=not-a-jwt"},
				{"unsigned (alg none)", form, "logout_token=" + forgedLogoutToken(t, s.op.issuer, "authproxy-op", opAda.login, "none", kid)},
				{"signed by another key under the provider's kid", form, "logout_token=" + forgedLogoutToken(t, s.op.issuer, "authproxy-op", opAda.login, "RS256", kid)},
				{"signed by another key under an unknown kid", form, "logout_token=" + forgedLogoutToken(t, s.op.issuer, "authproxy-op", opAda.login, "RS256", "not-the-providers")},
			}
			for _, b := range bad {
				resp, body := call(t, http.MethodPost, s.proxyURL+"/oauth2/backchannel_logout", nil, b.header, strings.NewReader(b.body))
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("back-channel logout, %s: %s %q; want 400", b.name, resp.Status, body)
				}
			}
			if got := refused() - refusedBefore; got != float64(len(bad)) {
				t.Errorf("authproxy_backchannel_logouts_total{result=\"refused\"} rose by %v; want %d", got, len(bad))
			}
			wantOPUser(t, "after the refused logout tokens", s.proxyURL, jar, opAda)
			if st := readWebSocket(t, tab); st.Closed {
				t.Errorf("the WebSocket closed after refused logout tokens: %+v", st)
			}
			if _, ended, err := stream.state(); !ended.IsZero() {
				t.Errorf("the event stream ended after refused logout tokens: %v", err)
			}
			if n := len(relay.received()); n != 0 {
				t.Fatalf("the provider sent %d logout tokens before the logout", n)
			}

			// Log out at the provider, in another tab, leaving the page with the WebSocket open.
			opTab := newTab(t, tab)
			run(t, opTab, "open the provider's end-session endpoint", chromedp.Navigate(s.op.endSessionURL()))
			if page := s.op.opPage(t, opTab, "open the end-session endpoint"); page != "logout" {
				t.Fatalf("the provider's end-session endpoint shows %q; want its logout confirmation\n%s", page, describe(opTab))
			}
			eventsBefore, _, _ := stream.state()
			s.op.opAct(t, opTab, "confirm the logout at the provider", chromedp.Click(`button[name="logout"][value="yes"]`, chromedp.ByQuery))

			got := relay.received()
			if len(got) != 1 {
				t.Fatalf("the provider sent %d logout tokens; want 1\nprovider log:\n%s", len(got), s.op.log(t))
			}
			d := got[0]
			claims := jwtClaims(t, d.token)
			t.Logf("the provider's logout token: sub %v, sid %v; authproxy answered %d %q in %v", claims["sub"], claims["sid"], d.status, d.body, d.answered.Sub(d.received).Round(time.Millisecond))
			if d.status != http.StatusOK {
				t.Fatalf("authproxy answered the provider's logout token with %d %q; want 200", d.status, d.body)
			}
			if log := s.op.log(t); !strings.Contains(log, "event backchannel.success client=authproxy-op sub=ada") {
				t.Errorf("the provider did not log backchannel.success for ada:\n%s", log)
			}

			// The WebSocket and the stream are closed by authproxy, promptly.
			st := waitWebSocket(t, tab, 5*time.Second, func(s wsState) bool { return s.Closed })
			if !st.Closed {
				t.Errorf("the WebSocket is still open 5s after the back-channel logout: %+v", st)
			} else {
				closedAt := time.UnixMilli(int64(st.ClosedAt))
				t.Logf("WebSocket closed %v after the provider's logout request arrived (close code %d, %d messages)", closedAt.Sub(d.received).Round(time.Millisecond), st.Code, st.Messages)
			}
			select {
			case <-stream.done:
				events, ended, err := stream.state()
				t.Logf("event stream ended %v after the provider's logout request arrived (%v; %d events, %d when the logout began)", ended.Sub(d.received).Round(time.Millisecond), err, events, eventsBefore)
			case <-time.After(5 * time.Second):
				t.Errorf("the event stream is still open 5s after the back-channel logout")
			}
			wantSignedOut(t, "after the back-channel logout", s.proxyURL, jar)

			// The old page's next navigation goes to sign in, and the provider asks again.
			run(t, tab, "open a page after the logout", chromedp.Navigate(s.proxyURL+"/after/backchannel"))
			if page := s.op.opPage(t, tab, "open a page after the logout"); page != "login" {
				t.Fatalf("after the back-channel logout a navigation shows %q; want the provider's login form\n%s", page, describe(tab))
			}

			// A replay of the real logout token is refused.
			resp, body := postLogoutToken(t, s.proxyURL, d.token)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("the provider's logout token replayed: %s %q; want 400", resp.Status, body)
			}
			// Also once signed in again: the new session goes on.
			s.op.signIn(t, tab, opAda)
			run(t, tab, "wait for the legacy app's page", chromedp.WaitVisible("#preferred-username", chromedp.ByID))
			jar = httpCookies(proxyCookies(t, tab, s.proxyURL))
			wantOPUser(t, "after signing in again", s.proxyURL, jar, opAda)
			resp, body = postLogoutToken(t, s.proxyURL, d.token)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("the provider's logout token replayed after a new sign-in: %s %q; want 400", resp.Status, body)
			}
			wantOPUser(t, "after the replays", s.proxyURL, jar, opAda)
		})
	}
}
