package e2e

// `authproxy sessions list` and `authproxy sessions revoke`, the real binary run as an operator
// would run it, against two real replicas sharing one real Redis: a user's sessions signed in
// through Chromium on each replica end everywhere, with their WebSockets, and other users' do not.

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sessionsCommand runs `authproxy sessions args…` with env (a replica's environment) and returns
// its stdout, stderr and exit code.
func sessionsCommand(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(stack.dir, "authproxy"), append([]string{"sessions"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AUTHPROXY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("authproxy sessions %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestSessionsRevokeCommand signs alice in through Chromium on each of two replicas, each page with
// a WebSocket open, and bob (without a browser) with an event stream; `authproxy sessions revoke
// --email` ends both of alice's sessions and closes both sockets within 5 s, bob's session and
// stream go on, and alice can sign in again. Then `revoke --all` ends bob's too. For the Redis
// store, and for the cookie store with the Redis revocation list.
func TestSessionsRevokeCommand(t *testing.T) {
	for _, store := range []string{"redis", "cookie"} {
		t.Run(store+" store", func(t *testing.T) { testSessionsRevokeCommand(t, store) })
	}
}

func testSessionsRevokeCommand(t *testing.T, store string) {
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	a, b := newProxy(t, ps, "authproxy-a"), newProxy(t, ps, "authproxy-b")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{a.callbackURL(), b.callbackURL()}})
	secret := newSecret()
	storeEnv := []string{"AUTHPROXY_SESSION_STORE=" + store, "AUTHPROXY_REDIS_URL=" + rd.url()}
	a.start(t, dexProxyEnv(dex, a.callbackURL(), secret, storeEnv...)...)
	b.start(t, dexProxyEnv(dex, b.callbackURL(), secret, storeEnv...)...)

	// alice, in a browser of her own on each replica (cookies do not tell ports apart).
	tabA, tabB := newBrowser(t), newBrowser(t)
	dexSignIn(t, tabA, a.url, dex, alice, "/revoke/a")
	dexSignIn(t, tabB, b.url, dex, alice, "/revoke/b")
	jarA, jarB := httpCookies(proxyCookies(t, tabA, a.url)), httpCookies(proxyCookies(t, tabB, b.url))
	aliceSub := wantSignedIn(t, "alice through A", a.url, jarA, alice).User
	wantSignedIn(t, "alice through B", b.url, jarB, alice)
	openPageWebSocket(t, tabA)
	openPageWebSocket(t, tabB)

	// bob, signed in through B without a browser, with an event stream open through A.
	bobClient, callback := signInClient(t, b.url, bob, "/revoke/bob")
	if resp, body := visitCallback(t, bobClient, callback); resp.StatusCode != http.StatusFound {
		t.Fatalf("bob's callback: %s %.200q; want 302", resp.Status, body)
	}
	bu, _ := url.Parse(b.url)
	bobJar := bobClient.Jar.Cookies(bu)
	wantSignedIn(t, "bob through B", b.url, bobJar, bob)
	wantSignedIn(t, "bob through A", a.url, bobJar, bob)
	bobStream := openEventStream(t, a.url, bobJar)

	// The operator lists alice's sessions: two, and nothing that could serve as a cookie.
	out, errOut, code := sessionsCommand(t, a.env, "list", "--email", "Alice@Example.com")
	if store == "redis" {
		t.Logf("authproxy sessions list --email Alice@Example.com:\n%s", out)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 4 || lines[0] != "2 live sessions of email alice@example.com" ||
			!strings.HasPrefix(lines[1], "SESSION ") || !strings.Contains(lines[2], dex.issuer) {
			t.Errorf("list --email: exit %d, stdout %q, stderr %q; want 2 sessions in a table naming Dex", code, out, errOut)
		}
		for _, c := range append(append([]*http.Cookie{}, jarA...), jarB...) {
			if strings.Contains(out, c.Value) || strings.Contains(out, c.Value[:16]) {
				t.Errorf("list shows (part of) a session cookie")
			}
		}
		if out, errOut, code := sessionsCommand(t, b.env, "list", "--sub", aliceSub); code != 0 || !strings.HasPrefix(out, "2 live sessions of sub "+aliceSub+"\n") {
			t.Errorf("list --sub: exit %d, stdout %q, stderr %q; want alice's 2 sessions", code, out, errOut)
		}
	} else if code != 1 || !strings.Contains(errOut, "sessions cannot be listed with AUTHPROXY_SESSION_STORE=cookie") {
		t.Errorf("list with the cookie store: exit %d, stdout %q, stderr %q; want 1 and why", code, out, errOut)
	}

	// Revoke alice's sessions through replica A's configuration.
	start := time.Now()
	out, errOut, code = sessionsCommand(t, a.env, "revoke", "--email", "alice@example.com")
	exited := time.Now()
	t.Logf("authproxy sessions revoke --email alice@example.com: exit %d in %v\nstdout: %s\nstderr: %s", code, exited.Sub(start).Round(time.Millisecond), out, errOut)
	wantOut := "revoked 2 sessions of email alice@example.com\n"
	if store == "cookie" {
		wantOut = "revoked every session of email alice@example.com signed in until "
	}
	if code != 0 || !strings.HasPrefix(out, wantOut) || !strings.Contains(out, "2 running authproxy processes heard of it") {
		t.Fatalf("revoke --email: exit %d, stdout %q; want 0, %q and both replicas hearing of it", code, out, wantOut)
	}
	audit := "event=revoke by=email email=alice@example.com"
	if store == "redis" {
		audit += " count=2"
	}
	if !strings.Contains(errOut, audit) {
		t.Errorf("the command's audit line: stderr %q; want %q", errOut, audit)
	}

	// Both sessions end and both sockets close, within 5 s.
	ended := map[string]time.Time{}
	checks := map[string]func() bool{
		"session through A": func() bool { c, _, _ := whoamiAt(t, a.url, jarA); return c == http.StatusUnauthorized },
		"session through B": func() bool { c, _, _ := whoamiAt(t, b.url, jarB); return c == http.StatusUnauthorized },
		"WebSocket through A": func() bool {
			st := readWebSocket(t, tabA)
			if st.Closed {
				ended["WebSocket through A"] = time.UnixMilli(int64(st.ClosedAt))
			}
			return st.Closed
		},
		"WebSocket through B": func() bool {
			st := readWebSocket(t, tabB)
			if st.Closed {
				ended["WebSocket through B"] = time.UnixMilli(int64(st.ClosedAt))
			}
			return st.Closed
		},
	}
	for len(ended) < len(checks) && time.Since(start) < 5*time.Second {
		for name, done := range checks {
			if _, ok := ended[name]; !ok && done() {
				if _, ok := ended[name]; !ok {
					ended[name] = time.Now()
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var last time.Duration
	for name := range checks {
		at, ok := ended[name]
		if !ok {
			t.Errorf("%s still open 5s after the revoke command started", name)
			continue
		}
		took := at.Sub(start)
		last = max(last, took)
		t.Logf("%s ended %v after the revoke command started (the command ran %v)", name, took.Round(time.Millisecond), exited.Sub(start).Round(time.Millisecond))
	}
	t.Logf("revoke --email: both sessions ended and both sockets closed %v after the command started", last.Round(time.Millisecond))
	for _, pp := range []*proxyProc{a, b} {
		if got := pp.metric(t, "authproxy_session_revocations_total", "how", "email"); got != 1 {
			t.Errorf("%s: authproxy_session_revocations_total{how=\"email\"} = %v, want 1", pp.name, got)
		}
		if log := pp.log(t); !strings.Contains(log, "event=revoke_heard by=email") {
			t.Errorf("%s logged no revoke_heard line", pp.name)
		}
	}

	// bob is unaffected, and his stream stays open past a re-check of every open stream.
	wantSignedIn(t, "bob through A after alice's revocation", a.url, bobJar, bob)
	wantSignedIn(t, "bob through B after alice's revocation", b.url, bobJar, bob)
	recheck := time.After(2500 * time.Millisecond)
	select {
	case <-bobStream.done:
		_, _, err := bobStream.state()
		t.Fatalf("bob's event stream ended after alice's revocation: %v", err)
	case <-recheck:
	}

	// alice may sign in again: a revocation ends sessions, it bans no one.
	dexSignIn(t, tabA, a.url, dex, alice, "/revoke/again")
	wantSignedIn(t, "alice signed in again", b.url, httpCookies(proxyCookies(t, tabA, a.url)), alice)

	// revoke --all ends bob's session and stream too, and alice's new one.
	out, errOut, code = sessionsCommand(t, b.env, "revoke", "--all")
	if wantOut := "revoked 2 sessions of every user\n"; code != 0 || (store == "redis" && !strings.HasPrefix(out, wantOut)) {
		t.Fatalf("revoke --all: exit %d, stdout %q, stderr %q; want 0 (and %q with the redis store)", code, out, errOut, wantOut)
	}
	select {
	case <-bobStream.done:
	case <-time.After(5 * time.Second):
		t.Error("bob's event stream is still open 5s after revoke --all")
	}
	wantSignedOut(t, "bob after revoke --all", a.url, bobJar)
	wantSignedOut(t, "alice's new session after revoke --all", b.url, httpCookies(proxyCookies(t, tabA, a.url)))
}
