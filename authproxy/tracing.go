package authproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/authproxy/authproxy/internal/otlphttp"
	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is OpenTelemetry tracing as the standard OTEL_* variables
// configure it: spans exported over OTLP/HTTP by a batching span processor.
// Build it with NewTracing; a nil *Tracing is tracing off, and its methods
// do nothing.
type Tracing struct {
	// Provider makes the tracers; Options.TracerProvider.
	Provider trace.TracerProvider
	// Propagator reads and writes the trace context in HTTP headers
	// (OTEL_PROPAGATORS); Options.Propagator.
	Propagator propagation.TextMapPropagator

	sdk *sdktrace.TracerProvider
}

// tracingOff reports whether the variables leave tracing off: no OTLP
// endpoint, or the SDK or the traces exporter switched off.
func tracingOff(lookup Lookup) bool {
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	switch {
	case strings.EqualFold(get("OTEL_SDK_DISABLED"), "true"):
		return true
	case get("OTEL_TRACES_EXPORTER") == "none":
		return true
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == ""
}

// NewTracing returns the tracing that the OTEL_* variables describe, or
// nil (tracing off, no exporter, no goroutine) unless
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set.
// It refuses, naming the variable, a protocol other than http/protobuf, a
// sampler or propagator it does not know, and malformed resource
// attributes, and bad exporter variables (endpoint, headers, timeout,
// compression, certificates). lookup should be the process environment
// (os.LookupEnv): the batch span processor and the resource read their own
// OTEL_* variables (OTEL_BSP_*, OTEL_RESOURCE_ATTRIBUTES) from it.
//
// Export failures are logged to log, throttled like the session store's,
// and so are the SDK's own messages; these are OpenTelemetry's process-wide
// error handler and logger, so call NewTracing once.
// Call Shutdown before the process exits, to send the last spans.
func NewTracing(ctx context.Context, lookup Lookup, log *slog.Logger, version string) (*Tracing, error) {
	if tracingOff(lookup) {
		return nil, nil
	}
	get := func(name string) string { v, _ := lookup(name); return strings.TrimSpace(v) }
	var errs []error
	if v := get("OTEL_TRACES_EXPORTER"); v != "" && v != "otlp" {
		errs = append(errs, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported; want otlp or none", v))
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := get(name); v != "" {
			if v != "http/protobuf" {
				errs = append(errs, fmt.Errorf("%s: %q is not supported; want http/protobuf", name, v))
			}
			break // the traces variable, when set, wins
		}
	}
	sampler, err := samplerFrom(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		errs = append(errs, err)
	}
	prop, err := propagatorFrom(get("OTEL_PROPAGATORS"))
	if err != nil {
		errs = append(errs, err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "authproxy"), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil {
		errs = append(errs, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err))
	}
	client, err := otlphttp.New(lookup, "authproxy/"+version)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("authproxy: tracing: %w", err)
	}
	exp, err := otlptrace.New(ctx, client)
	if err != nil {
		return nil, fmt.Errorf("authproxy: tracing: starting the exporter: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	failures := newLogThrottle(log, "trace export failed", storeLogEvery)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { failures.failed(err) }))
	otel.SetLogger(logr.FromSlogHandler(log.Handler())) // the SDK's own warnings, in this log
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracing{Provider: sdk, Propagator: prop, sdk: sdk}, nil
}

// Shutdown sends the spans not yet exported and stops the exporter; ctx
// bounds how long it waits for the collector.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("authproxy: tracing: flushing spans: %w", err)
	}
	return nil
}

// samplerFrom is OTEL_TRACES_SAMPLER's sampler: parentbased_always_on by
// default, as the specification says. A parent-based sampler follows the
// sampling decision of a trusted caller only (see serverSpan); the others
// ignore every caller's.
func samplerFrom(name, arg string) (sdktrace.Sampler, error) {
	ratio := 1.0
	if arg != "" && strings.HasSuffix(name, "traceidratio") {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q: want a ratio from 0 to 1", arg)
		}
		ratio = r
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio)), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not supported; want always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio", name)
}

// propagatorFrom is OTEL_PROPAGATORS' propagator: W3C trace context and
// baggage by default, as the specification says; "none" propagates nothing.
func propagatorFrom(list string) (propagation.TextMapPropagator, error) {
	if list == "" {
		list = "tracecontext,baggage"
	}
	var ps []propagation.TextMapPropagator
	for name := range strings.SplitSeq(list, ",") {
		switch name = strings.TrimSpace(name); name {
		case "tracecontext":
			ps = append(ps, propagation.TraceContext{})
		case "baggage":
			ps = append(ps, propagation.Baggage{})
		case "none", "":
		default:
			return nil, fmt.Errorf("OTEL_PROPAGATORS: %q is not supported; want tracecontext, baggage or none", name)
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...), nil
}
