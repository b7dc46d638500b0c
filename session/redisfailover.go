package session

import (
	"context"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// switchGrace is how long a client replaced at a Sentinel switch stays
// open, so that commands in flight on it end by themselves (within the
// timeouts above) rather than being cut off.
const switchGrace = 3 * time.Second

// followSwitches subscribes to "+switch-master" at each configured Sentinel.
// When one announces a new address for this master, the backend replaces
// its client with a new one, which asks the Sentinels for the master afresh.
//
// Why: go-redis's connection pool (internal/pool, v9.23) stops dialing once
// PoolSize dials have failed (dialErrorsNum, never reset by a successful
// dial): from then on every command fails at once with the last dial error,
// and only a background probe (tryDial), which sleeps a second after each
// failure, closes the breaker again. While the master is down every request
// dials it and fails, so the breaker is open well before Sentinel promotes a
// replica, and go-redis's own switch handling (which drops connections to the
// old master) does not reset it: service would resume up to a second after
// the switch. A new client has a new pool, and resumes at once.
//
// Only the Sentinels given are subscribed to, not ones go-redis discovers.
// Should none of them deliver the announcement, go-redis's own recovery, up
// to a second later, still applies. It does not connect: each subscription
// connects, and reconnects, in the background.
func (b *RedisBackend) followSwitches() {
	for _, addr := range b.opts.Addrs {
		sc := redis.NewSentinelClient(&redis.Options{
			Addr:                     addr,
			TLSConfig:                b.opts.TLSConfig,
			DialTimeout:              redisDialTimeout,
			ReadTimeout:              redisIOTimeout,
			WriteTimeout:             redisIOTimeout,
			DisableIdentity:          true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		ps := sc.Subscribe(context.Background()) // no channel yet: does not connect
		ch := ps.Channel()
		b.watchers = append(b.watchers, func() { _ = ps.Close(); _ = sc.Close() })
		go func() {
			// The channel is kept (and subscribed to again on every
			// reconnect) even when this first attempt fails.
			_ = ps.Subscribe(context.Background(), "+switch-master")
			for msg := range ch { // until Close
				// "<name> <old ip> <old port> <new ip> <new port>"
				f := strings.Fields(msg.Payload)
				if len(f) == 5 && f[0] == b.opts.MasterName {
					b.switchTo(net.JoinHostPort(f[3], f[4]))
				}
			}
		}()
	}
}

// switchTo replaces the client with a new one for the master now at addr,
// unless a client was already made for addr (every Sentinel announces the
// same switch). The old client is closed after switchGrace.
func (b *RedisBackend) switchTo(addr string) {
	b.mu.Lock()
	if b.closed || addr == b.master {
		b.mu.Unlock()
		return
	}
	b.master = addr
	old := b.cur.Swap(b.newClient(b.opts))
	b.retired = append(b.retired, old)
	notify := b.switched
	b.mu.Unlock()
	time.AfterFunc(switchGrace, func() { b.retire(old) })
	b.restartSubscriptions() // on the new client, so as not to miss messages published on the new master
	if notify != nil {
		notify(addr)
	}
}

// retire closes c, a client replaced at a switch, unless Close already has.
func (b *RedisBackend) retire(c *redisClient) {
	b.mu.Lock()
	i := slices.Index(b.retired, c)
	if i >= 0 {
		b.retired = slices.Delete(b.retired, i, i+1)
	}
	b.mu.Unlock()
	if i >= 0 {
		_ = c.Close()
	}
}
