package authproxy

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/authproxy/authproxy/policy"
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

// setTracing turns tracing on with tp (Options.TracerProvider), or leaves
// it off when tp is nil. New calls it before it builds the reverse proxy.
func (s *Server) setTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) {
	if tp == nil {
		return
	}
	s.tracer = tp.Tracer(tracerName)
	s.propagator = prop
	if s.propagator == nil {
		s.propagator = propagation.TraceContext{}
	}
	s.traceFields = s.propagator.Fields()
	// Named IdPs will name themselves; until then, the kind.
	s.idpName = cmp.Or(s.cfg.Provider, "default")
}

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
// the span's parent (and its baggage the request's) only when r comes from
// AUTHPROXY_TRUSTED_PROXIES: any other client's becomes a link, so that a client can neither force nor
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
	remote := s.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	var span trace.Span
	switch sc := trace.SpanContextFromContext(remote); {
	case remote != ctx && s.trusted.contains(r.RemoteAddr):
		ctx, span = s.tracer.Start(remote, name, serverKind)
	case sc.IsValid():
		ctx, span = s.tracer.Start(ctx, name, serverKind, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: sc}))
	default: // nothing from the client is kept, its baggage included
		ctx, span = s.tracer.Start(ctx, name, serverKind)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("http.request.method", spanMethod(r.Method)))
	}
	return ctx, span
}

// The span kinds, made once: an option is an interface value.
var (
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
	clientKind = trace.WithSpanKind(trace.SpanKindClient)
)

// endServerSpan records how the request ended and ends span.
func (s *Server) endServerSpan(span trace.Span, ri *requestInfo, status int, outcome string) {
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 4)
		attrs = append(attrs,
			attribute.Int("http.response.status_code", status),
			attrOutcome.String(outcome),
			attrRequestID.String(ri.id))
		if outcome != outcomePublic {
			attrs = append(attrs, attrIdP.String(cmp.Or(ri.idp, s.idpName)))
		}
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// spanRule records on r's server span where the policy rule that matched
// r comes from (nil: none matched).
func spanRule(r *http.Request, rule *policy.Rule) {
	if span := trace.SpanFromContext(r.Context()); rule != nil && span.IsRecording() {
		span.SetAttributes(attrRule.String(rule.Source))
	}
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
// of the span in the request's context, named by name. It sends no trace
// context.
type tracedTransport struct {
	next   http.RoundTripper
	tracer trace.Tracer
	name   func(*http.Request) string
}

func (t *tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(req.Context(), t.name(req), clientKind)
	if span.IsRecording() {
		// The IdP's endpoints: its paths name no one.
		span.SetAttributes(attribute.String("http.request.method", spanMethod(req.Method)),
			attribute.String("server.address", req.URL.Hostname()),
			attribute.String("url.path", req.URL.Path))
	}
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	endClientSpan(span, resp, err)
	return resp, err
}

// endClientSpan records how a request ended and ends span.
func endClientSpan(span trace.Span, resp *http.Response, err error) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	if err != nil {
		// Not err itself: a url.Error quotes the URL, query included.
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			span.SetStatus(codes.Error, "timeout")
		} else {
			span.SetStatus(codes.Error, "no answer")
		}
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, "")
	}
}

// traceUpstream starts the "upstream" span of an outgoing request, from
// the proxy's Rewrite, and returns the request to send in its stead: the
// span in its context, and in its header the span's trace context
// (OTEL_PROPAGATORS), replacing whatever trace context the client sent.
// It returns out itself when tracing is off. The header is the reverse
// proxy's own copy; replacing out is what Rewrite may do.
func (s *Server) traceUpstream(out *http.Request) *http.Request {
	if s.tracer == nil {
		return out
	}
	ctx, span := s.tracer.Start(out.Context(), "upstream", clientKind)
	if span.IsRecording() {
		// Not the path: an app's paths may name people.
		span.SetAttributes(attribute.String("http.request.method", spanMethod(out.Method)),
			attribute.String("server.address", out.URL.Hostname()))
	}
	for _, h := range s.traceFields {
		out.Header.Del(h)
	}
	s.propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	return out.WithContext(ctx)
}

// upstreamSpanTransport ends the span traceUpstream started when the
// upstream's response headers arrive: a stream or WebSocket keeps only the
// server span open.
type upstreamSpanTransport struct{ next http.RoundTripper }

func (t upstreamSpanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	endClientSpan(trace.SpanFromContext(req.Context()), resp, err)
	return resp, err
}

// tracedUpstream wraps the upstream transport to end the upstream span;
// next itself when tracing is off.
func (s *Server) tracedUpstream(next http.RoundTripper) http.RoundTripper {
	if s.tracer == nil {
		return next
	}
	return upstreamSpanTransport{next: next}
}

// idpTransport wraps the transport of the client that talks to the IdP in
// "idp <call>" spans when tp is not nil (nil: no wrapping). No trace context
// is sent to the IdP, which is another party's.
func idpTransport(tp trace.TracerProvider) func(http.RoundTripper) http.RoundTripper {
	if tp == nil {
		return nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		return &tracedTransport{
			next: next, tracer: tp.Tracer(tracerName),
			name: func(r *http.Request) string { return idpSpanName(providers.Operation(r)) },
		}
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
