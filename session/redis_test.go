package session

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authproxy/authproxy/internal/teststack"
)

// These tests run real Redis servers (redis-server, redis-sentinel and
// redis-cli from Debian's redis-server and redis-sentinel packages, which
// scripts/install-deps.sh installs) on free loopback ports, without
// persistence, each in a test's temporary directory. Without them the tests
// skip, except under CI=true, where they fail.

// requireCommand returns the path of the command name, or ends the test.
func requireCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (run scripts/install-deps.sh): %v", name, err)
	}
	t.Skipf("%s is not installed (run scripts/install-deps.sh)", name)
	return ""
}

// freePort returns a loopback port that is free, and whose Cluster bus port
// (port + 10000) is free too. The port comes from teststack.FreePorts: below
// the ephemeral range and reserved, so that no other test's socket takes it
// before the redis-server binds it.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		addrs, err := teststack.FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addrs[0])
		port, _ := strconv.Atoi(p)
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair")
	return 0
}

// redisProc is a redis-server or redis-sentinel process on a port.
type redisProc struct {
	t    testing.TB
	bin  string
	args []string
	port int
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startRedis runs redis-server on a free port, without persistence, and
// stops it when the test ends.
func startRedis(t testing.TB, extra ...string) *redisProc {
	t.Helper()
	bin := requireCommand(t, "redis-server")
	dir := t.TempDir()
	port := freePort(t)
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir}, extra...)
	p := &redisProc{t: t, bin: bin, args: args, port: port, log: filepath.Join(dir, "redis.log")}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// start runs the process and waits until it answers PING.
func (p *redisProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting %s: %v", p.bin, err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(p.cmd, p.done)

	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := rawCommand(p.addr(), "PING"); err == nil && reply == "+PONG" {
			return
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			p.t.Fatalf("%s exited:\n%s", p.bin, b)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s on port %d does not answer", p.bin, p.port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the process, as a crash would, and waits for it to exit.
func (p *redisProc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// rawCommand sends one inline command and returns the first line of the
// reply.
func rawCommand(addr, command string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// redisKit makes RedisBackends for opts, each under a key prefix of its own,
// so that tests sharing a server do not see each other's keys.
func redisKit(name string, opts RedisOptions) backendKit {
	var n atomic.Int64
	return backendKit{
		name: name,
		new: func(t testing.TB, _ func() time.Time) (Backend, func() []string) {
			t.Helper()
			o := opts
			o.KeyPrefix = fmt.Sprintf("test%d-%d:", time.Now().UnixNano(), n.Add(1))
			b, err := NewRedisBackend(o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			return b, func() []string { return redisDump(t, b) }
		},
	}
}

// redisDump returns every key under b's prefix with its value or members.
func redisDump(t testing.TB, b *RedisBackend) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex // ForEachMaster calls in parallel
	var out []string
	dumpNode := func(ctx context.Context, c redis.Cmdable) error {
		keys, err := c.Keys(ctx, b.prefix+"*").Result()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, k := range keys {
			out = append(out, k)
			typ, err := b.client().Type(ctx, k).Result()
			if err != nil {
				return err
			}
			switch typ {
			case "string":
				v, err := b.client().Get(ctx, k).Result()
				if err != nil {
					return err
				}
				out = append(out, v)
			case "set":
				m, err := b.client().SMembers(ctx, k).Result()
				if err != nil {
					return err
				}
				out = append(out, m...)
			}
		}
		return nil
	}
	var err error
	if cc, ok := b.client().(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return dumpNode(ctx, c) })
	} else {
		err = dumpNode(ctx, b.client())
	}
	if err != nil {
		t.Fatalf("dumping Redis: %v", err)
	}
	return out
}

func TestRedisSingle(t *testing.T) {
	srv := startRedis(t)
	kit := redisKit("redis", RedisOptions{URL: "redis://" + srv.addr() + "/0"})
	t.Run("backend", func(t *testing.T) { testBackendContract(t, kit) })
	t.Run("ticket store", func(t *testing.T) { testTicketStore(t, kit) })
	t.Run("idp scoping", func(t *testing.T) { testIdPScoping(t, kit) })

	t.Run("expiry", func(t *testing.T) {
		ctx := context.Background()
		b, _ := kit.new(t, nil)
		rb := b.(*RedisBackend)
		if err := b.Set(ctx, "v", []byte("x"), 150*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := b.AddToSet(ctx, "s", "a", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := b.AddToSet(ctx, "s", "b", time.Minute); err != nil {
			t.Fatal(err)
		}
		if ttl := rb.client().PTTL(ctx, rb.prefix+"s").Val(); ttl < 59*time.Minute {
			t.Errorf("set TTL shrank to %v", ttl)
		}
		if err := b.AddToSet(ctx, "s", "c", 2*time.Hour); err != nil {
			t.Fatal(err)
		}
		if ttl := rb.client().PTTL(ctx, rb.prefix+"s").Val(); ttl < 119*time.Minute {
			t.Errorf("set TTL not extended: %v", ttl)
		}
		time.Sleep(250 * time.Millisecond)
		if _, err := b.Get(ctx, "v"); !errors.Is(err, ErrBackendMiss) {
			t.Errorf("Get after the TTL: %v, want a miss", err)
		}
	})

	t.Run("revocation list", func(t *testing.T) {
		ctx := context.Background()
		b, _ := kit.new(t, nil)
		list := NewRevocationList(b, time.Hour, fixedClock(testNow))
		sess := &Session{ID: "x", Subject: "ada", SID: "sid-1", CreatedAt: testNow.Add(-time.Minute)}
		if _, err := list.RevokeSubject(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		if revoked, err := list.Revoked(ctx, sess); err != nil || !revoked {
			t.Errorf("Revoked = %v, %v; want true", revoked, err)
		}
		// Email and all marks, read in one pipeline.
		eve := &Session{ID: "y", Subject: "eve", Email: "Eve@Example.com", CreatedAt: testNow.Add(-time.Minute)}
		if revoked, err := list.Revoked(ctx, eve); err != nil || revoked {
			t.Errorf("Revoked(eve) before = %v, %v; want false", revoked, err)
		}
		if _, err := list.RevokeEmail(ctx, "eve@example.com"); err != nil {
			t.Fatal(err)
		}
		if revoked, err := list.Revoked(ctx, eve); err != nil || !revoked {
			t.Errorf("Revoked(eve) after RevokeEmail = %v, %v; want true", revoked, err)
		}
		mallory := &Session{ID: "z", Subject: "mallory", CreatedAt: testNow.Add(-time.Minute)}
		if _, err := list.RevokeAll(ctx); err != nil {
			t.Fatal(err)
		}
		if revoked, err := list.Revoked(ctx, mallory); err != nil || !revoked {
			t.Errorf("Revoked(mallory) after RevokeAll = %v, %v; want true", revoked, err)
		}
	})

	t.Run("delete prefix", func(t *testing.T) {
		ctx := context.Background()
		b, _ := kit.new(t, nil)
		rb := b.(*RedisBackend)
		for _, k := range []string{"a*b:1", "a*b:2", "axb:1", "a*c:1"} {
			if err := b.Set(ctx, k, []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		n, err := rb.DeletePrefix(ctx, "a*b:")
		if err != nil || n != 2 {
			t.Fatalf("DeletePrefix(a*b:) = %d, %v; want 2", n, err)
		}
		vals, err := rb.GetEach(ctx, []string{"a*b:1", "axb:1", "a*c:1", "none"})
		if err != nil {
			t.Fatal(err)
		}
		if vals[0] != nil || string(vals[1]) != "v" || string(vals[2]) != "v" || vals[3] != nil {
			t.Errorf("after DeletePrefix(a*b:): %q; want only a*b: keys gone (the * taken literally)", vals)
		}
	})
}

// TestRedisStopped kills Redis under a ticket store: calls must fail fast,
// with an error that is not ErrNotFound, and work again once Redis is back.
func TestRedisStopped(t *testing.T) {
	srv := startRedis(t)
	b, err := NewRedisBackend(RedisOptions{URL: "redis://" + srv.addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	store := NewTicketStore(b, newTestCodec(t, newSecret(t)), CookieOptions{}, fixedClock(testNow))
	br := newBrowser(t)
	saveVia(t, br, store, newSession(t, 3000))
	if _, err := store.Load(br.request()); err != nil {
		t.Fatalf("Load: %v", err)
	}

	srv.stop()
	for i := range 3 {
		start := time.Now()
		got, err := store.Load(br.request())
		took := time.Since(start)
		if err == nil || errors.Is(err, ErrNotFound) || got != nil {
			t.Fatalf("Load %d with Redis stopped = %v, %v; want a failure that is not ErrNotFound", i, got, err)
		}
		// Fast: refused at connect, not left to run into the I/O timeout (an
		// error, not a time, so that a loaded machine cannot fail the test).
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Load %d with Redis stopped: %v after %v; want the connection refused, not a timeout", i, err, took)
		}
		t.Logf("Load %d with Redis stopped: %v after %v", i, err, took)
	}
	start := time.Now()
	if err := store.Ping(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Ping with Redis stopped = %v after %v; want the connection refused", err, time.Since(start))
	}
	rec := httptest.NewRecorder()
	if err := store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), newSession(t, 100)); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Save with Redis stopped = %v; want a failure that is not ErrNotFound", err)
	}

	srv.start() // the same port, empty: the sessions are lost
	start = time.Now()
	for {
		err := store.Ping(context.Background())
		if err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no recovery 10s after Redis restarted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("recovered %v after Redis restarted", time.Since(start))
	got, err := store.Load(br.request())
	wantNotFound(t, "Load of a session lost with Redis's data", got, err)
	sess := newSession(t, 3000)
	saveVia(t, br, store, sess)
	got, err = store.Load(br.request())
	if err != nil {
		t.Fatalf("Load after recovery: %v", err)
	}
	sameSession(t, got, sess)
}

func TestRedisSentinel(t *testing.T) {
	master := startRedis(t)
	bin := requireCommand(t, "redis-sentinel")
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	config := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster %s %d 1\n",
		port, dir, "127.0.0.1", master.port)
	if err := os.WriteFile(conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	sentinel := &redisProc{t: t, bin: bin, args: []string{conf}, port: port, log: filepath.Join(dir, "sentinel.log")}
	sentinel.start()
	t.Cleanup(sentinel.stop)

	kit := redisKit("sentinel", RedisOptions{
		URL:            "redis://ignored-host/3",
		SentinelMaster: "mymaster",
		SentinelAddrs:  []string{sentinel.addr()},
	})
	t.Run("round trip", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		store := NewTicketStore(b, newTestCodec(t, newSecret(t)), CookieOptions{}, fixedClock(testNow))
		br := newBrowser(t)
		sess := newSession(t, 3000)
		saveVia(t, br, store, sess)
		got, err := store.Load(br.request())
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		sameSession(t, got, sess)
		// The URL's database number was used, on the master Sentinel named.
		direct := redis.NewClient(&redis.Options{Addr: master.addr(), DB: 3})
		defer direct.Close()
		if n, err := direct.DBSize(context.Background()).Result(); err != nil || n == 0 {
			t.Errorf("the master's database 3 holds %d keys (%v)", n, err)
		}
	})
	t.Run("ticket store", func(t *testing.T) { testTicketStore(t, kit) })
}

func TestRedisCluster(t *testing.T) {
	cli := requireCommand(t, "redis-cli")
	var nodes []*redisProc
	var addrs []string
	for range 3 {
		dir := t.TempDir()
		n := startRedis(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "5000",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"))
		nodes = append(nodes, n)
		addrs = append(addrs, n.addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			c := redis.NewClient(&redis.Options{Addr: n.addr()})
			info, err := c.ClusterInfo(context.Background()).Result()
			c.Close()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster not ok on %s: %v\n%s", n.addr(), err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	kit := redisKit("cluster", RedisOptions{ClusterAddrs: addrs[:1]})
	t.Run("backend", func(t *testing.T) { testBackendContract(t, kit) })
	t.Run("ticket store", func(t *testing.T) { testTicketStore(t, kit) })
	t.Run("keys spread over the nodes", func(t *testing.T) {
		b, _ := kit.new(t, nil)
		store := NewTicketStore(b, newTestCodec(t, newSecret(t)), CookieOptions{}, fixedClock(testNow))
		for range 20 {
			saveVia(t, newBrowser(t), store, newSession(t, 100))
		}
		rb := b.(*RedisBackend)
		var used atomic.Int32
		err := rb.client().(*redis.ClusterClient).ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
			keys, err := c.Keys(ctx, rb.prefix+"session:*").Result()
			if len(keys) > 0 {
				used.Add(1)
			}
			return err
		})
		if err != nil || used.Load() < 2 {
			t.Errorf("sessions on %d of 3 nodes (%v); want them spread", used.Load(), err)
		}
	})
	t.Run("publish and subscribe across nodes", func(t *testing.T) {
		var bs []*RedisBackend
		for _, seed := range []string{addrs[0], addrs[2]} {
			b, err := NewRedisBackend(RedisOptions{ClusterAddrs: []string{seed}, KeyPrefix: "cluster-pubsub:"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			bs = append(bs, b)
		}
		recs := []*recorder{newRecorder(), newRecorder()}
		for i, b := range bs {
			b.Subscribe("c", recs[i])
			recs[i].want(t, 10*time.Second, "subscribed")
		}
		if err := bs[0].Publish(context.Background(), "c", []byte("hello")); err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			rec.want(t, 5*time.Second, "msg:hello")
		}
	})
}

func TestNewRedisBackendRejects(t *testing.T) {
	tests := []struct {
		name string
		opts RedisOptions
	}{
		{"nothing", RedisOptions{}},
		{"bad scheme", RedisOptions{URL: "http://user:hunter2@localhost"}},
		{"bad database", RedisOptions{URL: "redis://user:hunter2@localhost/x"}},
		{"unix socket", RedisOptions{URL: "unix://user:hunter2@/run/redis.sock"}},
		{"unparsable URL", RedisOptions{URL: "redis://user:hunter2@local host:bad"}},
		{"unknown option", RedisOptions{URL: "redis://user:hunter2@localhost/0?colour=blue"}},
		{"master without Sentinels", RedisOptions{SentinelMaster: "m"}},
		{"Sentinels without master", RedisOptions{SentinelAddrs: []string{"127.0.0.1:26379"}}},
		{"Sentinel and Cluster", RedisOptions{SentinelMaster: "m", SentinelAddrs: []string{"a:1"}, ClusterAddrs: []string{"b:1"}}},
		{"Cluster with a database", RedisOptions{URL: "redis://localhost/2", ClusterAddrs: []string{"b:1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewRedisBackend(tt.opts)
			if err == nil {
				b.Close()
				t.Fatal("NewRedisBackend succeeded")
			}
			if !strings.HasPrefix(err.Error(), "session: redis: ") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q: want the session: redis: prefix and no password", err)
			}
		})
	}
}

func TestNewRedisBackendModes(t *testing.T) {
	tests := []struct {
		name   string
		opts   RedisOptions
		client string
	}{
		{"URL", RedisOptions{URL: "redis://localhost:1"}, "*redis.Client"},
		{"TLS URL", RedisOptions{URL: "rediss://localhost:1"}, "*redis.Client"},
		{"Sentinel", RedisOptions{SentinelMaster: "m", SentinelAddrs: []string{"127.0.0.1:1"}}, "*redis.Client"},
		{"Cluster of one seed", RedisOptions{ClusterAddrs: []string{"127.0.0.1:1"}}, "*redis.ClusterClient"},
		{"Cluster with a password", RedisOptions{URL: "redis://:pw@x", ClusterAddrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}, "*redis.ClusterClient"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewRedisBackend(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := fmt.Sprintf("%T", b.client()); got != tt.client {
				t.Errorf("client %s, want %s", got, tt.client)
			}
			if b.prefix != DefaultKeyPrefix {
				t.Errorf("prefix %q", b.prefix)
			}
			// Nothing listens on port 1: the failure is quick, and no
			// miss.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err = b.Get(ctx, "k")
			if err == nil || errors.Is(err, ErrNotFound) || !strings.HasPrefix(err.Error(), "session: redis: ") {
				t.Errorf("Get = %v; want a session: redis: error, not ErrNotFound", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Get took %v", took)
			}
		})
	}
}
