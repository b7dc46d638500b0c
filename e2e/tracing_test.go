package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/otlptest"
)

// traceparentRecorder stands between authproxy and the legacy app and
// keeps the traceparent of every request it passes on.
type traceparentRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen map[string][]string // path -> traceparent of each request ("" when none)
}

func newTraceparentRecorder(t *testing.T, app string) *traceparentRecorder {
	t.Helper()
	u, err := url.Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := &traceparentRecorder{seen: map[string][]string{}}
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		tr.seen[r.URL.Path] = append(tr.seen[r.URL.Path], r.Header.Get("Traceparent"))
		tr.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	return tr
}

// traceparents returns the traceparents the app got for path.
func (tr *traceparentRecorder) traceparents(path string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.seen[path]...)
}

// TestTracingSignInAndProxy runs the real binary with OTEL_EXPORTER_OTLP_ENDPOINT pointing
// at an OTLP/HTTP receiver in the test (no collector installs here), signs alice in through
// Chromium and Dex with sessions in Redis, and checks the spans that arrive: the callback's
// token call, and the landing request's session lookup in Redis and upstream call, are
// children of their server spans, and the app got a traceparent in the same trace. The batch
// processor's delay is a minute, so the spans arrive only because SIGTERM flushes them.
// Restarted without an endpoint, authproxy sends no trace context and no span.
func TestTracingSignInAndProxy(t *testing.T) {
	rc := otlptest.New(t)
	app := newTraceparentRecorder(t, stack.appURL)
	ps := newProcSet(t)
	rd := startRedis(t, ps)
	proxy := newProxy(t, ps, "authproxy-traces")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{proxy.callbackURL()}})
	proxy.start(t, dexProxyEnv(dex, proxy.callbackURL(), newSecret(),
		"AUTHPROXY_UPSTREAM="+app.srv.URL,
		"AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL="+rd.url(),
		"OTEL_EXPORTER_OTLP_ENDPOINT="+rc.URL,
		"OTEL_BSP_SCHEDULE_DELAY=60000",
		"OTEL_SERVICE_NAME=authproxy-e2e",
	)...)

	tab := newBrowser(t)
	const landing = "/traced/page"
	dexSignIn(t, tab, proxy.url, dex, alice, landing+"?x=1")
	cookies := httpCookies(proxyCookies(t, tab, proxy.url))
	closeBrowser(t, tab) // Chromium's preconnected socket would hold the shutdown

	// The restart's SIGTERM flushes the spans; without an endpoint it then traces nothing.
	proxy.restart(t, "OTEL_EXPORTER_OTLP_ENDPOINT=")
	spans := rc.Wait(t, 5*time.Second, func(spans []otlptest.Span) bool {
		return len(otlptest.Find(spans, "authproxy callback")) > 0 && len(otlptest.Find(spans, "upstream")) > 0
	})

	find := func(name string, where func(otlptest.Span) bool) otlptest.Span {
		t.Helper()
		for _, s := range otlptest.Find(spans, name) {
			if where == nil || where(s) {
				return s
			}
		}
		t.Fatalf("no span %q as wanted; got %v", name, otlptest.Names(spans))
		return otlptest.Span{}
	}
	childOf := func(child, parent otlptest.Span) {
		t.Helper()
		if child.TraceID() != parent.TraceID() || child.ParentID() != parent.SpanID() {
			t.Errorf("span %q (trace %s, parent %s) is not a child of %q (trace %s, span %s)",
				child.Name, child.TraceID(), child.ParentID(), parent.Name, parent.TraceID(), parent.SpanID())
		}
	}

	callback := find("authproxy callback", nil)
	childOf(find("idp token", func(s otlptest.Span) bool { return s.ParentID() == callback.SpanID() }), callback)
	find("idp discovery", nil)
	find("idp jwks", nil)
	if callback.Resource["service.name"] != "authproxy-e2e" {
		t.Errorf("resource %v, want OTEL_SERVICE_NAME's service.name", callback.Resource)
	}

	proxied := find("authproxy app", func(s otlptest.Span) bool { return s.Attr("authproxy.outcome") == "proxied" })
	up := find("upstream", func(s otlptest.Span) bool { return s.ParentID() == proxied.SpanID() })
	childOf(up, proxied)
	childOf(find("redis GET", func(s otlptest.Span) bool { return s.ParentID() == proxied.SpanID() }), proxied)

	sent := app.traceparents(landing)
	if len(sent) == 0 {
		t.Fatalf("the app got no request for %s", landing)
	}
	want := "00-" + proxied.TraceID() + "-" + up.SpanID() + "-01"
	if !strings.Contains(strings.Join(sent, " "), want) {
		t.Errorf("the app got traceparents %q for %s; want %q, the upstream span's", sent, landing, want)
	}
	for _, s := range spans {
		for _, kv := range s.Attributes {
			if v := s.Attr(kv.Key); strings.Contains(v, "alice") || strings.Contains(v, "x=1") {
				t.Errorf("span %q attribute %s=%q names the user or carries the query", s.Name, kv.Key, v)
			}
		}
	}

	// Tracing off: the session (in Redis) survives the restart, the app gets no traceparent.
	before := len(rc.Spans())
	wantSignedIn(t, "after a restart without tracing", proxy.url, cookies, alice)
	if tp := app.traceparents("/api/whoami"); len(tp) != 1 || tp[0] != "" {
		t.Errorf("with tracing off the app got traceparents %q; want none", tp)
	}
	proxy.restart(t) // flushes nothing: there is no exporter
	if after := len(rc.Spans()); after != before {
		t.Errorf("with tracing off the receiver got %d more spans", after-before)
	}
}
