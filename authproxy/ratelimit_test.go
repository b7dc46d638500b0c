package authproxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// rateClock is a clock the test moves by hand.
type rateClock struct {
	mu sync.Mutex
	t  time.Time
}

func newRateClock() *rateClock { return &rateClock{t: time.Now()} }

func (c *rateClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *rateClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limitedEndpoint is one way an anonymous client spends a rate-limited
// token, and what it answers under the limit.
type limitedEndpoint struct {
	name   string // the endpoint label
	method string
	target string
	body   string // form body of a POST
	under  int    // status under the limit
}

var limitedEndpoints = []struct {
	kind string
	limitedEndpoint
}{
	{"start", limitedEndpoint{limitStart, http.MethodGet, startPath + "?rd=%2Fapp", "", http.StatusFound}},
	{"sign-in redirect", limitedEndpoint{limitStart, http.MethodGet, "/app?x=1", "", http.StatusFound}},
	{"callback", limitedEndpoint{limitCallback, http.MethodGet, callbackPath + "?state=unknown-state-0123&code=c", "", http.StatusBadRequest}},
	{"back-channel logout", limitedEndpoint{limitBackchannel, http.MethodPost, backchannelLogoutPath, "logout_token=not-a-jwt", http.StatusBadRequest}},
}

// send makes one request to ep through the server's handler chain, from
// peer (host:port) with the extra headers given as name, value pairs.
func (ep limitedEndpoint) send(t testing.TB, srv http.Handler, peer, accept string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if ep.body != "" {
		body = strings.NewReader(ep.body)
	}
	r := httptest.NewRequest(ep.method, "http://app.example.com"+ep.target, body)
	r.RemoteAddr = peer
	if ep.body != "" {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("Accept", accept)
	if strings.Contains(accept, "text/html") {
		r.Header.Set("Sec-Fetch-Mode", "navigate")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	return w
}

// rateLimitedEnv is a server whose sign-in and back-channel limits are
// "2/h burst=2", on a clock of the test's.
func rateLimitedEnv(t *testing.T, opts ...envOption) (*testEnv, *rateClock) {
	clock := newRateClock()
	opts = append([]envOption{
		withVar("AUTHPROXY_SIGNIN_RATE_LIMIT", "2/h burst=2"),
		withVar("AUTHPROXY_BACKCHANNEL_LOGOUT_RATE_LIMIT", "2/h burst=2"),
		withNow(clock.now),
	}, opts...)
	return newTestEnv(t, opts...), clock
}

func TestRateLimitUnderAndOver(t *testing.T) {
	for _, ep := range limitedEndpoints {
		for _, client := range []struct{ name, accept string }{
			{"browser", acceptHTML},
			{"API client", "application/json"},
		} {
			t.Run(ep.kind+"/"+client.name, func(t *testing.T) {
				e, clock := rateLimitedEnv(t)
				peer := "198.51.100.7:40000"
				under := ep.under
				if ep.kind == "sign-in redirect" && client.accept != acceptHTML {
					under = http.StatusUnauthorized // not a navigation: no sign-in, no token spent
				}
				for i := range 2 {
					if w := ep.send(t, e.srv, peer, client.accept); w.Code != under {
						t.Fatalf("request %d: got %d, want %d under the limit; body %.200s", i+1, w.Code, under, w.Body)
					}
				}
				w := ep.send(t, e.srv, peer, client.accept)
				if under == http.StatusUnauthorized {
					if w.Code != http.StatusUnauthorized {
						t.Fatalf("third API request without a session: got %d, want 401 (never limited)", w.Code)
					}
					return
				}
				if w.Code != http.StatusTooManyRequests {
					t.Fatalf("third request: got %d, want 429; body %.200s", w.Code, w.Body)
				}
				// 2/h: one token every 30 minutes, and the clock has not moved.
				if got := w.Header().Get("Retry-After"); got != "1800" {
					t.Errorf("Retry-After = %q, want 1800", got)
				}
				checkTooMany(t, w, ep.name == limitBackchannel || client.accept != acceptHTML)

				clock.advance(29 * time.Minute)
				if w := ep.send(t, e.srv, peer, client.accept); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
					t.Errorf("29 minutes later: got %d Retry-After %q, want 429 and 60", w.Code, w.Header().Get("Retry-After"))
				}
				clock.advance(time.Minute)
				if w := ep.send(t, e.srv, peer, client.accept); w.Code != under {
					t.Errorf("30 minutes later: got %d, want %d again", w.Code, under)
				}
			})
		}
	}
}

// checkTooMany fails the test unless w is authproxy's 429: JSON when
// wantJSON, else the error page with the request id.
func checkTooMany(t *testing.T, w *httptest.ResponseRecorder, wantJSON bool) {
	t.Helper()
	body := w.Body.String()
	ct := w.Header().Get("Content-Type")
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", w.Header().Get("Cache-Control"))
	}
	if wantJSON {
		var v map[string]string
		if ct != "application/json" || json.Unmarshal([]byte(body), &v) != nil || v["error"] != "too_many_requests" {
			t.Errorf("got %q %.200s, want JSON with error too_many_requests", ct, body)
		}
		return
	}
	id := w.Header().Get("X-Request-Id")
	if !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "Too many sign-in attempts") ||
		!strings.Contains(body, "Try again in 30 minutes") || id == "" || !strings.Contains(body, id) {
		t.Errorf("got %q, want the error page with its request id %q: %.400s", ct, id, body)
	}
}

func TestRateLimitClientAddress(t *testing.T) {
	start := limitedEndpoints[0].limitedEndpoint
	for _, tc := range []struct {
		name    string
		trusted string
		// first exhausts a bucket (burst 2); then each of then is sent once.
		first []string // peer, X-Forwarded-For ("" for none)
		then  []struct {
			peer, xff string
			limited   bool
		}
	}{
		{
			name: "untrusted client cannot dodge the limit with X-Forwarded-For", trusted: "10.0.0.0/8",
			first: []string{"198.51.100.7:1", "1.1.1.1"},
			then: []struct {
				peer, xff string
				limited   bool
			}{
				{"198.51.100.7:2", "2.2.2.2", true},
				{"198.51.100.7:3", "", true},
				{"198.51.100.8:1", "1.1.1.1", false},
			},
		},
		{
			name: "trusted proxy: the right-most untrusted X-Forwarded-For entry", trusted: "127.0.0.1/32, 10.0.0.0/8",
			first: []string{"127.0.0.1:1", "203.0.113.5"},
			then: []struct {
				peer, xff string
				limited   bool
			}{
				{"127.0.0.1:2", "203.0.113.5", true},
				{"127.0.0.1:2", "9.9.9.9, 203.0.113.5", true},            // a left-most spoof changes nothing
				{"127.0.0.1:2", "203.0.113.5, 10.1.2.3", true},           // a trusted hop is skipped
				{"127.0.0.1:2", "203.0.113.6", false},                    // another client
				{"127.0.0.1:2", "", false},                               // the proxy itself
				{"203.0.113.5:9", "", true},                              // the same client, direct
				{"198.51.100.1:9", "203.0.113.6", false},                 // untrusted peer: its own address
				{"127.0.0.1:2", "203.0.113.5:4711", true},                // with a port
				{"127.0.0.1:2", "::ffff:203.0.113.5", true},              // IPv4-mapped
				{"127.0.0.1:2", "203.0.113.5, garbage, 10.0.0.9", false}, // ends at the trusted hop
			},
		},
		{
			name: "IPv6 grouped by /64", trusted: "127.0.0.1/32",
			first: []string{"127.0.0.1:1", "2001:db8:1:2::1"},
			then: []struct {
				peer, xff string
				limited   bool
			}{
				{"127.0.0.1:1", "2001:db8:1:2:ffff:ffff:ffff:fffe", true},
				{"[2001:db8:1:2::99]:1", "", true},
				{"127.0.0.1:1", "2001:db8:1:3::1", false},
				{"127.0.0.1:1", "2001:db8:2:2::1", false},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := rateLimitedEnv(t, withVar("AUTHPROXY_TRUSTED_PROXIES", tc.trusted))
			xff := func(v string) []string {
				if v == "" {
					return nil
				}
				return []string{"X-Forwarded-For", v}
			}
			for range 2 {
				if w := start.send(t, e.srv, tc.first[0], acceptHTML, xff(tc.first[1])...); w.Code != http.StatusFound {
					t.Fatalf("exhausting the bucket: got %d, want 302", w.Code)
				}
			}
			for _, then := range tc.then {
				w := start.send(t, e.srv, then.peer, acceptHTML, xff(then.xff)...)
				if limited := w.Code == http.StatusTooManyRequests; limited != then.limited {
					t.Errorf("from %s with X-Forwarded-For %q: got %d, want limited %t", then.peer, then.xff, w.Code, then.limited)
				}
			}
		})
	}
}

func TestRateLimitNeverLimitsSignedIn(t *testing.T) {
	e, _ := rateLimitedEnv(t, withVar("AUTHPROXY_SIGNIN_RATE_LIMIT", "1/h burst=1"))
	cookie := e.mintSession(t, testSession())
	c := noFollow(e.browser())
	// Spend this address's sign-in and callback tokens.
	for _, ep := range limitedEndpoints[:3] {
		e.request(t, c, ep.method, ep.target, "Accept", acceptHTML)
	}
	if r := e.navigate(t, c, startPath); r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s after the burst: got %d, want 429", startPath, r.Status)
	}
	for i := range 5 {
		for _, tc := range []struct {
			name, path, accept string
			want               int
		}{
			{"a page of the app", "/app", acceptHTML, http.StatusOK},
			{"an API call", "/api/x", "application/json", http.StatusOK},
			{"userinfo", userinfoPath, "application/json", http.StatusOK},
			{"forward-auth", authPath, "", http.StatusAccepted},
		} {
			r := e.request(t, c, http.MethodGet, tc.path, "Accept", tc.accept, "Cookie", cookie, "Sec-Fetch-Mode", "navigate")
			if r.Status != tc.want {
				t.Errorf("signed in, %s (%d): got %d, want %d", tc.name, i+1, r.Status, tc.want)
			}
		}
	}
	// Without the session the same navigation is a sign-in start, refused.
	if r := e.navigate(t, c, "/app"); r.Status != http.StatusTooManyRequests {
		t.Errorf("/app without a session: got %d, want 429", r.Status)
	}
}

func TestRateLimitTableBounded(t *testing.T) {
	e, _ := rateLimitedEnv(t)
	callback := limitedEndpoints[2].limitedEndpoint
	table := e.srv.limits.callback.table
	// IPv4 addresses, one request each.
	n := rateTableEntries + rateTableEntries/2
	for i := range n {
		peer := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() + ":1"
		if w := callback.send(t, e.srv, peer, "application/json"); w.Code != http.StatusBadRequest {
			t.Fatalf("address %d: got %d, want 400", i, w.Code)
		}
	}
	if got := table.len(); got > rateTableEntries || got < rateTableEntries/2 {
		t.Errorf("after %d addresses the table holds %d buckets, want between %d and %d", n, got, rateTableEntries/2, rateTableEntries)
	}
	// One host rotating through its /64 is one bucket, and is limited.
	before := table.len()
	limited := 0
	for i := range 100 {
		peer := fmt.Sprintf("[2001:db8:7:7:%x::1]:1", i+1)
		if w := callback.send(t, e.srv, peer, "application/json"); w.Code == http.StatusTooManyRequests {
			limited++
		}
	}
	if got := table.len(); got > before+1 {
		t.Errorf("100 addresses of one /64 added %d buckets, want at most 1", got-before)
	}
	if limited != 98 {
		t.Errorf("100 requests from one /64 with a burst of 2: %d limited, want 98", limited)
	}
	t.Logf("%d addresses: %d buckets held (bound %d)", n, table.len(), rateTableEntries)
}

func TestRateLimitMetricsAndAudit(t *testing.T) {
	e, clock := rateLimitedEnv(t)
	for _, ep := range limitedEndpoints {
		for range 5 {
			ep.send(t, e.srv, "198.51.100.7:1", acceptHTML)
		}
	}
	// start: 3 over the limit at /oauth2/start, and the redirect's 5 all over
	// (they share the start bucket); callback 3; back-channel 3.
	metrics := httptest.NewRecorder()
	e.srv.ServeHTTP(metrics, httptest.NewRequest(http.MethodGet, metricsPath, nil))
	for _, want := range []string{
		`authproxy_rate_limited_total{endpoint="start"} 8`,
		`authproxy_rate_limited_total{endpoint="callback"} 3`,
		`authproxy_rate_limited_total{endpoint="backchannel_logout"} 3`,
		`authproxy_requests_total{outcome="rate_limited"} 14`,
	} {
		if !strings.Contains(metrics.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// One audit line per address and endpoint a minute, however many
	// requests were limited.
	lines := auditLines(t, e.logs.String())
	if len(lines) != 3 {
		t.Fatalf("got %d rate_limited audit lines, want 3 (one per endpoint): %v", len(lines), lines)
	}
	for _, l := range lines {
		if l["client"] != "198.51.100.7" || l["endpoint"] == nil || l["request_id"] == "" || l["level"] != "WARN" {
			t.Errorf("audit line %v: want client 198.51.100.7, the endpoint and the request id", l)
		}
	}
	// A minute later: a summary of the 7 start requests not logged one by
	// one, then the address's line again.
	clock.advance(time.Minute)
	limitedEndpoints[0].send(t, e.srv, "198.51.100.7:1", acceptHTML)
	lines = auditLines(t, e.logs.String())
	if len(lines) != 5 {
		t.Fatalf("a minute later: %d audit lines, want 5: %v", len(lines), lines)
	}
	if s := lines[3]; s["unlogged"] != float64(7) || s["endpoint"] != limitStart {
		t.Errorf("summary line %v: want 7 unlogged start requests", s)
	}
	if l := lines[4]; l["client"] != "198.51.100.7" || l["endpoint"] != limitStart {
		t.Errorf("line %v: want the address's start line", l)
	}
}

func TestRateLimitAuditThrottled(t *testing.T) {
	e, clock := rateLimitedEnv(t, withVar("AUTHPROXY_SIGNIN_RATE_LIMIT", "1/h burst=1"))
	callback := limitedEndpoints[2].limitedEndpoint
	const addrs = 200
	for range 3 { // the first round spends each address's token, the others are limited
		for i := range addrs {
			callback.send(t, e.srv, fmt.Sprintf("203.0.%d.%d:1", i/250, i%250+1), "application/json")
		}
	}
	lines := auditLines(t, e.logs.String())
	if len(lines) != auditLinesPerMinute {
		t.Fatalf("%d addresses limited twice each: %d audit lines, want %d", addrs, len(lines), auditLinesPerMinute)
	}
	clock.advance(time.Minute)
	callback.send(t, e.srv, "203.0.0.1:1", "application/json")
	lines = auditLines(t, e.logs.String())
	summary := lines[len(lines)-2]
	if want := float64(2*addrs - auditLinesPerMinute); summary["unlogged"] != want || summary["endpoint"] != limitCallback {
		t.Errorf("summary line %v: want unlogged %v for endpoint callback", summary, want)
	}
	if last := lines[len(lines)-1]; last["client"] != "203.0.0.1" {
		t.Errorf("after the summary: %v, want the address's own line", last)
	}
}

// auditLines returns the rate_limited audit lines of a JSON log.
func auditLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(log) {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if v["event"] == "rate_limited" {
			out = append(out, v)
		}
	}
	return out
}

func TestRateTable(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	l := RateLimit{N: 60, Per: time.Minute, Burst: 3} // a token a second
	key := rateKeyOf(netip.MustParseAddr("192.0.2.1"))
	tab := newRateTable(l, 16, at)
	for i, tc := range []struct {
		name   string
		after  time.Duration
		ok     bool
		retry  time.Duration
		logDue bool
	}{
		{"burst 1", 0, true, 0, false},
		{"burst 2", 0, true, 0, false},
		{"burst 3", 0, true, 0, false},
		{"empty", 0, false, time.Second, true},
		{"still empty, already logged", 500 * time.Millisecond, false, 500 * time.Millisecond, false},
		{"one refilled", time.Second, true, 0, false},
		{"empty again", time.Second, false, time.Second, false},
		{"clock stepped back: no refill", 0, false, time.Second, false},
		{"and counting on from there", time.Second, true, 0, false},
		{"full after long idle", time.Hour, true, 0, false},
		{"not more than the burst 2", time.Hour, true, 0, false},
		{"not more than the burst 3", time.Hour, true, 0, false},
		{"empty after the burst, logged again an hour on", time.Hour, false, time.Second, true},
	} {
		ok, retry, logDue := tab.take(key, at.Add(tc.after))
		if ok != tc.ok || retry != tc.retry || logDue != tc.logDue {
			t.Errorf("%d %s: take = %t, %v, %t; want %t, %v, %t", i, tc.name, ok, retry, logDue, tc.ok, tc.retry, tc.logDue)
		}
	}
}

func TestRateTableEvictsLeastRecentlyUsed(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	tab := newRateTable(RateLimit{N: 1, Per: time.Hour, Burst: 1}, rateShards, at) // one bucket a shard
	a, b := rateKeyOf(netip.MustParseAddr("192.0.2.1")), rateKey{}
	for i := 2; ; i++ { // another address in a's shard
		b = rateKeyOf(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}))
		if tab.shard(a) == tab.shard(b) {
			break
		}
	}
	if ok, _, _ := tab.take(a, at); !ok {
		t.Fatal("a's first request refused")
	}
	if ok, _, _ := tab.take(a, at); ok {
		t.Fatal("a's second request allowed with a burst of 1")
	}
	if ok, _, _ := tab.take(b, at); !ok {
		t.Fatal("b's first request refused")
	}
	// b took a's place: a starts again with a full bucket.
	if ok, _, _ := tab.take(a, at); !ok {
		t.Error("a was not evicted by b")
	}
	if got := tab.len(); got > rateShards {
		t.Errorf("table holds %d buckets, want at most %d", got, rateShards)
	}
}

func TestRateKeyOf(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"::ffff:192.0.2.1", "::", false},
		{"192.0.2.1", "c000:201::", false},
	} {
		ka, kb := rateKeyOf(netip.MustParseAddr(tc.a)), rateKeyOf(netip.MustParseAddr(tc.b))
		if (ka == kb) != tc.same {
			t.Errorf("rateKeyOf(%s) == rateKeyOf(%s) is %t, want %t", tc.a, tc.b, ka == kb, tc.same)
		}
	}
}

func TestParseRateLimitString(t *testing.T) {
	for _, v := range []string{"30/m burst=10", "1/s burst=1", "600/h burst=200", "off"} {
		l, err := parseRateLimit(v)
		if err != nil || l.String() != v {
			t.Errorf("parseRateLimit(%q) = %v, %v; want it back", v, l, err)
		}
	}
}

// BenchmarkRateLimitFlood sends a sign-in callback from each of 100,000
// distinct addresses through the whole handler chain, and reports the heap
// the rate limiter's tables hold afterwards (heap-MiB, after a GC) and
// the buckets they keep.
//
//	go test ./authproxy -run '^$' -bench RateLimitFlood -benchtime 1x
func BenchmarkRateLimitFlood(b *testing.B) {
	const addrs = 100_000
	for b.Loop() {
		bs := newBenchServer(b, "cookie", nil)
		callback := limitedEndpoints[2].limitedEndpoint
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range addrs {
			peer := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() + ":1"
			callback.send(b, bs.srv, peer, "application/json")
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
		b.ReportMetric(float64(bs.srv.limits.callback.table.len()), "buckets")
		runtime.KeepAlive(bs)
	}
}

// BenchmarkRateTableTake is one take from a full table, each from a new
// address: a lookup, an eviction and an insert.
func BenchmarkRateTableTake(b *testing.B) {
	at := time.Now()
	tab := newRateTable(RateLimit{N: 30, Per: time.Minute, Burst: 10}, rateTableEntries, at)
	i := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		i++
		tab.take(rateKeyOf(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})), at)
	}
}
