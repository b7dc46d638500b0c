package authproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Pre-authentication limits: what an anonymous client can do to authproxy
// as Serve runs it (real listener, real http.Server limits). Every attack
// must end in a clean 4xx or a closed connection, and authproxy must go on
// serving.

// serveForLimits builds authproxy as the binary does, serves it with
// Serve on a loopback port and returns the environment and that address.
// /public/ is a skip-auth route to the echoing upstream. Logs are
// discarded, so that they do not count as memory authproxy keeps.
func serveForLimits(t *testing.T) (*testEnv, string) {
	t.Helper()
	e := buildProductionEnv(t, io.Discard,
		withVar("AUTHPROXY_LISTEN", "127.0.0.1:0"),
		withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	addr, _, _ := serveInBackground(t, e.srv, e.cfg)
	return e, addr
}

// exchange writes request on a new connection to addr while reading the
// response, so that a server answering before it has read everything is
// seen answering. It returns the response with its body, or the error that
// ended the exchange (a closed connection).
func exchange(t *testing.T, addr string, request []byte) (*http.Response, string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second)) // a guard against hangs
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = conn.Write(request) // fails when the server closes first
	}()
	defer func() {
		conn.Close()
		wg.Wait()
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

// stillServes fails the test unless authproxy answers ordinary requests on
// new connections: its health check, and a skip-auth route proxied to the
// upstream.
func stillServes(t *testing.T, addr string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, p := range []string{healthPath, "/public/after"} {
		resp, err := c.Get("http://" + addr + p)
		if err != nil {
			t.Fatalf("after the attack, GET %s: %v", p, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("after the attack, GET %s: %d, want 200", p, resp.StatusCode)
		}
	}
}

func TestLimitHeaderBlock(t *testing.T) {
	_, addr := serveForLimits(t)
	big := strings.Repeat("a", 2*maxHeaderBytes)
	manyHeaders := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-Header-%05d: %s\r\n", i, strings.Repeat("v", 40))
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, request string
		want          int
	}{
		{"one header over the limit", "GET /public/x HTTP/1.1\r\nHost: app\r\nX-Big: " + big + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"many headers over the limit", "GET /public/x HTTP/1.1\r\nHost: app\r\n" + manyHeaders(3000) + "\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"Cookie over the limit", "GET /app HTTP/1.1\r\nHost: app\r\nCookie: _authproxy=" + big + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"request line over the limit", "GET /public/x?q=" + big + " HTTP/1.1\r\nHost: app\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"session-sized header block under the limit", "GET /public/x HTTP/1.1\r\nHost: app\r\nCookie: app=" + strings.Repeat("c", 40<<10) + "\r\nConnection: close\r\n\r\n", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := exchange(t, addr, []byte(tc.request))
			if err != nil {
				t.Fatalf("got %v, want a %d response", err, tc.want)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d; body %.200s", resp.StatusCode, tc.want, body)
			}
			stillServes(t, addr)
		})
	}
}

func TestLimitManyCookies(t *testing.T) {
	e, addr := serveForLimits(t)
	cookies := func(format string, n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf(format, i)
		}
		return strings.Join(parts, "; ")
	}
	appCookies := cookies("app%03d=value-of-an-app-cookie", 200)
	var lines strings.Builder
	for i := range 200 {
		fmt.Fprintf(&lines, "Cookie: line%03d=v\r\n", i)
	}
	for _, tc := range []struct {
		name, method, path, accept, cookieLines string
		want                                    int
	}{
		{"200 app cookies on a skip-auth route", "GET", "/public/x", "application/json", "Cookie: " + appCookies + "\r\n", http.StatusOK},
		{"200 app cookies, no session, API", "GET", "/app", "application/json", "Cookie: " + appCookies + "\r\n", http.StatusUnauthorized},
		{"200 app cookies, no session, browser", "GET", "/app", acceptHTML, "Cookie: " + appCookies + "\r\n", http.StatusFound},
		{"200 Cookie header lines", "GET", "/app", "application/json", lines.String(), http.StatusUnauthorized},
		{"200 session chunk cookies", "GET", "/app", "application/json", "Cookie: " + cookies(e.cfg.CookieName+"_%d=QUFBQUFB", 200) + "\r\n", http.StatusUnauthorized},
		{"200 state cookies at the callback", "GET", callbackPath + "?state=AAAAAAAAAAAAAAAAAAAAAAAA&code=x", acceptHTML, "Cookie: " + cookies(e.cfg.CookieName+"_csrf_%012d=QUFBQUFB", 200) + "\r\n", http.StatusBadRequest},
		{"200 cookies at sign-out", "GET", signOutPath, acceptHTML, "Cookie: " + cookies(e.cfg.CookieName+"_%d=x", 100) + "; " + cookies("app%03d=x", 100) + "\r\n", http.StatusFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.up.requests())
			req := tc.method + " " + tc.path + " HTTP/1.1\r\nHost: app\r\nAccept: " + tc.accept + "\r\n" + tc.cookieLines + "Connection: close\r\n\r\n"
			resp, body, err := exchange(t, addr, []byte(req))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d; body %.200s", resp.StatusCode, tc.want, body)
			}
			seen := e.up.requests()[before:]
			if tc.want == http.StatusOK {
				if len(seen) != 1 || len(seen[0].Header["Cookie"]) != 1 || seen[0].Header["Cookie"][0] != appCookies {
					t.Errorf("the upstream did not get the app's 200 cookies intact")
				}
			} else if len(seen) != 0 {
				t.Errorf("the upstream saw %d requests", len(seen))
			}
			stillServes(t, addr)
		})
	}
}

func TestLimitBackchannelLogoutBody(t *testing.T) {
	_, addr := serveForLimits(t)
	mb := strings.Repeat("a", 1<<20)
	for _, tc := range []struct{ name, request string }{
		{"1 MB form with Content-Length", "POST " + backchannelLogoutPath + " HTTP/1.1\r\nHost: app\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + fmt.Sprint(len(mb)+len("logout_token=")) + "\r\n\r\nlogout_token=" + mb},
		{"1 MB form, chunked", "POST " + backchannelLogoutPath + " HTTP/1.1\r\nHost: app\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\nlogout_token=%s\r\n0\r\n\r\n", len(mb)+len("logout_token="), mb)},
		{"1 MB of one form field name", "POST " + backchannelLogoutPath + " HTTP/1.1\r\nHost: app\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + fmt.Sprint(len(mb)) + "\r\n\r\n" + mb},
		{"1 MB JSON", "POST " + backchannelLogoutPath + " HTTP/1.1\r\nHost: app\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(mb)+4) + "\r\n\r\n[\"" + mb + "\"]"},
		{"Content-Length claims 1 GB", "POST " + backchannelLogoutPath + " HTTP/1.1\r\nHost: app\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1073741824\r\n\r\nlogout_token=" + strings.Repeat("a", 70<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := exchange(t, addr, []byte(tc.request))
			if err != nil {
				t.Fatalf("got %v, want a 4xx response", err)
			}
			if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("got %d, want 400 or 413; body %.200s", resp.StatusCode, body)
			}
			stillServes(t, addr)
		})
	}
}

// TestLimitSlowloris holds connections that send their header one byte a
// second. The server must close each once readHeaderTimeout has passed,
// and serve everyone else meanwhile. It waits about readHeaderTimeout
// (10s): Serve's timeouts are constants with no knob for tests.
func TestLimitSlowloris(t *testing.T) {
	const grace = 5 * time.Second
	if readHeaderTimeout+grace > 16*time.Second {
		t.Skipf("readHeaderTimeout is %s: too long to wait for in a test", readHeaderTimeout)
	}
	t.Parallel()
	_, addr := serveForLimits(t)
	const conns = 20
	closed := make(chan error, conns)
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for i := range conns {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(readHeaderTimeout + grace)) // the bounded wait
		// The header, one byte a second; it never ends.
		writers.Add(1)
		go func() {
			defer writers.Done()
			header := fmt.Sprintf("GET /public/slow%d HTTP/1.1\r\nHost: app\r\nX-Slow: %s", i, strings.Repeat("z", 100))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for j := 0; j < len(header); j++ {
				if _, err := conn.Write([]byte{header[j]}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		// The server closes the connection: a read ends with EOF or a
		// reset, maybe after a 4xx response (Go's server says 400).
		go func() {
			buf := make([]byte, 512)
			for {
				n, err := conn.Read(buf)
				if n > 0 && !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 4") {
					closed <- fmt.Errorf("server wrote %q to a connection without a full header", buf[:n])
					return
				}
				if err != nil {
					closed <- err
					return
				}
			}
		}()
	}
	// Meanwhile everyone else is served.
	stillServes(t, addr)
	for range conns {
		err := <-closed
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("a slow connection was still open %s after it began (readHeaderTimeout %s)", readHeaderTimeout+grace, readHeaderTimeout)
		case errors.Is(err, io.EOF), isConnReset(err):
		default:
			t.Errorf("slow connection: %v", err)
		}
	}
	close(stop)
	writers.Wait()
	stillServes(t, addr)
	t.Logf("%d slowloris connections closed by the server after readHeaderTimeout (%s); others were served meanwhile", conns, readHeaderTimeout)
}

func isConnReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

func TestLimitCallbackHugeQuery(t *testing.T) {
	e, addr := serveForLimits(t)
	many := strings.Repeat("a=1&", 12000)
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"40 KB state", "state=" + strings.Repeat("S", 40<<10) + "&code=x", http.StatusBadRequest},
		{"40 KB code", "state=AAAAAAAAAAAAAAAAAAAAAAAA&code=" + strings.Repeat("C", 40<<10), http.StatusBadRequest},
		{"12000 parameters", many + "state=AAAAAAAAAAAAAAAAAAAAAAAA&code=x", http.StatusBadRequest},
		{"40 KB IdP error description", "state=AAAAAAAAAAAAAAAAAAAAAAAA&error=access_denied&error_description=" + strings.Repeat("%3Cscript%3E", 3000), http.StatusBadRequest},
		{"12000 repeated states", strings.Repeat("state=AAAAAAAAAAAA&", 3000), http.StatusBadRequest},
		{"query over the header limit", "state=" + strings.Repeat("S", 2*maxHeaderBytes), http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET " + callbackPath + "?" + tc.query + " HTTP/1.1\r\nHost: app\r\nAccept: " + acceptHTML + "\r\nConnection: close\r\n\r\n"
			resp, body, err := exchange(t, addr, []byte(req))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d; body %.200s", resp.StatusCode, tc.want, body)
			}
			if len(body) > 16<<10 {
				t.Errorf("answered with a %d-byte page: the query is echoed", len(body))
			}
			if strings.Contains(body, "<script>") {
				t.Errorf("page carries the query's markup unescaped")
			}
			if e.setsSession(resp.Cookies()) {
				t.Errorf("set a session cookie")
			}
			stillServes(t, addr)
		})
	}
}

// TestLimitConcurrentSignInStarts starts thousands of sign-ins at once:
// each costs the server nothing after it answers (the state lives in the
// browser's cookie), so the heap does not grow with their number.
func TestLimitConcurrentSignInStarts(t *testing.T) {
	e, addr := serveForLimits(t)
	transport := &http.Transport{MaxIdleConnsPerHost: 16}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	prefix := e.cfg.CookieName + "_csrf_"

	var maxCookie int
	var mu sync.Mutex
	run := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		work := make(chan int)
		errs := make(chan error, n)
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s%s?rd=/page/%d", addr, startPath, i), nil)
					req.Header.Set("Accept", acceptHTML)
					resp, err := client.Do(req)
					if err != nil {
						errs <- err
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					states := 0
					for _, c := range resp.Cookies() {
						if strings.HasPrefix(c.Name, prefix) {
							states++
							mu.Lock()
							maxCookie = max(maxCookie, len(c.String()))
							mu.Unlock()
						}
					}
					if resp.StatusCode != http.StatusFound || states != 1 {
						errs <- fmt.Errorf("start %d: %d with %d state cookies", i, resp.StatusCode, states)
					}
				}
			}()
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	baseGoroutines := runtime.NumGoroutine()
	heap := func() uint64 {
		transport.CloseIdleConnections()
		// Let the server's connection goroutines see their connections
		// close (a bounded wait), then collect.
		for i := 0; i < 100 && runtime.NumGoroutine() > baseGoroutines+20; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	run(500) // warm up pools and caches
	before := heap()
	const n = 4000
	run(n)
	after := heap()
	growth := int64(after) - int64(before)
	// A server keeping even a map entry of state, nonce and verifier per
	// sign-in would grow by more than 200 bytes each.
	if limit := int64(n * 64); growth > limit {
		t.Errorf("heap grew by %d bytes over %d sign-in starts (%d bytes each), want under %d", growth, n, growth/n, limit)
	}
	if maxCookie > 1024 {
		t.Errorf("a state cookie is %d bytes", maxCookie)
	}
	stillServes(t, addr)
	t.Logf("%d concurrent sign-in starts (16 at a time): heap %+d bytes; state cookies up to %d bytes, each its own", n, growth, maxCookie)
}

// TestLimitHeaderBlockIsExact is issue 11's finding 5: the 64 KiB header
// limit holds to the byte on every path (Go's server alone lets about 4 KiB
// more through, so a 64 KiB cookie got a sign-in redirect, not 431).
func TestLimitHeaderBlockIsExact(t *testing.T) {
	_, addr := serveForLimits(t)
	// request builds a request whose request line and header lines (the
	// final empty line not counted) are exactly size bytes, padding in the
	// named header.
	request := func(path, pad string, size int) string {
		head := "GET " + path + " HTTP/1.1\r\nHost: app\r\nAccept: text/html\r\nConnection: close\r\n"
		prefix := pad + ": "
		if pad == "Cookie" {
			prefix += "app="
		}
		fill := size - len(head) - len(prefix) - 2
		return head + prefix + strings.Repeat("v", fill) + "\r\n\r\n"
	}
	for _, path := range []string{"/public/x", "/app", startPath, callbackPath + "?state=x&code=y", healthPath} {
		for _, pad := range []string{"X-Pad", "Cookie"} {
			for _, tc := range []struct {
				size    int
				tooLong bool
			}{
				{maxHeaderBytes, false},
				{maxHeaderBytes + 1, true},
				{maxHeaderBytes + 1024, true},
			} {
				t.Run(fmt.Sprintf("%s %s %d bytes", path, pad, tc.size), func(t *testing.T) {
					resp, body, err := exchange(t, addr, []byte(request(path, pad, tc.size)))
					if err != nil {
						t.Fatalf("got %v, want a response", err)
					}
					if got := resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge; got != tc.tooLong {
						t.Errorf("got %d, want 431: %v; body %.200s", resp.StatusCode, tc.tooLong, body)
					}
				})
			}
		}
	}
	stillServes(t, addr)
}
