package e2e

// Redis Sentinel failover under traffic, with real processes: a master, a --replicaof replica and
// one redis-sentinel, real Dex and the real authproxy binary. The master is SIGKILLed, and later
// (once the old master is back as a replica) the new master is SIGSTOPped, while a signed-in
// client keeps sending requests.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The sentinel's settings: the master is judged down 1 s after it stops answering, and a second
// failover of the same master may start only 2×failover-timeout after the first.
const (
	sentinelMasterName = "mymaster"
	sentinelDownAfter  = time.Second
	sentinelFailover   = 5 * time.Second
	// switchSlack is how long after the sentinel's switch a request may still fail.
	switchSlack = 200 * time.Millisecond
)

// startRedisNode starts a redis-server on a free port, a replica of replicaOf unless it is empty,
// and waits until it answers PING.
func startRedisNode(t *testing.T, ps *procSet, name, addr, replicaOf string) *redisServer {
	t.Helper()
	bin := requireRedis(t)
	if addr == "" {
		ports, err := freePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		addr = ports[0]
	}
	_, port, _ := strings.Cut(addr, ":")
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", memDir(t), "--dbfilename", "dump-" + port + ".rdb", "--repl-diskless-sync-delay", "0", "--repl-diskless-load", "on-empty-db"}
	if replicaOf != "" {
		host, rport, _ := strings.Cut(replicaOf, ":")
		args = append(args, "--replicaof", host, rport)
	}
	r := &redisServer{ps: ps, bin: bin, addr: addr}
	r.p = ps.startProc(t, name, nil, bin, args...)
	waitUntil(t, 10*time.Second, name+" answers PING", func() (bool, string) {
		reply, err := r.command("PING")
		return err == nil && reply == "PONG", fmt.Sprintf("%q, %v", reply, err)
	})
	return r
}

// memDir is a directory of the test's in memory (/dev/shm) where the machine has one, else on
// disk. The sentinel rewrites its configuration file and fsyncs it on every change of state, in
// its event loop, and a replica writes the master's RDB to disk to load it: on a disk busy with
// the Go caches of a cold build, an fsync stalled the sentinel for seconds (TILT mode, and no
// answer at all), which is not what these tests are about.
func memDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "authproxy-e2e-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startSentinel starts one redis-sentinel monitoring master with quorum 1.
func startSentinel(t *testing.T, ps *procSet, master string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no redis-sentinel on PATH; CI=true, so this fails instead of skipping")
		}
		t.Skip("no redis-sentinel on PATH (run scripts/install-deps.sh); under CI=true this fails")
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(ports[0], ":")
	host, mport, _ := strings.Cut(master, ":")
	dir := memDir(t)
	conf := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n", port, dir) +
		fmt.Sprintf("sentinel monitor %s %s %s 1\n", sentinelMasterName, host, mport) +
		fmt.Sprintf("sentinel down-after-milliseconds %s %d\n", sentinelMasterName, sentinelDownAfter.Milliseconds()) +
		fmt.Sprintf("sentinel failover-timeout %s %d\n", sentinelMasterName, sentinelFailover.Milliseconds())
	path := filepath.Join(dir, "sentinel.conf") // the sentinel rewrites it, with fsync
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &redisServer{ps: ps, bin: bin, addr: ports[0]}
	s.p = ps.startProc(t, "sentinel", nil, bin, path)
	waitUntil(t, 10*time.Second, "the sentinel answers PING", func() (bool, string) {
		reply, err := s.command("PING")
		return err == nil && reply == "PONG", fmt.Sprintf("%q, %v", reply, err)
	})
	return s
}

// sentinelMaster is the master's address as the sentinel names it now.
func sentinelMaster(s *redisServer) (string, error) {
	reply, err := s.command("SENTINEL", "get-master-addr-by-name", sentinelMasterName)
	if err != nil {
		return "", err
	}
	host, port, ok := strings.Cut(reply, "\n")
	if !ok {
		return "", fmt.Errorf("get-master-addr-by-name: %q", reply)
	}
	return net.JoinHostPort(host, port), nil
}

// waitReplicaKnown waits until replica replicates the master and the sentinel lists it as a
// healthy replica, one it may promote.
func waitReplicaKnown(t *testing.T, sentinel, replica *redisServer) {
	t.Helper()
	waitUntil(t, 20*time.Second, "the sentinel sees "+replica.addr+" as a healthy replica", func() (bool, string) {
		info, err := replica.command("INFO", "replication")
		if err != nil || !strings.Contains(info, "master_link_status:up") {
			return false, fmt.Sprintf("replica: %v %q", err, info)
		}
		reply, err := sentinel.command("SENTINEL", "replicas", sentinelMasterName)
		if err != nil {
			return false, err.Error()
		}
		// The reply is each replica's field names and values, one a line.
		lines := strings.Split(reply, "\n")
		var name string
		for i := 0; i+1 < len(lines); i += 2 {
			switch lines[i] {
			case "name":
				name = lines[i+1]
			case "flags":
				if name == replica.addr && lines[i+1] == "slave" {
					return true, ""
				}
			}
		}
		return false, reply
	})
}

// sentinelTilted reports whether the sentinel is in TILT mode: it saw its own timer late by more
// than 2 s (a starved process on a loaded machine) and, for 30 s after, watches but never fails
// over. The failover tests wait it out instead of counting its 30 s against the switch. A
// sentinel that does not answer is not known to be in TILT mode.
func sentinelTilted(sentinel *redisServer) bool {
	info, err := sentinel.command("INFO", "sentinel")
	return err == nil && infoField(info, "sentinel_tilt") == "1"
}

// waitNoTilt waits until the sentinel answers out of TILT mode (at most its 30 s and some).
func waitNoTilt(t *testing.T, sentinel *redisServer) {
	t.Helper()
	if !sentinelTilted(sentinel) {
		return
	}
	start := time.Now()
	waitUntil(t, 45*time.Second, "the sentinel leaves TILT mode", func() (bool, string) {
		info, err := sentinel.command("INFO", "sentinel")
		return err == nil && infoField(info, "sentinel_tilt") == "0", fmt.Sprintf("sentinel_tilt:%s (%v)", infoField(info, "sentinel_tilt"), err)
	})
	t.Logf("the sentinel was in TILT mode (the machine starved it); waited %v for it to end", time.Since(start).Round(time.Millisecond))
}

// waitReplicated waits until replica has every write master had a moment ago. Replication is
// asynchronous: a replica that has just synced gets the master's writes only once it has
// acknowledged the sync (within a second), and whatever the master has not passed on when it
// dies is lost with it.
func waitReplicated(t *testing.T, master, replica *redisServer) {
	t.Helper()
	info, err := master.command("INFO", "replication")
	if err != nil {
		t.Fatal(err)
	}
	want := infoField(info, "master_repl_offset")
	waitUntil(t, 10*time.Second, replica.addr+" has the master's writes up to offset "+want, func() (bool, string) {
		info, err := replica.command("INFO", "replication")
		got := infoField(info, "slave_repl_offset")
		return err == nil && len(got) > 0 && (len(got) > len(want) || len(got) == len(want) && got >= want), "at " + got
	})
}

// infoField is the value of name in an INFO reply.
func infoField(info, name string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// waitUntil polls cond every 20ms until it holds, failing the test after timeout with cond's
// last word.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v until %s: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killRedis sends sig to r: SIGKILL ends it for good (and takes it out of the procSet, which
// would otherwise report it as exited early); SIGSTOP freezes it until SIGCONT.
func killRedis(t *testing.T, r *redisServer, sig syscall.Signal) {
	t.Helper()
	if err := r.p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if sig != syscall.SIGKILL {
		return
	}
	<-r.p.done
	ps := r.ps
	if i := slices.Index(ps.procs, r.p); i >= 0 {
		ps.procs = slices.Delete(ps.procs, i, i+1)
	}
	ps.stopped = append(ps.stopped, r.p)
}

// signInClient signs u in at Dex without a browser: it starts at proxyURL+path, posts Dex's login
// form and stops at the redirect back to the proxy's callback, which it returns unvisited. The
// client's jar holds the sign-in's state cookie; it follows no redirects to the proxy.
func signInClient(t *testing.T, proxyURL string, u user, path string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), proxyURL+"/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	req, _ := http.NewRequest(http.MethodGet, proxyURL+path, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req) // through the proxy's redirect to Dex's login form
	if err != nil {
		t.Fatalf("GET %s%s: %v", proxyURL, path, err)
	}
	resp.Body.Close()
	login := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK || !strings.Contains(login, "/auth/local/login") {
		t.Fatalf("GET %s%s without a session: %s at %s; want Dex's login form", proxyURL, path, resp.Status, login)
	}
	resp, err = client.PostForm(login, url.Values{"login": {u.email}, "password": {u.password}})
	if err != nil {
		t.Fatalf("posting Dex's login form: %v", err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, proxyURL+"/oauth2/callback?") {
		t.Fatalf("after Dex's login form: %s, Location %q; want the proxy's callback", resp.Status, callback)
	}
	return client, callback
}

// visitCallback sends the browser (client) to the callback URL.
func visitCallback(t *testing.T, client *http.Client, callback string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, callback, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET the callback: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp, string(body)
}

// outcome is one request of steadyTraffic.
type outcome struct {
	start, end time.Time
	status     int // 0: no answer (err)
	retryAfter string
	err        error
}

// steadyTraffic sends GET url with the cookies from workers goroutines, each pausing 10ms between
// requests, until stop is closed; wait returns every outcome.
func steadyTraffic(url string, cookies []*http.Cookie, workers int, stop <-chan struct{}) (wait func() []outcome) {
	var (
		mu  sync.Mutex
		out []outcome
		wg  sync.WaitGroup
	)
	transport := &http.Transport{MaxIdleConnsPerHost: workers}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				o := outcome{start: time.Now()}
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					o.status, o.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
				}
				o.end, o.err = time.Now(), err
				mu.Lock()
				out = append(out, o)
				mu.Unlock()
			}
		})
	}
	return func() []outcome {
		wg.Wait()
		transport.CloseIdleConnections()
		slices.SortFunc(out, func(a, b outcome) int { return a.start.Compare(b.start) })
		return out
	}
}

// failoverFigures are what one failover looked like from the client's side.
type failoverFigures struct {
	requests        int
	failed          map[int]int // by status; 0 for no answer
	switched        time.Time
	killToSwitch    time.Duration
	switchToSuccess time.Duration // to the end of the first success sent after the switch
	logLines        int
}

func (f failoverFigures) String() string {
	return fmt.Sprintf("%d requests, %d failed %v, kill to switch %v, switch to first success %v, %d log lines",
		f.requests, f.failedTotal(), f.failed, f.killToSwitch.Round(10*time.Millisecond), f.switchToSuccess.Round(10*time.Millisecond), f.logLines)
}

func (f failoverFigures) failedTotal() (n int) {
	for _, c := range f.failed {
		n += c
	}
	return n
}

// readyzWithin asks /readyz with a client that gives up after limit, as a probe would.
func readyzWithin(proxyURL string, limit time.Duration) (int, string, time.Duration, error) {
	client := &http.Client{Timeout: limit}
	start := time.Now()
	resp, err := client.Get(proxyURL + "/readyz")
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, strings.TrimSpace(string(b)), time.Since(start), nil
}

// logLineCount counts the lines authproxy has logged so far, other than the access log's (one
// a request, by design).
func logLineCount(t *testing.T, pp *proxyProc) int {
	t.Helper()
	n := 0
	for line := range strings.Lines(pp.log(t)) {
		if !strings.Contains(line, `"msg":"request"`) {
			n++
		}
	}
	return n
}

// TestSentinelFailover signs in with the Redis ticket store behind Sentinel and fails the master
// over twice under steady traffic: first SIGKILL, then (with the old master back as a replica)
// SIGSTOP. Sessions survive each promotion; requests fail only between the kill and the
// sentinel's switch (+0.2 s), each with a 503 carrying Retry-After, never a 500; /readyz answers
// within a probe's timeout naming only the session store; a sign-in whose callback lands in the
// outage gets a 503 and completes when the callback is loaded again; the log stays JSON and
// bounded.
func TestSentinelFailover(t *testing.T) {
	ps := newProcSet(t)
	// Before the processes stop: a connection a client opened but has not sent a request on yet
	// holds up authproxy's graceful shutdown for 5 seconds.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	master := startRedisNode(t, ps, "redis-master", "", "")
	replica := startRedisNode(t, ps, "redis-replica", "", master.addr)
	sentinel := startSentinel(t, ps, master.addr)
	waitReplicaKnown(t, sentinel, replica)

	proxy := newProxy(t, ps, "authproxy-sentinel")
	dex := startDex(t, ps, dexOptions{Callbacks: []string{proxy.callbackURL()}})
	proxy.start(t, dexProxyEnv(dex, proxy.callbackURL(), newSecret(),
		"AUTHPROXY_SESSION_STORE=redis",
		"AUTHPROXY_REDIS_SENTINEL_MASTER="+sentinelMasterName,
		"AUTHPROXY_REDIS_SENTINEL_ADDRS="+sentinel.addr,
		"AUTHPROXY_LOG_FORMAT=json")...)

	client, callback := signInClient(t, proxy.url, alice, "/sentinel/first")
	if resp, body := visitCallback(t, client, callback); resp.StatusCode != http.StatusFound {
		t.Fatalf("the callback: %s %.300q; want 302", resp.Status, body)
	}
	u, _ := url.Parse(proxy.url)
	jar := client.Jar.Cookies(u)
	wantSignedIn(t, "signed in", proxy.url, jar, alice)

	// Another sign-in, stopped before its callback: the callback is sent during the outage.
	pending, pendingCallback := signInClient(t, proxy.url, alice, "/sentinel/during/outage")

	// failover runs steady traffic, sends sig to the master (victim) once heir has its writes,
	// waits for the sentinel's switch and for 1 s of traffic after it, and checks every answer.
	// during runs right after the signal.
	failover := func(t *testing.T, victim, heir *redisServer, sig syscall.Signal, during func(t *testing.T)) failoverFigures {
		t.Helper()
		waitReplicated(t, victim, heir)
		waitNoTilt(t, sentinel)
		linesBefore := logLineCount(t, proxy)
		stop := make(chan struct{})
		stopTraffic := sync.OnceFunc(func() { close(stop) })
		defer stopTraffic() // should the test end early
		wait := steadyTraffic(proxy.url+"/api/whoami", jar, 4, stop)
		time.Sleep(300 * time.Millisecond) // traffic before the kill
		killRedis(t, victim, sig)
		killed := time.Now()
		if during != nil {
			during(t)
		}
		// Within 15 s; a sentinel starved into TILT mode meanwhile gets its 30 s of TILT on top
		// (the request checks below then judge the longer outage the same way).
		var switched time.Time
		deadline, tilted := time.Now().Add(15*time.Second), false
		for switched.IsZero() {
			addr, err := sentinelMaster(sentinel)
			switch {
			case err == nil && addr != victim.addr:
				switched = time.Now()
			case !tilted && sentinelTilted(sentinel):
				tilted = true
				waitNoTilt(t, sentinel)
				deadline = time.Now().Add(15 * time.Second)
			case time.Now().After(deadline):
				t.Fatalf("waiting 15s until the sentinel switches master: %s, %v", addr, err)
			default:
				time.Sleep(20 * time.Millisecond)
			}
		}
		time.Sleep(time.Second) // traffic after the switch
		stopTraffic()
		out := wait()
		f := failoverFigures{requests: len(out), failed: map[int]int{}, switched: switched, killToSwitch: switched.Sub(killed), switchToSuccess: -1}
		// Each kind of problem is reported once, with its count and first example.
		type problemKind struct {
			n     int
			first outcome
		}
		problems := map[string]*problemKind{}
		var kinds []string
		problem := func(kind string, o outcome) {
			if problems[kind] == nil {
				problems[kind] = &problemKind{first: o}
				kinds = append(kinds, kind)
			}
			problems[kind].n++
		}
		for _, o := range out {
			if o.status == http.StatusOK {
				if f.switchToSuccess < 0 && !o.start.Before(switched) {
					f.switchToSuccess = o.end.Sub(switched)
				}
				continue
			}
			f.failed[o.status]++
			switch {
			case o.status != http.StatusServiceUnavailable:
				problem("want 200 or 503", o)
			case o.retryAfter == "":
				problem("503 without Retry-After", o)
			}
			// A request in flight at the kill may fail; one sent after the switch (+slack) must not.
			if o.end.Before(killed) || o.start.After(switched.Add(switchSlack)) {
				problem(fmt.Sprintf("failed outside the kill to the switch (+%v)", switchSlack), o)
			}
		}
		for _, kind := range kinds {
			p := problems[kind]
			t.Errorf("%d requests: %s; the first sent %v after the kill (switch at %v): status %d, %v",
				p.n, kind, p.first.start.Sub(killed).Round(time.Millisecond), switched.Sub(killed).Round(time.Millisecond), p.first.status, p.first.err)
		}
		if f.switchToSuccess < 0 {
			t.Errorf("no request succeeded after the switch")
		}
		f.logLines = logLineCount(t, proxy) - linesBefore
		wantSignedIn(t, "after the failover", proxy.url, jar, alice)
		return f
	}

	readyzDown := func(t *testing.T, step string) {
		t.Helper()
		const probeTimeout = 2 * time.Second // deploy/kubernetes' timeoutSeconds
		code, body, took, err := readyzWithin(proxy.url, probeTimeout)
		t.Logf("%s: /readyz %d %s in %v", step, code, body, took.Round(time.Millisecond))
		if err != nil || code != http.StatusServiceUnavailable || body != `{"status":"unavailable","not_ready":["session_store"]}` {
			t.Errorf("%s: /readyz %d %q (%v) in %v; want 503 {\"status\":\"unavailable\",\"not_ready\":[\"session_store\"]} within %v",
				step, code, body, err, took.Round(time.Millisecond), probeTimeout)
		}
	}

	kill := failover(t, master, replica, syscall.SIGKILL, func(t *testing.T) {
		resp, body := visitCallback(t, pending, pendingCallback)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("the callback during the outage: %s, Retry-After %q, %.300q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"), body)
		}
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 {
				t.Errorf("the callback during the outage expired cookie %s; the sign-in's state must survive", c.Name)
			}
		}
		readyzDown(t, "master killed")
	})
	t.Logf("SIGKILL of the master: %v", kill)

	// The callback again, once the store is back, completes that sign-in.
	resp, body := visitCallback(t, pending, pendingCallback)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "/sentinel/during/outage" {
		t.Errorf("the callback reloaded after the outage: %s, Location %q, %.300q; want 302 to /sentinel/during/outage", resp.Status, loc, body)
	} else {
		wantSignedIn(t, "the sign-in completed after the outage", proxy.url, pending.Jar.Cookies(u), alice)
	}

	// The old master comes back as a replica of the new one; the sentinel starts another failover
	// of the same master only 2×failover-timeout after the first.
	old := startRedisNode(t, ps, "redis-old-master", master.addr, replica.addr)
	waitReplicaKnown(t, sentinel, old)
	time.Sleep(time.Until(kill.switched.Add(2*sentinelFailover + 200*time.Millisecond)))

	t.Cleanup(func() { replica.p.cmd.Process.Signal(syscall.SIGCONT) }) // should the test end early
	stopped := failover(t, replica, old, syscall.SIGSTOP, func(t *testing.T) { readyzDown(t, "master stopped") })
	t.Logf("SIGSTOP of the master: %v", stopped)
	if err := replica.p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// The log is JSON throughout, and bounded: a handful of lines per failover, not one a request.
	for i, line := range strings.Split(strings.TrimSpace(proxy.log(t)), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("authproxy log line %d is not JSON: %.200q", i+1, line)
		}
	}
	var own []string // what authproxy logged other than the access log
	for line := range strings.Lines(proxy.log(t)) {
		if !strings.Contains(line, `"msg":"request"`) {
			own = append(own, line)
		}
	}
	t.Logf("authproxy's log, without the access log:\n%s", strings.Join(own, ""))
	for name, f := range map[string]failoverFigures{"SIGKILL": kill, "SIGSTOP": stopped} {
		if f.logLines > 20 {
			t.Errorf("%s: authproxy wrote %d log lines for %d failed requests; want at most 20", name, f.logLines, f.failedTotal())
		}
	}
	var missing []string
	for _, want := range []string{`"msg":"session store failed"`} {
		if !strings.Contains(proxy.log(t), want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		t.Errorf("authproxy's log lacks %q", missing)
	}
}
