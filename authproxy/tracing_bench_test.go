package authproxy

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkHotPathTraced is BenchmarkHotPath's signed-in cookie case with
// tracing on, as NewTracing sets it up (a batch span processor) but
// exporting to nowhere: "sampled" records the server and upstream spans of
// every request, "unsampled" (a sampler that says no) makes them
// non-recording. BenchmarkHotPath/cookie is the same with tracing off.
//
//	go test ./authproxy -run '^$' -bench 'HotPath(Traced)?/cookie' -benchmem
func BenchmarkHotPathTraced(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
	}{
		{"cookie_sampled", sdktrace.ParentBased(sdktrace.AlwaysSample())},
		{"cookie_unsampled", sdktrace.ParentBased(sdktrace.NeverSample())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(tc.sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			e := newBenchServer(b, "cookie", nil)
			// As New does with Options.TracerProvider; the proxy is the
			// bench's in-process upstream again, now traced.
			e.srv.setTracing(tp, propagation.TraceContext{})
			e.srv.proxy = e.srv.newReverseProxy(e.up, e.srv.cfg.Upstream)
			cookie := e.mint(b, benchSession())
			serveLoop(b, e.srv, benchRequest("/app/page", cookie))
		})
	}
}
