package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// target is one proxy the load is sent through.
type target struct {
	name   string
	p      *proc
	cookie string // the session's Cookie header ("" for the bare proxy)
	redis  bool   // the Redis store: redis-server's CPU is its cost too

	idle   procStat // right after start-up, before any request
	rounds []round
	peak   procStat // after the rounds: VmHWM is the peak of the whole run so far

	rate    round // at half the bare proxy's peak rate (hey)
	signIns []*signInResult
	dexCPU  time.Duration // Dex's CPU over this target's sign-ins
	users   *usersRun
}

// round is one load run and the CPU the proxy (and redis-server) used during it.
type round struct {
	load     loadResult
	cpu      time.Duration
	redisCPU time.Duration
	// other is the CPU time the machine spent on anything but the stack, the load
	// generator and the harness during the run: other tenants' work, which skews the
	// figures. wall is the run's length.
	other, wall time.Duration
}

// otherShare is other as a share of the machine's whole CPU capacity over the run.
func (r round) otherShare() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.other) / (float64(r.wall) * float64(runtime.NumCPU()))
}

// usersRun is the many-distinct-users phase.
type usersRun struct {
	n          int
	mintTime   time.Duration
	cookieLen  int // bytes of one user's Cookie header
	rssBefore  int64
	r          round
	rssAfter   int64
	hwmAfter   int64
	redisRSS   [2]int64 // redis-server's RSS before minting and after the run
	heapBefore float64  // go_memstats_heap_inuse_bytes
	heapAfter  float64
}

func (t *target) url() string { return t.p.url() + loadPath }

// cpuPer1k is CPU milliseconds per 1,000 requests.
func cpuPer1k(cpu time.Duration, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return float64(cpu) / float64(time.Millisecond) / float64(requests) * 1000
}

// summary aggregates a target's rounds: medians of per-round rps and percentiles, CPU and
// errors summed over all rounds.
type summary struct {
	rps, p50, p99, p999 float64 // rps; latencies in ms
	cpu1k, redis1k      float64
	requests, errors    int64
}

func summarize(rounds []round) summary {
	var s summary
	var rps, p50, p99, p999 []float64
	var cpu, rcpu time.Duration
	for _, r := range rounds {
		rps = append(rps, r.load.RPS())
		p50 = append(p50, ms(r.load.P50))
		p99 = append(p99, ms(r.load.P99))
		p999 = append(p999, ms(r.load.P999))
		cpu += r.cpu
		rcpu += r.redisCPU
		s.requests += r.load.Requests
		s.errors += r.load.StatusErrors + r.load.SocketErrors
	}
	s.rps, s.p50, s.p99, s.p999 = median(rps), median(p50), median(p99), median(p999)
	s.cpu1k, s.redis1k = cpuPer1k(cpu, s.requests), cpuPer1k(rcpu, s.requests)
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// measure runs fn and returns the CPU time p (and redis-server, when redis) used meanwhile.
func measure(s *stack, p *proc, withRedis bool, fn func() (loadResult, error)) (round, error) {
	t0, m0, st0, self0 := time.Now(), machineBusy(), s.stackCPU(), selfCPU()
	c0 := mustProc(p).cpu
	var r0 time.Duration
	if withRedis {
		r0 = mustProc(s.redis).cpu
	}
	res, err := fn()
	r := round{load: res, cpu: mustProc(p).cpu - c0}
	if withRedis {
		r.redisCPU = mustProc(s.redis).cpu - r0
	}
	r.wall = time.Since(t0)
	r.other = max(0, machineBusy()-m0-(s.stackCPU()-st0)-(selfCPU()-self0)-res.GenCPU)
	return r, err
}

// selfCPU is the harness's own CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runBench(ctx context.Context, o *options) (err error) {
	start := time.Now()
	logf("starting Dex, redis-server, the upstream, the bare proxy and two authproxies")
	s, err := startStack(ctx, o)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // let start-up settle before reading idle memory
	bare := &target{name: "bare proxy", p: s.bare}
	cookie := &target{name: "authproxy cookie", p: s.cookie}
	ticket := &target{name: "authproxy redis", p: s.ticket, redis: true}
	targets := []*target{bare, cookie, ticket}
	for _, t := range targets {
		t.idle = mustProc(t.p)
	}

	// Sign-ins: sequential, timed, with authproxy's and Dex's CPU; the last one's cookie
	// carries the load.
	for _, t := range []*target{cookie, ticket} {
		d0 := schedCPU(s.dex.pid())
		for i := range o.signIns {
			res, err := signIn(ctx, t.p)
			if err != nil {
				return fmt.Errorf("%s: sign-in %d: %w", t.name, i+1, err)
			}
			t.signIns = append(t.signIns, res)
			t.cookie = res.cookie
		}
		t.dexCPU = schedCPU(s.dex.pid()) - d0
		user, err := whoami(t.p.url(), t.cookie)
		if err != nil || user == "" {
			return fmt.Errorf("%s: signed in, the upstream got no X-Forwarded-User (%q, %v)", t.name, user, err)
		}
		sum := signInSummary(t.signIns)
		logf("%s: %d sign-ins, median %.0f ms each (callback %.1f ms), authproxy CPU %.2f ms per sign-in; session cookie %d bytes",
			t.name, len(t.signIns), sum.medianTotal, sum.meanCallback, sum.meanCPU, len(t.cookie))
	}
	if user, err := whoami(bare.p.url(), ""); err != nil || user != "" {
		return fmt.Errorf("bare proxy: /whoami: %q, %v", user, err)
	}

	logf("warm-up: %d s per target", 3)
	for _, t := range targets {
		if _, _, err := runWrk(ctx, o.wrk, s.dir, wrkRun{url: t.url(), cookie: t.cookie, threads: o.threads, conns: o.conns, duration: 3 * time.Second}); err != nil {
			return fmt.Errorf("%s: warm-up: %w", t.name, err)
		}
	}

	logf("%d interleaved rounds of %s per target, wrk -t%d -c%d", o.rounds, o.duration, o.threads, o.conns)
	for i := range o.rounds {
		for _, t := range targets {
			r, err := measure(s, t.p, t.redis, func() (loadResult, error) {
				res, _, err := runWrk(ctx, o.wrk, s.dir, wrkRun{url: t.url(), cookie: t.cookie, threads: o.threads, conns: o.conns, duration: o.duration})
				return res, err
			})
			if err != nil {
				return fmt.Errorf("%s: round %d: %w", t.name, i+1, err)
			}
			t.rounds = append(t.rounds, r)
			logf("round %d %-17s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6.1f ms/1k req  errors %d  other load %.0f %%",
				i+1, t.name, r.load.RPS(), ms(r.load.P50), ms(r.load.P99), cpuPer1k(r.cpu, r.load.Requests),
				r.load.StatusErrors+r.load.SocketErrors, 100*r.otherShare())
			if err := s.check(); err != nil {
				return err
			}
		}
	}
	for _, t := range targets {
		t.peak = mustProc(t.p)
	}

	// p99 at half the bare proxy's peak rate, open-loop-ish: hey's per-worker rate limit.
	rate := summarize(bare.rounds).rps / 2
	logf("rate-limited: %.0f req/s (half the bare proxy's peak) for %s per target, hey -c %d -q %.1f",
		rate, o.duration, o.conns, rate/float64(o.conns))
	for _, t := range targets {
		r, err := measure(s, t.p, t.redis, func() (loadResult, error) {
			res, _, err := runHey(ctx, o.hey, t.url(), t.cookie, rate, o.conns, o.duration)
			return res, err
		})
		if err != nil {
			return fmt.Errorf("%s: rate-limited run: %w", t.name, err)
		}
		t.rate = r
		logf("rate %-17s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  CPU %6.1f ms/1k req  errors %d",
			t.name, r.load.RPS(), ms(r.load.P50), ms(r.load.P99), cpuPer1k(r.cpu, r.load.Requests), r.load.StatusErrors+r.load.SocketErrors)
	}

	// Many distinct users: sessions minted with the stack's cookie secret (for Redis, saved
	// in the bench Redis), cloned from the real signed-in session so that each is as large.
	for _, t := range []*target{cookie, ticket} {
		u, err := runUsers(ctx, s, o, t)
		if err != nil {
			return fmt.Errorf("%s: %d users: %w", t.name, o.users, err)
		}
		t.users = u
		logf("%d users %-17s %8.0f req/s  p99 %6.2f ms  RSS %.1f → %.1f MiB  errors %d", u.n, t.name,
			u.r.load.RPS(), ms(u.r.load.P99), mib(u.rssBefore), mib(u.rssAfter), u.r.load.StatusErrors+u.r.load.SocketErrors)
	}
	if err := s.check(); err != nil {
		return err
	}

	var out strings.Builder
	writeReport(&out, o, s, targets, rate, time.Since(start))
	fmt.Print(out.String())
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(out.String()), 0o644); err != nil {
		return err
	}
	logf("raw figures written to %s (%s in all)", o.out, time.Since(start).Round(time.Second))
	var errs int64
	for _, t := range targets {
		errs += summarize(t.rounds).errors + t.rate.load.StatusErrors + t.rate.load.SocketErrors
		if t.users != nil {
			errs += t.users.r.load.StatusErrors + t.users.r.load.SocketErrors
		}
	}
	if errs > 0 {
		return fmt.Errorf("%d requests failed during the benchmark: the figures are not valid", errs)
	}
	return nil
}

// runUsers mints o.users sessions for t's store and drives requests spread over all of them.
func runUsers(ctx context.Context, s *stack, o *options, t *target) (*usersRun, error) {
	redisAddr := ""
	if t.redis {
		redisAddr = s.redisAddr
	}
	m, err := newMinter(s.cookieSecret, redisAddr)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tmpl, err := m.load(t.cookie)
	if err != nil {
		return nil, fmt.Errorf("opening the signed-in session: %w", err)
	}
	u := &usersRun{n: o.users}
	u.redisRSS[0] = mustProc(s.redis).rss
	t0 := time.Now()
	cookies, err := m.mint(ctx, tmpl, o.users)
	if err != nil {
		return nil, err
	}
	u.mintTime = time.Since(t0)
	u.cookieLen = len(cookies[0])
	if user, err := whoami(t.p.url(), cookies[0]); err != nil || user != "bench-user-00000" {
		return nil, fmt.Errorf("a minted session does not sign in: %q, %v", user, err)
	}
	file := filepath.Join(s.dir, strings.ReplaceAll(t.name, " ", "-")+"-users.txt")
	if err := writeCookies(file, cookies); err != nil {
		return nil, err
	}
	u.rssBefore = mustProc(t.p).rss
	u.heapBefore = scrapeOne(t.p, "go_memstats_heap_inuse_bytes")
	u.r, err = measure(s, t.p, t.redis, func() (loadResult, error) {
		res, _, err := runWrk(ctx, o.wrk, s.dir, wrkRun{url: t.url(), users: file, threads: o.threads, conns: o.conns, duration: o.duration})
		return res, err
	})
	if err != nil {
		return nil, err
	}
	st := mustProc(t.p)
	u.rssAfter, u.hwmAfter = st.rss, st.hwm
	u.heapAfter = scrapeOne(t.p, "go_memstats_heap_inuse_bytes")
	u.redisRSS[1] = mustProc(s.redis).rss
	return u, nil
}

// signIns summarizes a target's sign-ins (milliseconds).
type signInStats struct {
	medianTotal, meanTotal, maxTotal float64
	meanCallback, meanCPU, meanCbCPU float64
}

func signInSummary(r []*signInResult) signInStats {
	var st signInStats
	var totals []float64
	for _, x := range r {
		totals = append(totals, ms(x.total))
		st.meanTotal += ms(x.total)
		st.maxTotal = max(st.maxTotal, ms(x.total))
		st.meanCallback += ms(x.callback)
		st.meanCPU += ms(x.cpu)
		st.meanCbCPU += ms(x.callbackCPU)
	}
	n := float64(len(r))
	st.medianTotal = median(totals)
	st.meanTotal /= n
	st.meanCallback /= n
	st.meanCPU /= n
	st.meanCbCPU /= n
	return st
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(data)) {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func writeReport(w io.Writer, o *options, s *stack, targets []*target, rate float64, took time.Duration) {
	bare := targets[0]
	b := summarize(bare.rounds)
	fmt.Fprintf(w, "authproxy benchmark — %s, commit %s, %s, %d CPUs (%s), took %s\n",
		time.Now().UTC().Format(time.RFC3339), gitDescribe(), runtime.Version(), runtime.NumCPU(), cpuModel(), took.Round(time.Second))
	fmt.Fprintf(w, "load: wrk -t%d -c%d, %d interleaved rounds of %s per target, GET %s with the session cookie; "+
		"the load generator shares the machine's CPUs with the proxies, so compare CPU per request and ratios, not absolute req/s\n\n",
		o.threads, o.conns, o.rounds, o.duration, loadPath)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50 ms\tp99 ms\tp99.9 ms\tCPU ms/1k req\t+redis CPU ms/1k\tidle RSS MiB\tpeak RSS MiB\terrors\t")
	for _, t := range targets {
		x := summarize(t.rounds)
		redis := "-"
		if t.redis {
			redis = fmt.Sprintf("%.1f", x.redis1k)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t%.1f\t%.1f\t%d\t\n", t.name, x.rps, x.p50, x.p99, x.p999, x.cpu1k, redis,
			mib(t.idle.rss), mib(t.peak.hwm), x.errors)
	}
	tw.Flush()
	var others []float64
	for _, t := range targets {
		for _, r := range t.rounds {
			others = append(others, 100*r.otherShare())
		}
	}
	fmt.Fprintf(w, "CPU used by other work on the machine during the rounds: median %.1f %%, max %.1f %% of all CPUs\n",
		median(others), slices.Max(others))
	fmt.Fprintln(w, "\nratios to the bare proxy, same run (req/s: higher is better; the rest: lower is better)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50\tp99\tCPU/req\tCPU/req incl. redis\tpeak RSS\t")
	for _, t := range targets[1:] {
		x := summarize(t.rounds)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.name, ratio(x.rps, b.rps), ratio(x.p50, b.p50), ratio(x.p99, b.p99),
			ratio(x.cpu1k, b.cpu1k), ratio(x.cpu1k+x.redis1k, b.cpu1k), ratio(float64(t.peak.hwm), float64(bare.peak.hwm)))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nat half the bare proxy's peak rate (%.0f req/s offered; hey -c %d -q %.1f per worker, %s; "+
		"wrk2 is not in Debian, and hey's rate limit is closed-loop: a slow response delays the next request)\n",
		rate, o.conns, rate/float64(o.conns), o.duration)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50 ms\tp99 ms\tp99 ratio\tCPU ms/1k req\terrors\t")
	for _, t := range targets {
		r := t.rate
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%s\t%.1f\t%d\t\n", t.name, r.load.RPS(), ms(r.load.P50), ms(r.load.P99),
			ratio(ms(r.load.P99), ms(bare.rate.load.P99)), cpuPer1k(r.cpu, r.load.Requests), r.load.StatusErrors+r.load.SocketErrors)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nmany users: %d distinct signed-in users (sessions minted with the cookie secret, cloned from a real Dex session), "+
		"requests spread over all of them, %s, wrk -t%d -c%d\n", o.users, o.duration, o.threads, o.conns)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\treq/s\tp50 ms\tp99 ms\tCPU ms/1k req\tRSS before MiB\tRSS after MiB\tpeak RSS MiB\theap before→after MiB\tredis RSS MiB\tcookie bytes\tminting\terrors\t")
	for _, t := range targets[1:] {
		u := t.users
		redis := "-"
		if t.redis {
			redis = fmt.Sprintf("%.1f → %.1f", mib(u.redisRSS[0]), mib(u.redisRSS[1]))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f → %.1f\t%s\t%d\t%s\t%d\t\n", t.name, u.r.load.RPS(),
			ms(u.r.load.P50), ms(u.r.load.P99), cpuPer1k(u.r.cpu, u.r.load.Requests), mib(u.rssBefore), mib(u.rssAfter), mib(u.hwmAfter),
			u.heapBefore/(1<<20), u.heapAfter/(1<<20), redis, u.cookieLen, u.mintTime.Round(time.Millisecond), u.r.load.StatusErrors+u.r.load.SocketErrors)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nsign-in: %d sequential sign-ins per authproxy against Dex (GET page → Dex → login form POST → /oauth2/callback → page); "+
		"CPU from /proc/PID/task/*/schedstat\n", o.signIns)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tmedian ms\tmean ms\tmax ms\tcallback ms\tauthproxy CPU ms/sign-in\tcallback CPU ms\tDex CPU ms/sign-in\tsession cookie bytes\t")
	for _, t := range targets[1:] {
		st := signInSummary(t.signIns)
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.0f\t%.1f\t%.2f\t%.2f\t%.1f\t%d\t\n", t.name, st.medianTotal, st.meanTotal, st.maxTotal,
			st.meanCallback, st.meanCPU, st.meanCbCPU, ms(t.dexCPU)/float64(len(t.signIns)), len(t.cookie))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nraw: every round (req, s, req/s, p50/p75/p90/p99/p99.9/max ms, proxy CPU ms, redis-server CPU ms, wrk CPU ms, errors status+socket,")
	fmt.Fprintln(w, "     other: CPU the machine spent outside this benchmark during the round, % of all CPUs; above ~5 % the round was disturbed)")
	var worst float64
	for i := range o.rounds {
		for _, t := range targets {
			r := t.rounds[i]
			l := r.load
			worst = max(worst, r.otherShare())
			fmt.Fprintf(w, "round %d  %-17s %8d req %6.2f s %8.0f req/s  %.3f/%.3f/%.3f/%.3f/%.3f/%.3f ms  cpu %.0f ms  redis %.0f ms  wrk %.0f ms  errors %d+%d  other %.1f %%\n",
				i+1, t.name, l.Requests, l.Duration.Seconds(), l.RPS(), ms(l.P50), ms(l.P75), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max),
				ms(r.cpu), ms(r.redisCPU), ms(l.GenCPU), l.StatusErrors, l.SocketErrors, 100*r.otherShare())
		}
	}
	if worst > 0.05 {
		fmt.Fprintf(w, "WARNING: other work used up to %.0f %% of the machine during a round: req/s and latency are skewed; CPU per request less so\n", 100*worst)
	}
	fmt.Fprintln(w, "raw: sign-ins (total ms, callback ms, authproxy CPU ms, callback CPU ms)")
	for _, t := range targets[1:] {
		var parts []string
		for _, x := range t.signIns {
			parts = append(parts, fmt.Sprintf("%.0f/%.1f/%.2f/%.2f", ms(x.total), ms(x.callback), ms(x.cpu), ms(x.callbackCPU)))
		}
		fmt.Fprintf(w, "%-17s %s\n", t.name, strings.Join(parts, " "))
	}
	fmt.Fprintln(w, "raw: memory (idle VmRSS, VmHWM after the rounds, VmRSS after the rounds)")
	for _, t := range targets {
		fmt.Fprintf(w, "%-17s idle %.1f MiB  peak %.1f MiB  after rounds %.1f MiB\n", t.name, mib(t.idle.rss), mib(t.peak.hwm), mib(t.peak.rss))
	}
	for _, p := range []*proc{s.cookie, s.ticket} {
		lines, requests, warnings := p.log.counts()
		fmt.Fprintf(w, "%s log: %d lines, %d access-log lines, %d warnings or errors\n", p.name, lines, requests, warnings)
		for _, l := range p.log.problems() {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}
