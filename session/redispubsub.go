package session

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// How a RedisBackend's subscription checks its connection and comes back.
const (
	// subscriptionPing is how long a subscription waits for a message
	// before it sends a PING, and then how long it waits for the answer
	// before it takes the connection for dead: a connection that dies
	// silently (or a Redis that hangs) is noticed within twice this, under
	// a second.
	subscriptionPing = 400 * time.Millisecond
	// subscriptionRetry and subscriptionRetryMax bound the wait before
	// subscribing again after a failure; it doubles from one to the other.
	subscriptionRetry    = 50 * time.Millisecond
	subscriptionRetryMax = time.Second
)

var _ Broadcaster = (*RedisBackend)(nil)

// Publish implements Broadcaster with PUBLISH, on channel under the key
// prefix. Behind a Cluster every node delivers it.
func (b *RedisBackend) Publish(ctx context.Context, channel string, msg []byte) error {
	return redisErr("publish", b.client().Publish(ctx, b.prefix+channel, msg).Err())
}

// Subscribe implements Broadcaster with SUBSCRIBE, on channel under the key
// prefix, on a connection of its own. The subscription is in place once
// Redis confirms it (sub.Subscribed). It is lost (sub.Lost) when the
// connection breaks, when Redis does not answer a PING within 0.4 s of an
// idle 0.4 s, and at a Sentinel switch (see followSwitches): then it is
// made again, on the current master, after a short wait that doubles from
// 50 ms to 1 s while Redis cannot be reached. sub.Lost is called when the
// first attempt fails too.
func (b *RedisBackend) Subscribe(channel string, sub Subscriber) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &redisSub{b: b, channel: b.prefix + channel, sub: sub, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		cancel()
		close(s.done)
		sub.Lost(errors.New("session: redis: subscribe: backend closed"))
		return func() {}
	}
	if b.subs == nil {
		b.subs = map[*redisSub]struct{}{}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.run()
	return func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
		s.end()
	}
}

// redisSub is one subscription of a RedisBackend.
type redisSub struct {
	b       *RedisBackend
	channel string // prefixed
	sub     Subscriber
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when run has returned

	mu      sync.Mutex
	ps      *redis.PubSub // the one in use, nil between attempts
	restart bool          // set by restartSub: the ps being made must not be used
}

// end stops the subscription and waits until sub is called no more.
func (s *redisSub) end() {
	s.cancel()
	s.restartSub()
	<-s.done
}

// restartSub closes the connection in use, if any, or the one being made: the
// subscription is made again, on the client in use by then.
func (s *redisSub) restartSub() {
	s.mu.Lock()
	ps := s.ps
	s.restart = true
	s.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
}

// run keeps the subscription up until ctx ends.
func (s *redisSub) run() {
	defer close(s.done)
	wait := subscriptionRetry
	first := true
	for {
		s.mu.Lock()
		s.restart = false
		s.mu.Unlock()
		ps := s.b.client().Subscribe(s.ctx, s.channel)
		s.mu.Lock()
		s.ps = ps
		restarted := s.restart
		s.mu.Unlock()
		if restarted {
			// A restart came while ps was being made, perhaps on a
			// client just replaced: receive fails at once.
			_ = ps.Close()
		}
		confirmed, err := s.receive(ps)
		s.mu.Lock()
		s.ps = nil
		s.mu.Unlock()
		_ = ps.Close()
		if s.ctx.Err() != nil {
			return
		}
		if confirmed || first {
			s.sub.Lost(redisErr("subscription", err))
		}
		first = false
		if confirmed {
			wait = subscriptionRetry
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, subscriptionRetryMax)
	}
}

// receive passes on what ps delivers until it fails, and reports whether it
// was confirmed (sub.Subscribed called) before.
func (s *redisSub) receive(ps *redis.PubSub) (confirmed bool, err error) {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, subscriptionPing)
		if err != nil {
			var ne net.Error
			if !pinged && errors.As(err, &ne) && ne.Timeout() {
				// Idle: ask, so that a dead connection is noticed.
				if err := ps.Ping(s.ctx); err != nil {
					return confirmed, err
				}
				pinged = true
				continue
			}
			return confirmed, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			switch {
			case m.Kind == "subscribe" && m.Channel == s.channel && !confirmed:
				confirmed = true
				s.sub.Subscribed()
			case m.Kind == "unsubscribe":
				return confirmed, errors.New("unsubscribed")
			}
		case *redis.Message:
			if confirmed && m.Channel == s.channel {
				s.sub.Receive([]byte(m.Payload))
			}
		case *redis.Pong:
		}
	}
}

// restartSubscriptions makes every subscription again, on the client in use
// now; switchTo calls it after replacing the client.
func (b *RedisBackend) restartSubscriptions() {
	b.mu.Lock()
	subs := make([]*redisSub, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	for _, s := range subs {
		s.restartSub()
	}
}

// endSubscriptions stops every subscription; Close calls it.
func (b *RedisBackend) endSubscriptions() {
	b.mu.Lock()
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for s := range subs {
		s.end()
	}
}
