package session

import (
	"context"
	"errors"
	"sync"
)

// Broadcaster is implemented by backends that carry messages between the
// processes sharing them (RedisBackend, through Redis pub/sub; and
// MemoryBackend, within one process). A CachedStore uses it to tell the other
// replicas which sessions a revocation, sign-out or save has changed.
type Broadcaster interface {
	// Publish sends msg to every subscription to channel that is in place
	// (see Subscriber); subscriptions that are down miss it.
	Publish(ctx context.Context, channel string, msg []byte) error
	// Subscribe delivers the messages published on channel to sub, and
	// tells it when the subscription is in place and when it is lost; it
	// keeps the subscription up (connecting and reconnecting in the
	// background) until stop is called. stop returns once sub will be
	// called no more; it must not be called from one of sub's methods.
	Subscribe(channel string, sub Subscriber) (stop func())
}

// Subscriber receives what a subscription delivers. Its methods are called
// one at a time, in order, from one goroutine per subscription; they must
// return promptly, since messages wait for them.
type Subscriber interface {
	// Subscribed says the subscription is (again) in place: every message
	// published from now on is delivered, until Lost. Messages published
	// before, or while it was down, may have been missed.
	Subscribed()
	// Lost says the subscription is down (it never came up, or broke):
	// messages published from now on may be missed until Subscribed.
	Lost(err error)
	// Receive is called with each message, in the order published. The
	// subscriber may keep msg.
	Receive(msg []byte)
}

// errInterrupted is what InterruptSubscriptions tells a MemoryBackend's
// subscribers.
var errInterrupted = errors.New("session: backend: subscription interrupted")

// memoryPubSub is a MemoryBackend's in-process publish/subscribe.
type memoryPubSub struct {
	mu   sync.Mutex
	subs map[*memorySub]struct{}
	down bool // between InterruptSubscriptions and ResumeSubscriptions
}

// memorySub is one subscription to a MemoryBackend. mu serializes the calls
// to sub, so that each subscriber sees one call at a time, as with Redis.
type memorySub struct {
	channel string
	mu      sync.Mutex
	sub     Subscriber
	up      bool // guarded by mu
	stopped bool // guarded by mu
}

var _ Broadcaster = (*MemoryBackend)(nil)

// Publish implements Broadcaster: it calls every subscriber to channel that
// is in place, and returns once each has received msg.
func (b *MemoryBackend) Publish(ctx context.Context, channel string, msg []byte) error {
	b.ps.mu.Lock()
	var to []*memorySub
	for s := range b.ps.subs {
		if s.channel == channel {
			to = append(to, s)
		}
	}
	b.ps.mu.Unlock()
	for _, s := range to {
		s.mu.Lock()
		if s.up && !s.stopped {
			s.sub.Receive(cloneValue(msg))
		}
		s.mu.Unlock()
	}
	return nil
}

// Subscribe implements Broadcaster. The subscription is in place at once
// (sub.Subscribed is called before Subscribe returns) unless the backend's
// subscriptions are interrupted.
func (b *MemoryBackend) Subscribe(channel string, sub Subscriber) (stop func()) {
	s := &memorySub{channel: channel, sub: sub}
	s.mu.Lock()
	b.ps.mu.Lock()
	b.ps.subs[s] = struct{}{}
	s.up = !b.ps.down
	b.ps.mu.Unlock()
	if s.up {
		sub.Subscribed()
	} else {
		sub.Lost(errInterrupted)
	}
	s.mu.Unlock()
	return func() {
		b.ps.mu.Lock()
		delete(b.ps.subs, s)
		b.ps.mu.Unlock()
		s.mu.Lock()
		s.stopped = true
		s.mu.Unlock()
	}
}

// InterruptSubscriptions takes every subscription down, as when the
// connection to Redis breaks: each subscriber is told (Lost), and messages
// published until ResumeSubscriptions reach nobody. For tests.
func (b *MemoryBackend) InterruptSubscriptions() {
	b.setSubscriptions(false)
}

// ResumeSubscriptions puts every subscription back in place, as when the
// connection to Redis is made again: each subscriber is told (Subscribed).
// For tests.
func (b *MemoryBackend) ResumeSubscriptions() {
	b.setSubscriptions(true)
}

// setSubscriptions takes every subscription up or down, telling each
// subscriber whose state changes.
func (b *MemoryBackend) setSubscriptions(up bool) {
	b.ps.mu.Lock()
	b.ps.down = !up
	subs := make([]*memorySub, 0, len(b.ps.subs))
	for s := range b.ps.subs {
		subs = append(subs, s)
	}
	b.ps.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		if !s.stopped && s.up != up {
			s.up = up
			if up {
				s.sub.Subscribed()
			} else {
				s.sub.Lost(errInterrupted)
			}
		}
		s.mu.Unlock()
	}
}
