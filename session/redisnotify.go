package session

import (
	"context"
	"time"
)

// subscribeRetry is how long Subscribe waits before subscribing again
// after a failure.
const subscribeRetry = time.Second

// Publish sends msg to every process subscribed to channel (under the
// backend's key prefix) and reports how many received it. Nothing is kept:
// a process that is not subscribed at that moment never sees msg.
func (b *RedisBackend) Publish(ctx context.Context, channel string, msg []byte) (int, error) {
	n, err := b.client().Publish(ctx, b.prefix+channel, msg).Result()
	return int(n), redisErr("publish", err)
}

// Subscribe calls fn with every message published on channel (under the
// backend's key prefix), one at a time, until ctx ends or the backend is
// closed. After a failure (Redis restarted, unreachable, or a Sentinel
// failover) it calls onErr, when not nil, and subscribes again; messages
// published meanwhile are lost, so use it for news, never for state.
func (b *RedisBackend) Subscribe(ctx context.Context, channel string, fn func(msg []byte), onErr func(error)) {
	for ctx.Err() == nil && !b.isClosed() {
		ps := b.client().Subscribe(ctx, b.prefix+channel)
		for {
			msg, err := ps.ReceiveMessage(ctx)
			if err != nil {
				if ctx.Err() == nil && !b.isClosed() && onErr != nil {
					onErr(redisErr("subscribe", err))
				}
				break
			}
			fn([]byte(msg.Payload))
		}
		_ = ps.Close()
		select {
		case <-ctx.Done():
		case <-time.After(subscribeRetry):
		}
	}
}

// isClosed reports whether Close has been called.
func (b *RedisBackend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
