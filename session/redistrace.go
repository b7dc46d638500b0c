package session

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracingHook is a go-redis hook that makes one client span per command
// or pipeline, a child of the span in the command's context; a command
// outside any trace (a new connection's HELLO, background work) makes
// none. A span carries the command's name only, never its keys or values
// (session ids, sealed sessions).
type tracingHook struct {
	tracer trace.Tracer
}

var _ redis.Hook = tracingHook{}

// newTracingHook returns the hook, or nil when tp is nil (tracing off).
func newTracingHook(tp trace.TracerProvider) redis.Hook {
	if tp == nil {
		return nil
	}
	return tracingHook{tracer: tp.Tracer("github.com/authproxy/authproxy/session")}
}

var redisSystem = attribute.String("db.system.name", "redis")

func (tracingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h tracingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmd)
		}
		name := strings.ToUpper(cmd.FullName())
		ctx, span := h.tracer.Start(ctx, "redis "+name, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(redisSystem, attribute.String("db.operation.name", name)))
		defer span.End()
		err := next(ctx, cmd)
		endRedisSpan(span, err)
		return err
	}
}

func (h tracingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanContextFromContext(ctx).IsValid() {
			return next(ctx, cmds)
		}
		ctx, span := h.tracer.Start(ctx, "redis PIPELINE", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(redisSystem, attribute.String("db.operation.name", "PIPELINE"),
				attribute.Int("db.operation.batch.size", len(cmds))))
		defer span.End()
		err := next(ctx, cmds)
		endRedisSpan(span, err)
		return err
	}
}

// endRedisSpan marks span failed when err is a failure, not a missing key.
// The status says what kind of failure only: go-redis's errors can quote
// a command's arguments.
func endRedisSpan(span trace.Span, err error) {
	var nerr net.Error
	switch {
	case err == nil || errors.Is(err, redis.Nil):
	case errors.As(err, &nerr) && nerr.Timeout() || errors.Is(err, context.DeadlineExceeded):
		span.SetStatus(codes.Error, "timeout")
	default:
		span.SetStatus(codes.Error, "redis error")
	}
}
