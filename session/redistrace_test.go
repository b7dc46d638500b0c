package session

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestRedisTracing runs commands against a real Redis with a
// TracerProvider and checks that each is a client span, a child of the
// caller's span, named after the command, without its keys or values;
// commands outside a trace make no span.
func TestRedisTracing(t *testing.T) {
	srv := startRedis(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b, err := NewRedisBackend(RedisOptions{URL: "redis://" + srv.addr() + "/0", TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	const key, value = "ticket-5f0c2a3e", "sealed-session-value"
	if err := b.Set(ctx, key, []byte(value), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "missing"); !errors.Is(err, ErrBackendMiss) {
		t.Fatalf("Get of a missing key: %v, want ErrBackendMiss", err)
	}
	if err := b.AddToSet(ctx, "index", "member-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	parent.End()
	if err := b.Set(context.Background(), "untraced", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}

	want := map[string]int{"redis SET": 1, "redis GET": 2, "redis PIPELINE": 1}
	got := map[string]int{}
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		got[s.Name()]++
		switch {
		case want[s.Name()] == 0:
			// A new connection's HELLO, inside the command that dialled.
			if s.Parent().TraceID() != parent.SpanContext().TraceID() {
				t.Errorf("span %q is outside the caller's trace", s.Name())
			}
		case s.Parent().SpanID() != parent.SpanContext().SpanID():
			t.Errorf("span %q is not a child of the caller's span", s.Name())
		}
		if s.Status().Code != 0 {
			t.Errorf("span %q has status %v; a missing key is no failure", s.Name(), s.Status())
		}
		for _, kv := range s.Attributes() {
			if v := kv.Value.Emit(); strings.Contains(v, key) || strings.Contains(v, value) || strings.Contains(v, "member-1") {
				t.Errorf("span %q attribute %s=%q records a key or value", s.Name(), kv.Key, v)
			}
		}
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("got %d %q spans, want %d; all: %v", got[name], name, n, got)
		}
	}
}

// TestRedisTracingOff checks that a backend without a TracerProvider adds
// no hook.
func TestRedisTracingOff(t *testing.T) {
	b, err := NewRedisBackend(RedisOptions{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.hook != nil {
		t.Errorf("hook %T added without a TracerProvider", b.hook)
	}
}
