package session

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// scanBatch is how many keys a RedisBackend asks SCAN for at a time.
const scanBatch = 500

var (
	_ prefixDeleter = (*RedisBackend)(nil)
	_ prefixDeleter = (*MemoryBackend)(nil)
	_ multiGetter   = (*RedisBackend)(nil)
	_ multiGetter   = (*MemoryBackend)(nil)
)

// DeletePrefix implements prefixDeleter with SCAN and UNLINK, on every
// primary of a Cluster. It holds no lock: a key written meanwhile in a part
// of the keyspace already scanned survives.
func (b *RedisBackend) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	pattern := globEscape(b.prefix+prefix) + "*"
	var n atomic.Int64 // ForEachMaster calls one on every primary at once
	one := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, scanBatch).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				// One UNLINK per key: in a Cluster a node's keys span slots.
				cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, k := range keys {
						p.Unlink(ctx, k)
					}
					return nil
				})
				if err != nil {
					return err
				}
				for _, cmd := range cmds {
					n.Add(cmd.(*redis.IntCmd).Val())
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	if cc, ok := b.client().(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return one(ctx, c) })
	} else {
		err = one(ctx, b.client())
	}
	return int(n.Load()), redisErr("delete prefix", err)
}

// globEscape escapes SCAN MATCH's special characters in s.
func globEscape(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			sb.WriteByte('\\')
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// GetEach implements multiGetter with one pipeline of GETs (split by node
// in a Cluster).
func (b *RedisBackend) GetEach(ctx context.Context, keys []string) ([][]byte, error) {
	cmds, err := b.client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Get(ctx, b.prefix+k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr("get each", err)
	}
	out := make([][]byte, len(keys))
	for i, cmd := range cmds {
		v, err := cmd.(*redis.StringCmd).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, redisErr("get each", err)
		default:
			out[i] = v
		}
	}
	return out, nil
}

// DeletePrefix implements prefixDeleter.
func (b *MemoryBackend) DeletePrefix(ctx context.Context, prefix string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	n := 0
	for k := range b.items {
		if strings.HasPrefix(k, prefix) {
			if b.live(k, now) != nil {
				n++
			}
			delete(b.items, k)
		}
	}
	return n, nil
}

// GetEach implements multiGetter.
func (b *MemoryBackend) GetEach(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := b.Get(ctx, k)
		switch {
		case errors.Is(err, ErrBackendMiss):
		case err != nil:
			return nil, err
		default:
			out[i] = v
		}
	}
	return out, nil
}
