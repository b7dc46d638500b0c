package authproxy

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/otlptest"
)

// withTracing traces the server under test with tr (see newTestEnv).
func withTracing(tr *Tracing) envOption { return func(s *envSetup) { s.tracing = tr } }

// newTestTracing is tracing as NewTracing builds it from the environment,
// exporting to an OTLP/HTTP receiver in the test; extra are more OTEL_*
// variables. The tests that use it set the process environment and so
// cannot run in parallel.
func newTestTracing(t *testing.T, extra ...string) (*Tracing, *otlptest.Receiver) {
	t.Helper()
	rc := otlptest.New(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rc.URL)
	t.Setenv("OTEL_SERVICE_NAME", "authproxy-test")
	for i := 0; i+1 < len(extra); i += 2 {
		t.Setenv(extra[i], extra[i+1])
	}
	tr, err := NewTracing(context.Background(), os.LookupEnv, nil, "test")
	if err != nil {
		t.Fatalf("NewTracing: %v", err)
	}
	if tr == nil {
		t.Fatal("NewTracing returned no tracing with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, rc
}

// flushed shuts tr down, which exports every span ended so far, and
// returns what the receiver got.
func flushed(t *testing.T, tr *Tracing, rc *otlptest.Receiver) []otlptest.Span {
	t.Helper()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	return rc.Spans()
}

// one returns the only span named name, failing the test otherwise.
func one(t *testing.T, spans []otlptest.Span, name string) otlptest.Span {
	t.Helper()
	got := otlptest.Find(spans, name)
	if len(got) != 1 {
		t.Fatalf("got %d spans named %q, want 1; all: %v", len(got), name, otlptest.Names(spans))
	}
	return got[0]
}

// childOf fails the test unless child is a child span of parent.
func childOf(t *testing.T, child, parent otlptest.Span) {
	t.Helper()
	if child.TraceID() != parent.TraceID() || child.ParentID() != parent.SpanID() {
		t.Errorf("span %q (trace %s, parent %s) is not a child of %q (trace %s, span %s)",
			child.Name, child.TraceID(), child.ParentID(), parent.Name, parent.TraceID(), parent.SpanID())
	}
}

// traceparentIDs splits a W3C traceparent into its trace id, parent id and
// flags.
func traceparentIDs(t *testing.T, tp string) (traceID, parentID, flags string) {
	t.Helper()
	f := strings.Split(tp, "-")
	if len(f) != 4 || f[0] != "00" || len(f[1]) != 32 || len(f[2]) != 16 {
		t.Fatalf("traceparent %q is not a W3C traceparent", tp)
	}
	return f[1], f[2], f[3]
}

// noPersonalData fails the test if any span's name or attribute carries
// one of secrets.
func noPersonalData(t *testing.T, spans []otlptest.Span, secrets ...string) {
	t.Helper()
	for _, s := range spans {
		for _, secret := range secrets {
			if strings.Contains(s.Name, secret) {
				t.Errorf("span name %q contains %q", s.Name, secret)
			}
			for _, kv := range s.Attributes {
				if v := s.Attr(kv.Key); strings.Contains(v, secret) {
					t.Errorf("span %q attribute %s=%q contains %q", s.Name, kv.Key, v, secret)
				}
			}
		}
	}
}

// TestTracingSignInAndProxy signs in through the real handler chain with
// tracing exported to an OTLP receiver, and checks the spans and their
// links: the callback's token call and the proxied request's upstream call
// are children of their server spans, the upstream's traceparent names the
// upstream span, and no span records who the user is.
func TestTracingSignInAndProxy(t *testing.T) {
	tr, rc := newTestTracing(t)
	e := newTestEnv(t, withTracing(tr), withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	c := e.browser()
	got := fromUpstream(t, e.signIn(t, c, "/app/page?q=secret-query"))
	if got.Path != "/app/page" {
		t.Fatalf("signed in to %q, want /app/page", got.Path)
	}
	public := fromUpstream(t, e.navigate(t, c, "/public/info"))
	e.navigate(t, c, healthPath)
	cookie := e.sessionCookie(c)
	spans := flushed(t, tr, rc)

	if s := one(t, spans, "idp discovery"); s.ParentID() != "" || s.Attr("url.path") != "/.well-known/openid-configuration" {
		t.Errorf("discovery span: parent %q path %q, want a root span for the discovery document", s.ParentID(), s.Attr("url.path"))
	}
	one(t, spans, "idp jwks") // go-oidc's shared key set: a trace of its own

	callback := one(t, spans, "authproxy callback")
	token := one(t, spans, "idp token")
	childOf(t, token, callback)
	if token.Attr("http.response.status_code") != "200" || token.Attr("url.path") != "/token" {
		t.Errorf("token span: status %q path %q, want 200 /token", token.Attr("http.response.status_code"), token.Attr("url.path"))
	}
	if callback.Attr("authproxy.idp") != "oidc" || callback.Attr("http.response.status_code") != "302" {
		t.Errorf("callback span: idp %q status %q, want oidc 302", callback.Attr("authproxy.idp"), callback.Attr("http.response.status_code"))
	}

	apps := otlptest.Find(spans, "authproxy app")
	ups := otlptest.Find(spans, "upstream")
	if len(apps) != 3 || len(ups) != 2 { // sent to sign in, proxied, public
		t.Fatalf("got %d app and %d upstream spans, want 3 and 2; all: %v", len(apps), len(ups), otlptest.Names(spans))
	}
	byOutcome := map[string]otlptest.Span{}
	for _, s := range apps {
		byOutcome[s.Attr("authproxy.outcome")] = s
	}
	proxied, ok := byOutcome[outcomeProxied]
	if !ok {
		t.Fatalf("no app span with outcome proxied; outcomes: %v", byOutcome)
	}
	if _, ok := byOutcome[outcomeSignIn]; !ok {
		t.Errorf("no app span with outcome sign_in; outcomes: %v", byOutcome)
	}
	pub := byOutcome[outcomePublic]
	if pub.Attr("authproxy.rule") != "AUTHPROXY_SKIP_AUTH_ROUTES" || pub.Has("authproxy.idp") {
		t.Errorf("public span: rule %q, idp present %v; want the skip-auth rule and no IdP", pub.Attr("authproxy.rule"), pub.Has("authproxy.idp"))
	}
	if proxied.Attr("authproxy.idp") != "oidc" || proxied.Attr("http.response.status_code") != "200" || proxied.Attr("http.request.method") != "GET" {
		t.Errorf("proxied span: idp %q status %q method %q", proxied.Attr("authproxy.idp"), proxied.Attr("http.response.status_code"), proxied.Attr("http.request.method"))
	}

	for _, tc := range []struct {
		name   string
		server otlptest.Span
		echo   upstreamEcho
	}{
		{"proxied", proxied, got},
		{"public", pub, public},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var up otlptest.Span
			for _, u := range ups {
				if u.ParentID() == tc.server.SpanID() {
					up = u
				}
			}
			if up.Span == nil {
				t.Fatalf("no upstream span is a child of the %s server span", tc.name)
			}
			childOf(t, up, tc.server)
			traceID, parentID, flags := traceparentIDs(t, tc.echo.Header.Get("Traceparent"))
			if traceID != tc.server.TraceID() || parentID != up.SpanID() || flags != "01" {
				t.Errorf("upstream got traceparent %q; want trace %s, parent %s (the upstream span), sampled",
					tc.echo.Header.Get("Traceparent"), tc.server.TraceID(), up.SpanID())
			}
		})
	}

	if len(otlptest.Find(spans, "authproxy healthz")) != 0 || len(spans) == 0 {
		t.Errorf("probes are traced, or nothing is: %v", otlptest.Names(spans))
	}
	for _, s := range spans {
		if s.Resource["service.name"] != "authproxy-test" || s.Resource["service.version"] != "test" {
			t.Errorf("span %q resource %v, want OTEL_SERVICE_NAME and the version", s.Name, s.Resource)
		}
	}
	noPersonalData(t, spans, "ada", "user-123", "secret-query", cookie, e.idp.lastAccessToken(), e.idp.lastIDToken())
}

// TestTracingRefresh checks that a refresh on the way to the upstream is a
// child span of the request that needed it.
func TestTracingRefresh(t *testing.T) {
	tr, rc := newTestTracing(t)
	e := newTestEnv(t, withTracing(tr), withIdP(shortTokens))
	c := e.browser()
	landing := e.signInNoLanding(t, c, "/app")
	fromUpstream(t, e.navigate(t, c, landing))
	spans := flushed(t, tr, rc)

	refresh := one(t, spans, "idp refresh")
	app := otlptest.Find(spans, "authproxy app")
	var proxied otlptest.Span
	for _, s := range app {
		if s.Attr("authproxy.outcome") == outcomeProxied {
			proxied = s
		}
	}
	if proxied.Span == nil {
		t.Fatalf("no proxied app span; all: %v", otlptest.Names(spans))
	}
	childOf(t, refresh, proxied)
}

// TestTracingIncomingParent checks whose trace context authproxy joins: a
// trusted proxy's becomes the parent (and a parent-based sampler follows
// its decision, and its baggage goes on); any other client's is only
// linked, so it can force no sampling, and none of its trace context
// reaches the upstream.
func TestTracingIncomingParent(t *testing.T) {
	const (
		clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		clientSpan  = "00f067aa0ba902b7"
		sampled     = "00-" + clientTrace + "-" + clientSpan + "-01"
	)
	for _, tc := range []struct {
		name     string
		trusted  string // AUTHPROXY_TRUSTED_PROXIES
		sampler  string // OTEL_TRACES_SAMPLER
		exported bool   // the server span is sampled and exported
		joined   bool   // in the client's trace, as a child of its span
	}{
		{"trusted proxy's parent", "127.0.0.1/32", "parentbased_always_on", true, true},
		{"trusted proxy forces sampling", "127.0.0.1/32", "parentbased_always_off", true, true},
		{"untrusted client is linked", "", "parentbased_always_on", true, false},
		{"untrusted client cannot force sampling", "", "parentbased_always_off", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, rc := newTestTracing(t, "OTEL_TRACES_SAMPLER", tc.sampler)
			opts := []envOption{withTracing(tr), withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/")}
			if tc.trusted != "" {
				opts = append(opts, withVar("AUTHPROXY_TRUSTED_PROXIES", tc.trusted))
			}
			e := newTestEnv(t, opts...)
			echo := fromUpstream(t, e.request(t, e.browser(), http.MethodGet, "/public/x", "Traceparent", sampled, "Tracestate", "client=1", "Baggage", "tenant=blue"))
			spans := flushed(t, tr, rc)
			apps := otlptest.Find(spans, "authproxy app")

			traceID, _, flags := traceparentIDs(t, echo.Header.Get("Traceparent"))
			if tc.joined != (traceID == clientTrace) {
				t.Errorf("upstream got traceparent %q; want the client's trace: %v", echo.Header.Get("Traceparent"), tc.joined)
			}
			if want := map[bool]string{true: "01", false: "00"}[tc.exported]; flags != want {
				t.Errorf("upstream got traceparent %q, want flags %s", echo.Header.Get("Traceparent"), want)
			}
			if !tc.joined && echo.Header.Get("Tracestate") != "" {
				t.Errorf("upstream got the untrusted client's tracestate %q", echo.Header.Get("Tracestate"))
			}
			if want := map[bool]string{true: "tenant=blue", false: ""}[tc.joined]; echo.Header.Get("Baggage") != want {
				t.Errorf("upstream got baggage %q, want %q", echo.Header.Get("Baggage"), want)
			}
			if !tc.exported {
				if len(apps) != 0 {
					t.Errorf("exported %d server spans; the sampler says none", len(apps))
				}
				return
			}
			if len(apps) != 1 {
				t.Fatalf("got %d server spans, want 1; all %v", len(apps), otlptest.Names(spans))
			}
			s := apps[0]
			if tc.joined {
				if s.TraceID() != clientTrace || s.ParentID() != clientSpan {
					t.Errorf("server span in trace %s under %s, want the trusted proxy's %s under %s", s.TraceID(), s.ParentID(), clientTrace, clientSpan)
				}
				return
			}
			if s.TraceID() == clientTrace || s.ParentID() != "" {
				t.Errorf("server span in trace %s under %q, want a new root", s.TraceID(), s.ParentID())
			}
			if len(s.Links) != 1 || otlptest.HexID(s.Links[0].TraceId) != clientTrace || otlptest.HexID(s.Links[0].SpanId) != clientSpan {
				t.Errorf("server span links %v, want one to the client's span", s.Links)
			}
		})
	}
}

// TestTracingUntrustedBaggage checks that an untrusted client's baggage,
// sent without a trace context, does not reach the upstream as authproxy's.
func TestTracingUntrustedBaggage(t *testing.T) {
	tr, _ := newTestTracing(t)
	e := newTestEnv(t, withTracing(tr), withVar("AUTHPROXY_SKIP_AUTH_ROUTES", "/public/"))
	echo := fromUpstream(t, e.request(t, e.browser(), http.MethodGet, "/public/x", "Baggage", "tenant=blue"))
	if v := echo.Header.Get("Baggage"); v != "" {
		t.Errorf("upstream got the untrusted client's baggage %q", v)
	}
}

// TestTracingOff checks that without an OTLP endpoint there is no tracing
// (no exporter, nothing sent) and the upstream gets no traceparent that the
// client did not send.
func TestTracingOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
	}{
		{"no variables", nil},
		{"sampler alone", map[string]string{"OTEL_TRACES_SAMPLER": "always_on", "OTEL_SERVICE_NAME": "x"}},
		{"SDK disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", "OTEL_TRACES_EXPORTER": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTracing(context.Background(), mapLookup(tc.vars), nil, "test")
			if tr != nil || err != nil {
				t.Fatalf("NewTracing = %v, %v; want no tracing", tr, err)
			}
		})
	}
	e := newTestEnv(t)
	if e.srv.tracer != nil {
		t.Fatal("tracing on without a TracerProvider")
	}
	if _, traced := e.srv.proxy.Transport.(timedTransport).next.(*tracedTransport); traced {
		t.Error("the upstream transport is traced without a TracerProvider")
	}
	c := e.browser()
	e.signIn(t, c, "/app")
	got := fromUpstream(t, e.navigate(t, c, "/app/page"))
	if v := got.Header.Get("Traceparent"); v != "" {
		t.Errorf("upstream got traceparent %q with tracing off", v)
	}
	const client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	got = fromUpstream(t, e.request(t, c, http.MethodGet, "/app/page", "Traceparent", client))
	if v := got.Header.Get("Traceparent"); v != client {
		t.Errorf("upstream got traceparent %q, want the client's own %q untouched with tracing off", v, client)
	}
}

// TestNewTracingRefuses checks that a tracing configuration authproxy
// cannot honour is refused at start, naming the variable.
func TestNewTracingRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, variable, value, want string
	}{
		{"gRPC protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"traces gRPC protocol", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"unknown sampler", "OTEL_TRACES_SAMPLER", "jaeger_remote", "OTEL_TRACES_SAMPLER"},
		{"ratio out of range", "OTEL_TRACES_SAMPLER_ARG", "2", "OTEL_TRACES_SAMPLER_ARG"},
		{"unknown propagator", "OTEL_PROPAGATORS", "tracecontext,b3", "OTEL_PROPAGATORS"},
		{"console exporter", "OTEL_TRACES_EXPORTER", "console", "OTEL_TRACES_EXPORTER"},
		{"bad resource attributes", "OTEL_RESOURCE_ATTRIBUTES", "team=a,novalue", "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "bad resource attributes" {
				// resource.WithFromEnv reads the process environment.
				t.Setenv(tc.variable, tc.value)
			}
			vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", tc.variable: tc.value}
			if tc.variable == "OTEL_TRACES_SAMPLER_ARG" {
				vars["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
			}
			tr, err := NewTracing(context.Background(), mapLookup(vars), nil, "test")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				_ = tr.Shutdown(context.Background())
				t.Fatalf("NewTracing: %v; want an error naming %s", err, tc.want)
			}
		})
	}
}

// TestTracingExportFailureLogged checks that spans that cannot be sent
// (no collector) are reported in authproxy's own log.
func TestTracingExportFailureLogged(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+closedAddr(t))
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "100")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
	logs := &lockedBuffer{}
	tr, err := NewTracing(context.Background(), os.LookupEnv, slog.New(slog.NewJSONHandler(logs, nil)), "test")
	if err != nil || tr == nil {
		t.Fatalf("NewTracing = %v, %v", tr, err)
	}
	defer tr.Shutdown(context.Background())
	_, span := tr.Provider.Tracer("test").Start(context.Background(), "lost")
	span.End()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"trace export failed"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no export failure logged; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
