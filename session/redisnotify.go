package session

import (
	"context"
)

// Announce sends msg to every process subscribed to channel (under the
// backend's key prefix; see Subscribe) and reports how many received it.
// Nothing is kept: a process that is not subscribed at that moment never
// sees msg.
func (b *RedisBackend) Announce(ctx context.Context, channel string, msg []byte) (int, error) {
	n, err := b.client().Publish(ctx, b.prefix+channel, msg).Result()
	return int(n), redisErr("publish", err)
}
