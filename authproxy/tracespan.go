package authproxy

import (
	"context"
	"errors"
	"net"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authproxy/authproxy/providers"
)

// The spans on a request's path, when tracing is on (Options.TracerProvider):
//
//   - one server span per request, "authproxy <route>", from accessLog;
//   - "idp <call>" client spans for the calls to the identity provider
//     (providers.Operation names them);
//   - "redis <COMMAND>" client spans from the session store (session);
//   - an "upstream" client span for the proxied request, whose trace
//     context goes to the upstream in traceparent (OTEL_PROPAGATORS).
//
// Attributes say what happened, never who: no email, user, token, cookie,
// client address, query string, nor the path of a request to the app.

// tracerName is the instrumentation scope of authproxy's spans.
const tracerName = "github.com/authproxy/authproxy"

// Attribute keys of the server span beside the semantic conventions'.
const (
	attrOutcome   = attribute.Key("authproxy.outcome")
	attrRule      = attribute.Key("authproxy.rule")
	attrIdP       = attribute.Key("authproxy.idp")
	attrRequestID = attribute.Key("authproxy.request_id")
)

// serverSpanName names the server span of a request to path, or returns
// "" for the probes (/healthz, /readyz, /metrics), which are not traced.
// Every name is a constant: a span name must not grow with the paths
// clients send.
func serverSpanName(path string) string {
	switch path {
	case healthPath, readyPath, metricsPath:
		return ""
	case startPath:
		return "authproxy start"
	case callbackPath:
		return "authproxy callback"
	case signOutPath:
		return "authproxy sign_out"
	case userinfoPath:
		return "authproxy userinfo"
	case authPath:
		return "authproxy auth"
	case backchannelLogoutPath:
		return "authproxy backchannel_logout"
	case jwksPath:
		return "authproxy jwks"
	}
	if isOwnPath(path) {
		return "authproxy oauth2"
	}
	return "authproxy app"
}

// startServerSpan starts r's server span, or returns r's context and nil
// when tracing is off or r is a probe. The trace context in r's headers is
// the span's parent only when r comes from AUTHPROXY_TRUSTED_PROXIES: any
// other client's becomes a link, so that a client can neither force nor
// forbid sampling (a parent-based OTEL_TRACES_SAMPLER follows trusted
// parents only) nor graft authproxy's spans onto a trace of its choosing.
func (s *Server) startServerSpan(r *http.Request) (context.Context, trace.Span) {
	ctx := r.Context()
	if s.tracer == nil {
		return ctx, nil
	}
	name := serverSpanName(r.URL.Path)
	if name == "" {
		return ctx, nil
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", spanMethod(r.Method))),
	}
	remote := s.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	if s.trusted.contains(r.RemoteAddr) {
		ctx = remote
	} else if sc := trace.SpanContextFromContext(remote); sc.IsValid() {
		opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	return s.tracer.Start(ctx, name, opts...)
}

// endServerSpan records how the request ended and ends span.
func (s *Server) endServerSpan(span trace.Span, ri *requestInfo, status int, outcome string) {
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 5)
		attrs = append(attrs,
			attribute.Int("http.response.status_code", status),
			attrOutcome.String(outcome),
			attrRequestID.String(ri.id))
		if ri.rule != nil {
			attrs = append(attrs, attrRule.String(ri.rule.Source))
		}
		if outcome != outcomePublic {
			attrs = append(attrs, attrIdP.String(s.idpName))
		}
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// spanMethod is the request method as the semantic conventions record it:
// a method outside the known set is "_OTHER", so that clients cannot fill
// the collector with methods of their making.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// tracedTransport makes a client span of every request it sends, a child
// of the span in the request's context. With inject it also replaces the
// request's trace context headers (a client's included) with the span's.
type tracedTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
	name   func(*http.Request) string
	// withPath records the request's path: the IdP's endpoints, never the
	// app's, whose paths may name people.
	withPath bool
	inject   propagation.TextMapPropagator // nil: none
}

func (t *tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, attribute.String("http.request.method", spanMethod(req.Method)),
		attribute.String("server.address", req.URL.Hostname()))
	if t.withPath {
		attrs = append(attrs, attribute.String("url.path", req.URL.Path))
	}
	ctx, span := t.tracer.Start(req.Context(), t.name(req), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()
	if t.inject != nil {
		req = req.Clone(ctx) // a RoundTripper must not change its caller's request
		for _, h := range t.inject.Fields() {
			req.Header.Del(h)
		}
		t.inject.Inject(ctx, propagation.HeaderCarrier(req.Header))
	} else {
		req = req.WithContext(ctx)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		// Not err itself: a url.Error quotes the URL, query included.
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			span.SetStatus(codes.Error, "timeout")
		} else {
			span.SetStatus(codes.Error, "no answer")
		}
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// traceUpstream wraps the upstream transport with the "upstream" span and
// traceparent propagation; it returns next itself when tracing is off. The
// span ends when the upstream's response headers arrive: a stream or
// WebSocket keeps only the server span open.
func (s *Server) traceUpstream(next http.RoundTripper) http.RoundTripper {
	if s.tracer == nil {
		return next
	}
	return &tracedTransport{
		next: next, tracer: s.tracer, inject: s.propagator,
		name: func(*http.Request) string { return "upstream" },
	}
}

// idpTransport is the transport of the client that talks to the IdP:
// "idp <call>" spans when tp is not nil, else nil (http.DefaultTransport).
// No trace context is sent to the IdP, which is another party's.
func idpTransport(tp trace.TracerProvider) http.RoundTripper {
	if tp == nil {
		return nil
	}
	return &tracedTransport{
		next: http.DefaultTransport, tracer: tp.Tracer(tracerName), withPath: true,
		name: func(r *http.Request) string { return idpSpanName(providers.Operation(r)) },
	}
}

// idpSpanName names the span of an IdP call with a constant.
func idpSpanName(op string) string {
	switch op {
	case providers.OpDiscovery:
		return "idp discovery"
	case providers.OpJWKS:
		return "idp jwks"
	case providers.OpToken:
		return "idp token"
	case providers.OpRefresh:
		return "idp refresh"
	case providers.OpUserinfo:
		return "idp userinfo"
	case providers.OpGroups:
		return "idp groups"
	}
	return "idp"
}
