package session

import (
	"context"
	"testing"
	"time"
)

// recorder is a Subscriber that records what it is told, in order:
// "subscribed", "lost" and "msg:<message>".
type recorder struct{ ch chan string }

func newRecorder() *recorder { return &recorder{ch: make(chan string, 64)} }

func (r *recorder) Subscribed()      { r.ch <- "subscribed" }
func (r *recorder) Lost(error)       { r.ch <- "lost" }
func (r *recorder) Receive(m []byte) { r.ch <- "msg:" + string(m) }

// want waits up to timeout for the next event and checks it is what.
func (r *recorder) want(t *testing.T, timeout time.Duration, what string) {
	t.Helper()
	select {
	case got := <-r.ch:
		if got != what {
			t.Fatalf("subscriber was told %q, want %q", got, what)
		}
	case <-time.After(timeout):
		t.Fatalf("subscriber was not told %q within %v", what, timeout)
	}
}

// wantNothing checks that nothing more has been recorded.
func (r *recorder) wantNothing(t *testing.T, step string) {
	t.Helper()
	select {
	case got := <-r.ch:
		t.Fatalf("%s: subscriber was told %q, want nothing", step, got)
	default:
	}
}

// TestMemoryBroadcaster: a MemoryBackend's subscriptions are in place at
// once, deliver what is published on their channel before Publish returns,
// miss what is published while interrupted, and end at stop.
func TestMemoryBroadcaster(t *testing.T) {
	ctx := context.Background()
	b := NewMemoryBackend(nil)
	rec, other := newRecorder(), newRecorder()
	stop := b.Subscribe("c", rec)
	defer b.Subscribe("other", other)()
	rec.want(t, time.Second, "subscribed")
	other.want(t, time.Second, "subscribed")

	publish := func(msg string) {
		t.Helper()
		if err := b.Publish(ctx, "c", []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	publish("m1")
	rec.want(t, time.Second, "msg:m1")
	b.InterruptSubscriptions()
	rec.want(t, time.Second, "lost")
	publish("m2") // missed
	b.ResumeSubscriptions()
	rec.want(t, time.Second, "subscribed")
	publish("m3")
	rec.want(t, time.Second, "msg:m3")

	other.want(t, time.Second, "lost")
	other.want(t, time.Second, "subscribed")
	other.wantNothing(t, "messages on another channel")

	stop()
	publish("m4")
	b.InterruptSubscriptions()
	rec.wantNothing(t, "after stop")

	late := newRecorder()
	b.Subscribe("c", late)
	late.want(t, time.Second, "lost") // subscribed while interrupted
	b.ResumeSubscriptions()
	late.want(t, time.Second, "subscribed")
}
