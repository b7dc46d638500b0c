package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/session"
)

// The demo's user the harness signs in as (deploy/demo/dex.yaml).
const (
	benchUser     = "alice@example.com"
	benchPassword = "alice"
	loadPath      = "/app" // what the load asks for: the upstream's small fixed body
)

// signInResult is one programmatic sign-in through authproxy against Dex.
type signInResult struct {
	cookie      string        // the Cookie header value that carries the session
	total       time.Duration // wall time, first request to the signed-in page
	callback    time.Duration // wall time of the /oauth2/callback request alone
	cpu         time.Duration // authproxy's CPU time over the whole sign-in
	callbackCPU time.Duration // authproxy's CPU time over the callback request alone
}

// signIn signs in through the authproxy p as a browser would: the protected page with
// Accept: text/html, Dex's redirects, Dex's login form (fields login and password, posted to
// its own URL), back through /oauth2/callback, and the protected page again, now signed in.
func signIn(ctx context.Context, p *proc) (*signInResult, error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res := &signInResult{}
	start := time.Now()
	cpu0 := schedCPU(p.pid())
	do := func(method, target string, form url.Values) (*http.Response, []byte, error) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, target, body)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp, b, err
	}
	// follow follows redirects until one leads back to authproxy (or none is left), and
	// returns the last response and the next URL (authproxy's, or "" at a page).
	follow := func(resp *http.Response, body []byte) (*http.Response, []byte, string, error) {
		for range 10 {
			if resp.StatusCode < 300 || resp.StatusCode > 399 {
				return resp, body, "", nil
			}
			loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, nil, "", err
			}
			if loc.Host == p.addr {
				return resp, body, loc.String(), nil
			}
			if resp, body, err = do(http.MethodGet, loc.String(), nil); err != nil {
				return nil, nil, "", err
			}
		}
		return nil, nil, "", fmt.Errorf("more than 10 redirects at %s", resp.Request.URL.Redacted())
	}

	resp, body, err := do(http.MethodGet, p.url()+loadPath, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("GET %s without a session: %s, want 302 to Dex", loadPath, resp.Status)
	}
	resp, body, next, err := follow(resp, body)
	if err != nil {
		return nil, err
	}
	if next != "" || resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/auth/local/login") {
		return nil, fmt.Errorf("want Dex's login form, got %s at %s: %.300s", resp.Status, resp.Request.URL.Redacted(), body)
	}
	resp, body, err = do(http.MethodPost, resp.Request.URL.String(), url.Values{"login": {benchUser}, "password": {benchPassword}})
	if err != nil {
		return nil, err
	}
	_, body, next, err = follow(resp, body)
	if err != nil {
		return nil, err
	}
	if next == "" || !strings.Contains(next, "/oauth2/callback") {
		return nil, fmt.Errorf("Dex did not send back to the callback after the login form: %.300s", body)
	}
	cbStart, cbCPU := time.Now(), schedCPU(p.pid())
	resp, body, err = do(http.MethodGet, next, nil)
	res.callback, res.callbackCPU = time.Since(cbStart), schedCPU(p.pid())-cbCPU
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("callback: %s, want 302: %.300s", resp.Status, body)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, err
	}
	if resp, body, err = do(http.MethodGet, loc.String(), nil); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || string(body) != string(upstreamBody) {
		return nil, fmt.Errorf("signed in, GET %s: %s, want 200 with the upstream's body: %.300s", loc.Path, resp.Status, body)
	}
	res.total, res.cpu = time.Since(start), schedCPU(p.pid())-cpu0

	u, _ := url.Parse(p.url() + "/")
	var parts []string
	for _, c := range jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	res.cookie = strings.Join(parts, "; ")
	return res, nil
}

// whoami asks the upstream, through target, which user it was sent (X-Forwarded-User).
func whoami(target, cookie string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, target+"/whoami", nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /whoami: %s: %.200s", resp.Status, b)
	}
	return string(b), nil
}

// minter seals sessions exactly as an authproxy of the stack does, so that many distinct
// signed-in users can be had without as many Dex sign-ins.
type minter struct {
	store   session.Store
	closeFn func() error
}

// newMinter returns a minter for the cookie store (redisAddr "") or for the Redis ticket
// store, with the stack's cookie secret and authproxy's defaults (cookie _authproxy, 168h).
func newMinter(secret []byte, redisAddr string) (*minter, error) {
	codec, err := session.NewCodec([][]byte{secret}, 168*time.Hour)
	if err != nil {
		return nil, err
	}
	opts := session.CookieOptions{Name: "_authproxy", Path: "/", SameSite: http.SameSiteLaxMode}
	if redisAddr == "" {
		return &minter{store: session.NewCookieStore(codec, opts, nil), closeFn: func() error { return nil }}, nil
	}
	backend, err := session.NewRedisBackend(session.RedisOptions{URL: "redis://" + redisAddr + "/0"})
	if err != nil {
		return nil, err
	}
	return &minter{store: session.NewTicketStore(backend, codec, opts, nil), closeFn: backend.Close}, nil
}

func (m *minter) Close() error { return m.closeFn() }

// load opens the session a real sign-in left in cookie.
func (m *minter) load(cookie string) (*session.Session, error) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Cookie", cookie)
	return m.store.Load(r)
}

// mint saves n copies of template, each a distinct user (own session id, subject, email and
// IdP session id; the tokens stay the template's, so each is as large as a real one), and
// returns their Cookie header values.
func (m *minter) mint(ctx context.Context, template *session.Session, n int) ([]string, error) {
	cookies := make([]string, n)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				s := *template
				id := make([]byte, 16)
				rand.Read(id)
				s.ID = hex.EncodeToString(id)
				s.User = fmt.Sprintf("bench-user-%05d", i)
				s.Subject = s.User
				s.Email = fmt.Sprintf("user%05d@example.com", i)
				s.PreferredUsername = fmt.Sprintf("user%05d", i)
				s.SID = "bench-sid-" + s.ID
				rec := httptest.NewRecorder()
				if err := m.store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), &s); err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				var parts []string
				for _, c := range rec.Result().Cookies() {
					if c.Value != "" && c.MaxAge >= 0 {
						parts = append(parts, c.Name+"="+c.Value)
					}
				}
				cookies[i] = strings.Join(parts, "; ")
			}
		})
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, fmt.Errorf("minting sessions: %w", err)
	default:
	}
	return cookies, ctx.Err()
}
