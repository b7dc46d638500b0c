package session

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.opentelemetry.io/otel/trace"
)

// DefaultKeyPrefix is RedisOptions.KeyPrefix's default.
const DefaultKeyPrefix = "authproxy:"

// Timeouts of every Redis connection: a Redis that is down or unreachable
// makes a call fail within about these, instead of holding the request.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = time.Second
)

// RedisOptions say which Redis a RedisBackend uses: one node (URL), a
// Sentinel-monitored primary (SentinelMaster and SentinelAddrs) or a
// Cluster (ClusterAddrs). Exactly one of these must be given.
type RedisOptions struct {
	// URL is a redis:// or rediss:// (TLS) URL, as in
	// "redis://user:password@host:6379/0": alone, the node to use. With
	// Sentinel or Cluster addresses only its user, password, database
	// (Sentinel only; a Cluster has just database 0) and TLS are used, and
	// its host is ignored. Query parameters that set timeouts are overridden.
	URL string
	// SentinelMaster is the name Sentinel monitors the primary under, as in
	// "sentinel monitor <name> …"; it needs SentinelAddrs. The Sentinels
	// themselves must not require a password.
	SentinelMaster string
	// SentinelAddrs are host:port addresses of one or more Sentinels.
	SentinelAddrs []string
	// ClusterAddrs are host:port addresses of one or more Cluster nodes;
	// the rest are discovered.
	ClusterAddrs []string
	// KeyPrefix is put before every key; default "authproxy:". Give each
	// deployment sharing a Redis its own. It must not contain "{" or "}",
	// which would steer every key to one Cluster slot.
	KeyPrefix string
	// TracerProvider, when not nil, traces every command and pipeline as a
	// client span named after the command (never its keys or values); nil
	// means no tracing and no cost.
	TracerProvider trace.TracerProvider
}

// RedisBackend is a Backend on Redis 7.0 or later (single node, Sentinel
// or Cluster), shared by every replica of the proxy. Each method is one
// command, or one transaction on one key, so it works across Cluster slots.
//
// Connections time out after 2 s dialing and 1 s reading or writing, with
// one retry, so a call to a Redis that is down fails within a few seconds at
// most (at once when the port is closed), and the client reconnects by itself
// when Redis is back. Errors are prefixed "session: redis"; only a missing
// key wraps ErrNotFound (ErrBackendMiss).
//
// Behind Sentinel it also follows the Sentinels' +switch-master
// announcements and starts afresh on the new master at once (see
// followSwitches): go-redis alone would keep failing for up to a second more.
//
// It is safe for concurrent use. Close it when done.
type RedisBackend struct {
	cur    atomic.Pointer[redisClient]
	prefix string
	hook   redis.Hook // nil: none

	// For Sentinel only: the options each new client is made with, and
	// what followSwitches keeps.
	opts     *redis.UniversalOptions
	mu       sync.Mutex
	master   string                 // the master a client was last made for
	retired  []*redisClient         // replaced clients, closed after a grace
	watchers []func()               // stop the subscriptions to Sentinels
	subs     map[*redisSub]struct{} // Subscribe's subscriptions
	closed   bool
	switched func(addr string) // tests: called after a switch is followed
}

// redisClient wraps the go-redis client in use, so that it can be
// replaced atomically.
type redisClient struct{ redis.UniversalClient }

// newClient makes a go-redis client for uo, with the hook if any.
func (b *RedisBackend) newClient(uo *redis.UniversalOptions) *redisClient {
	c := redis.NewUniversalClient(uo)
	if b.hook != nil {
		c.AddHook(b.hook)
	}
	return &redisClient{c}
}

// client returns the go-redis client in use.
func (b *RedisBackend) client() redis.UniversalClient { return b.cur.Load().UniversalClient }

var _ Backend = (*RedisBackend)(nil)

// NewRedisBackend returns a RedisBackend for opts. It checks opts but does
// not connect: call Ping to find out whether Redis answers.
func NewRedisBackend(opts RedisOptions) (*RedisBackend, error) {
	uo := &redis.UniversalOptions{
		DialTimeout:           redisDialTimeout,
		ReadTimeout:           redisIOTimeout,
		WriteTimeout:          redisIOTimeout,
		ContextTimeoutEnabled: true,
		// One retry covers a pooled connection that Redis closed; more
		// would only multiply the wait when Redis is down.
		MaxRetries:    1,
		DialerRetries: 1,
		// Neither is needed, and each costs a command on every new
		// connection that Redis before 7.2 refuses.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if opts.URL != "" {
		// url.Parse's errors quote the URL, password included; go-redis's
		// (which follow a successful url.Parse) do not.
		if pu, err := url.Parse(opts.URL); err != nil || (pu.Scheme != "redis" && pu.Scheme != "rediss") {
			return nil, errors.New("session: redis: invalid URL: want redis://[user:password@]host[:port][/db] or rediss://…")
		}
		u, err := redis.ParseURL(opts.URL)
		if err != nil {
			return nil, fmt.Errorf("session: redis: invalid URL: %w", err)
		}
		uo.Addrs = []string{u.Addr}
		uo.Username, uo.Password, uo.DB, uo.TLSConfig = u.Username, u.Password, u.DB, u.TLSConfig
	}
	switch {
	case opts.SentinelMaster != "" && len(opts.SentinelAddrs) == 0:
		return nil, errors.New("session: redis: a Sentinel master name needs Sentinel addresses")
	case opts.SentinelMaster == "" && len(opts.SentinelAddrs) > 0:
		return nil, errors.New("session: redis: Sentinel addresses need a Sentinel master name")
	case opts.SentinelMaster != "" && len(opts.ClusterAddrs) > 0:
		return nil, errors.New("session: redis: give Sentinel or Cluster addresses, not both")
	case opts.SentinelMaster != "":
		uo.MasterName = opts.SentinelMaster
		uo.Addrs = opts.SentinelAddrs
	case len(opts.ClusterAddrs) > 0:
		if uo.DB != 0 {
			return nil, fmt.Errorf("session: redis: database %d: a Cluster has only database 0", uo.DB)
		}
		uo.Addrs = opts.ClusterAddrs
		uo.IsClusterMode = true
	case opts.URL == "":
		return nil, errors.New("session: redis: no URL, Sentinel or Cluster addresses")
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	b := &RedisBackend{prefix: prefix, hook: newTracingHook(opts.TracerProvider)}
	b.cur.Store(b.newClient(uo))
	if uo.MasterName != "" {
		b.opts = uo
		b.followSwitches()
	}
	return b, nil
}

// Close closes the connections to Redis; the backend is unusable after.
func (b *RedisBackend) Close() error {
	b.mu.Lock()
	b.closed = true
	watchers, retired := b.watchers, b.retired
	b.watchers, b.retired = nil, nil
	b.mu.Unlock()
	for _, stop := range watchers {
		stop()
	}
	b.endSubscriptions()
	for _, c := range retired {
		_ = c.Close()
	}
	if err := b.client().Close(); err != nil {
		return fmt.Errorf("session: redis: close: %w", err)
	}
	return nil
}

// redisErr prefixes err, leaving nil alone.
func redisErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("session: redis: %s: %w", op, err)
}

// Get implements Backend.
func (b *RedisBackend) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := b.client().Get(ctx, b.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBackendMiss
	}
	return v, redisErr("get", err)
}

// Set implements Backend.
func (b *RedisBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	return redisErr("set", b.client().Set(ctx, b.prefix+key, value, ttl).Err())
}

// SetNX implements Backend.
func (b *RedisBackend) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	ok, err := b.client().SetNX(ctx, b.prefix+key, value, ttl).Result()
	return ok, redisErr("setnx", err)
}

// Replace implements Backend.
func (b *RedisBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("replace", ttl); err != nil {
		return false, err
	}
	ok, err := b.client().SetXX(ctx, b.prefix+key, value, ttl).Result()
	return ok, redisErr("replace", err)
}

// Delete implements Backend.
func (b *RedisBackend) Delete(ctx context.Context, key string) error {
	return redisErr("delete", b.client().Del(ctx, b.prefix+key).Err())
}

// AddToSet implements Backend. It runs SADD and PEXPIRE … NX and GT in one
// transaction on the key, so the set's TTL only grows.
func (b *RedisBackend) AddToSet(ctx context.Context, key, member string, ttl time.Duration) error {
	if err := checkTTL("add to set", ttl); err != nil {
		return err
	}
	k := b.prefix + key
	ms := max(ttl.Milliseconds(), 1)
	_, err := b.client().TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k, member)
		p.Do(ctx, "pexpire", k, ms, "nx") // a new set has no TTL yet
		p.Do(ctx, "pexpire", k, ms, "gt")
		return nil
	})
	return redisErr("add to set", err)
}

// RemoveFromSet implements Backend.
func (b *RedisBackend) RemoveFromSet(ctx context.Context, key, member string) error {
	return redisErr("remove from set", b.client().SRem(ctx, b.prefix+key, member).Err())
}

// SetMembers implements Backend.
func (b *RedisBackend) SetMembers(ctx context.Context, key string) ([]string, error) {
	m, err := b.client().SMembers(ctx, b.prefix+key).Result()
	return m, redisErr("set members", err)
}

// Ping implements Backend.
func (b *RedisBackend) Ping(ctx context.Context) error {
	return redisErr("ping", b.client().Ping(ctx).Err())
}
