package session

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRedisLogger(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newRedisLogger(slog.New(slog.NewJSONHandler(&buf, nil)), func() time.Time { return now })
	ctx := context.Background()
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	for range 3 {
		l.Printf(ctx, dial, 1, "dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	l.Printf(ctx, "sentinel: new master=%q addr=%q", "mymaster", "127.0.0.1:6380")
	now = now.Add(redisLogEvery)
	l.Printf(ctx, dial, 1, "dial tcp 127.0.0.1:6379: i/o timeout")

	var got []map[string]any
	for line := range strings.Lines(buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		got = append(got, m)
	}
	want := []map[string]any{
		{"level": "WARN", "detail": "connection pool: failed to dial after 1 attempts: dial tcp 127.0.0.1:6379: connect: connection refused"},
		{"level": "INFO", "detail": `sentinel: new master="mymaster" addr="127.0.0.1:6380"`},
		{"level": "WARN", "detail": "connection pool: failed to dial after 1 attempts: dial tcp 127.0.0.1:6379: i/o timeout", "repeated": float64(2)},
	}
	if len(got) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(got), len(want), buf.String())
	}
	for i, w := range want {
		if got[i]["msg"] != "redis client" {
			t.Errorf("line %d: msg %q, want \"redis client\"", i, got[i]["msg"])
		}
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, got[i][k], v)
			}
		}
		if w["repeated"] == nil && got[i]["repeated"] != nil {
			t.Errorf("line %d: repeated = %v, want none", i, got[i]["repeated"])
		}
	}
}
