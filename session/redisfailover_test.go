package session

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestRedisSentinelSwitch kills the master behind Sentinel and sends enough
// commands, all failing, to trip go-redis's dial breaker, as a proxy's
// traffic does. Once the backend has followed Sentinel's +switch-master, its
// very next command must reach the promoted replica: go-redis alone answers
// the last dial error until its background probe (once a second) succeeds.
// A subscription made before is lost with the master, and made again on the
// promoted replica, where it gets what is published.
func TestRedisSentinelSwitch(t *testing.T) {
	master, replica, sentinel := startSentinelPair(t)
	ctx := context.Background()
	b, err := NewRedisBackend(RedisOptions{SentinelMaster: "mymaster", SentinelAddrs: []string{sentinel.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	switched := make(chan string, 1)
	b.mu.Lock()
	b.switched = func(addr string) { switched <- addr }
	b.mu.Unlock()

	rec := newRecorder()
	b.Subscribe("c", rec)
	rec.want(t, 10*time.Second, "subscribed")

	if err := b.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Set: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: replica.addr()})
	defer direct.Close()
	poll(t, 10*time.Second, "the replica has the key", func() bool {
		v, err := direct.Get(ctx, DefaultKeyPrefix+"k").Result()
		return err == nil && v == "v"
	})

	master.stop()
	// More failed dials than the pool has connections: the breaker trips.
	// On a loaded machine the failover (a second after the master stops)
	// may come before the last of them: a Get may then succeed, but only
	// once the switch has been followed.
	var addr string
	for i := range 3 * 10 * runtime.GOMAXPROCS(0) {
		if _, err := b.Get(ctx, "k"); err == nil {
			select {
			case addr = <-switched:
			case <-time.After(time.Second):
				t.Fatalf("Get %d with the master killed succeeded, and no switch was followed", i)
			}
			break
		}
	}
	if addr == "" {
		select {
		case addr = <-switched:
		case <-time.After(20 * time.Second):
			t.Fatal("no switch followed 20s after the master was killed")
		}
	}
	if addr != replica.addr() {
		t.Fatalf("followed a switch to %s; want the replica, %s", addr, replica.addr())
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("the first Get after the switch = %q, %v; want the key from the promoted replica", v, err)
	}
	rec.want(t, time.Second, "lost")
	rec.want(t, 10*time.Second, "subscribed")
	if err := b.Publish(ctx, "c", []byte("after the switch")); err != nil {
		t.Fatal(err)
	}
	rec.want(t, 5*time.Second, "msg:after the switch")
}

// startSentinelPair runs a master, its replica and a Sentinel monitoring
// them as "mymaster" (failing over a second after the master stops
// answering), and waits until the Sentinel sees the replica in sync.
func startSentinelPair(t *testing.T) (master, replica, sentinel *redisProc) {
	t.Helper()
	master = startRedis(t, "--repl-diskless-sync-delay", "0")
	replica = startRedis(t, "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	bin := requireCommand(t, "redis-sentinel")
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	config := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n", port, dir, master.port)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	sentinel = &redisProc{t: t, bin: bin, args: []string{conf}, port: port, log: filepath.Join(dir, "sentinel.log")}
	sentinel.start()
	t.Cleanup(sentinel.stop)

	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.addr()})
	defer sc.Close()
	poll(t, 20*time.Second, "Sentinel sees the replica", func() bool {
		rs, err := sc.Replicas(context.Background(), "mymaster").Result()
		return err == nil && len(rs) == 1 && rs[0]["flags"] == "slave" && rs[0]["master-link-status"] == "ok"
	})
	return master, replica, sentinel
}

// TestRedisSentinelFailoverResubscribes asks Sentinel for a failover while
// the master is up: the subscription is lost (Sentinel kills the old
// master's clients as it demotes it; the backend also makes its
// subscriptions again when it follows the switch) and made again on the new
// master (subscribed: the cache starts afresh), where it gets what is
// published.
func TestRedisSentinelFailoverResubscribes(t *testing.T) {
	_, _, sentinel := startSentinelPair(t)
	ctx := context.Background()
	b, err := NewRedisBackend(RedisOptions{SentinelMaster: "mymaster", SentinelAddrs: []string{sentinel.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	rec := newRecorder()
	b.Subscribe("c", rec)
	rec.want(t, 10*time.Second, "subscribed")
	if reply, err := rawCommand(sentinel.addr(), "SENTINEL FAILOVER mymaster"); err != nil || reply != "+OK" {
		t.Fatalf("SENTINEL FAILOVER: %q, %v", reply, err)
	}
	rec.want(t, 20*time.Second, "lost")
	rec.want(t, 10*time.Second, "subscribed")
	if err := b.Publish(ctx, "c", []byte("on the new master")); err != nil {
		t.Fatal(err)
	}
	rec.want(t, 5*time.Second, "msg:on the new master")
}

// poll checks cond every 20ms until it holds, failing the test after
// timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
