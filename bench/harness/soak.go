package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// soakSample is one store's figures over one sampling interval.
type soakSample struct {
	elapsed    time.Duration
	load       loadResult
	cpu        time.Duration
	outcomes   map[string]float64 // authproxy_requests_total by outcome, this interval only
	badOutcome float64            // outcomes other than proxied and endpoint (the scrapes)
	goroutines float64            // go_goroutines
	rssMetric  float64            // process_resident_memory_bytes
	heap       float64            // go_memstats_heap_inuse_bytes
	rss        int64              // VmRSS
	other      float64            // share of the machine's CPU used by other work meanwhile
}

type soakTarget struct {
	name    string
	p       *proc
	file    string // the users' cookies
	idleRSS int64
	prev    map[string]float64
	samples []soakSample
}

// runSoak drives both authproxies at once with wrk, in back-to-back runs of one sampling
// interval each, for the soak's duration; after each it reads /metrics and /proc.
func runSoak(ctx context.Context, o *options) error {
	start := time.Now()
	logf("soak: starting the stack")
	s, err := startStack(ctx, o)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		return err
	}
	targets := []*soakTarget{{name: "authproxy cookie", p: s.cookie}, {name: "authproxy redis", p: s.ticket}}
	for _, t := range targets {
		res, err := signIn(ctx, t.p)
		if err != nil {
			return fmt.Errorf("%s: sign-in: %w", t.name, err)
		}
		redisAddr := ""
		if t.p == s.ticket {
			redisAddr = s.redisAddr
		}
		m, err := newMinter(s.cookieSecret, redisAddr)
		if err != nil {
			return err
		}
		tmpl, err := m.load(res.cookie)
		if err != nil {
			m.Close()
			return fmt.Errorf("%s: opening the signed-in session: %w", t.name, err)
		}
		cookies, err := m.mint(ctx, tmpl, o.users)
		m.Close()
		if err != nil {
			return err
		}
		// The real sign-in's session is one of the users too.
		cookies = append(cookies, res.cookie)
		t.file = filepath.Join(s.dir, strings.ReplaceAll(t.name, " ", "-")+"-users.txt")
		if err := writeCookies(t.file, cookies); err != nil {
			return err
		}
		if user, err := whoami(t.p.url(), cookies[0]); err != nil || user != "bench-user-00000" {
			return fmt.Errorf("%s: a minted session does not sign in: %q, %v", t.name, user, err)
		}
		t.idleRSS = mustProc(t.p).rss
		if t.prev, err = scrape(t.p); err != nil {
			return fmt.Errorf("%s: /metrics: %w", t.name, err)
		}
	}

	n := int((o.soakDuration + o.soakInterval - 1) / o.soakInterval)
	logf("soak: %s (%d samples of %s): both authproxies at once, wrk -t1 -c%d each, requests spread over %d users each",
		time.Duration(n)*o.soakInterval, n, o.soakInterval, o.soakConns, o.users+1)
	for i := range n {
		t0, m0, st0, self0 := time.Now(), machineBusy(), s.stackCPU(), selfCPU()
		var wg sync.WaitGroup
		rounds := make([]round, len(targets))
		errs := make([]error, len(targets))
		for j, t := range targets {
			wg.Go(func() {
				rounds[j], errs[j] = measure(s, t.p, false, func() (loadResult, error) {
					res, _, err := runWrk(ctx, o.wrk, s.dir, wrkRun{url: t.p.url() + loadPath, users: t.file, threads: 1, conns: o.soakConns, duration: o.soakInterval})
					return res, err
				})
			})
		}
		wg.Wait()
		for j, t := range targets {
			if errs[j] != nil {
				return fmt.Errorf("%s: sample %d: %w", t.name, i+1, errs[j])
			}
		}
		if err := s.check(); err != nil {
			return err
		}
		other := machineBusy() - m0 - (s.stackCPU() - st0) - (selfCPU() - self0)
		for _, r := range rounds {
			other -= r.load.GenCPU
		}
		otherShare := max(0, float64(other)/(float64(time.Since(t0))*float64(runtime.NumCPU())))
		time.Sleep(250 * time.Millisecond) // let the closed connections' goroutines end
		for j, t := range targets {
			m, err := scrape(t.p)
			if err != nil {
				return fmt.Errorf("%s: /metrics: %w", t.name, err)
			}
			smp := soakSample{
				elapsed: time.Since(start), load: rounds[j].load, cpu: rounds[j].cpu, outcomes: map[string]float64{},
				goroutines: m["go_goroutines"], rssMetric: m["process_resident_memory_bytes"],
				heap: m["go_memstats_heap_inuse_bytes"], rss: mustProc(t.p).rss, other: otherShare,
			}
			cur, prev := outcomes(m), outcomes(t.prev)
			for k, v := range cur {
				if d := v - prev[k]; d != 0 {
					smp.outcomes[k] = d
					if k != "proxied" && k != "endpoint" {
						smp.badOutcome += d
					}
				}
			}
			t.prev = m
			t.samples = append(t.samples, smp)
			logf("%3d/%d %-17s %7.0f req/s  p50 %5.2f ms  p99 %6.2f ms  errors %d+%d (metrics %.0f)  goroutines %.0f  RSS %.1f MiB  heap %.1f MiB  other load %.0f %%",
				i+1, n, t.name, smp.load.RPS(), ms(smp.load.P50), ms(smp.load.P99), smp.load.StatusErrors, smp.load.SocketErrors,
				smp.badOutcome, smp.goroutines, mib(smp.rss), smp.heap/(1<<20), 100*smp.other)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	var out strings.Builder
	pass := writeSoakReport(&out, o, s, targets, time.Since(start))
	fmt.Print(out.String())
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(out.String()), 0o644); err != nil {
		return err
	}
	logf("soak: figures written to %s", o.out)
	if !pass {
		return fmt.Errorf("soak FAILED (see the verdict above)")
	}
	return nil
}

func writeSoakReport(w io.Writer, o *options, s *stack, targets []*soakTarget, took time.Duration) bool {
	fmt.Fprintf(w, "authproxy soak — %s, commit %s, %s, %d CPUs (%s), took %s\n",
		time.Now().UTC().Format(time.RFC3339), gitDescribe(), runtime.Version(), runtime.NumCPU(), cpuModel(), took.Round(time.Second))
	fmt.Fprintf(w, "load: both authproxies at once, each wrk -t1 -c%d, back-to-back runs of %s, GET %s spread over %d signed-in users "+
		"(%d minted + 1 real Dex sign-in); a sample after each run\n\n", o.soakConns, o.soakInterval, loadPath, o.users+1, o.users)
	pass := true
	for _, t := range targets {
		fmt.Fprintf(w, "%s (idle RSS before the load %.1f MiB)\n", t.name, mib(t.idleRSS))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "t\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\twrk errors\tmetrics non-proxied\tCPU ms/1k\tgoroutines\tRSS MiB\tprocess_resident MiB\theap MiB\tother load %\t")
		var reqs, wrkErrs int64
		var badMetric, proxied float64
		for _, x := range t.samples {
			reqs += x.load.Requests
			wrkErrs += x.load.StatusErrors + x.load.SocketErrors
			badMetric += x.badOutcome
			proxied += x.outcomes["proxied"]
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%.0f\t%.1f\t%.0f\t%.1f\t%.1f\t%.1f\t%.0f\t\n",
				x.elapsed.Round(time.Second), x.load.Requests, x.load.RPS(), ms(x.load.P50), ms(x.load.P90), ms(x.load.P99), ms(x.load.P999), ms(x.load.Max),
				x.load.StatusErrors+x.load.SocketErrors, x.badOutcome, cpuPer1k(x.cpu, x.load.Requests), x.goroutines, mib(x.rss), x.rssMetric/(1<<20), x.heap/(1<<20), 100*x.other)
		}
		tw.Flush()
		first, last := t.samples[0], t.samples[len(t.samples)-1]
		minRSS, maxRSS := first.rss, first.rss
		for _, x := range t.samples {
			minRSS, maxRSS = min(minRSS, x.rss), max(maxRSS, x.rss)
		}
		// Memory and goroutines go up and down with GC and connection
		// pools (and the session cache's fill-and-clear): judge the trend,
		// the highest value of the second half against that of the first,
		// not two single samples.
		half := len(t.samples) / 2
		peakRSS := func(xs []soakSample) (m int64) {
			for _, x := range xs {
				m = max(m, x.rss)
			}
			return m
		}
		peakGor := func(xs []soakSample) (m float64) {
			for _, x := range xs {
				m = max(m, x.goroutines)
			}
			return m
		}
		early, late := t.samples[:max(half, 1)], t.samples[half:]
		growth := float64(peakRSS(late)-peakRSS(early)) / float64(peakRSS(early))
		memOK := growth <= o.memTolerance
		errOK := wrkErrs == 0 && badMetric == 0
		gorOK := peakGor(late) <= peakGor(early)+20
		verdict := "PASS"
		if !memOK || !errOK || !gorOK {
			verdict, pass = "FAIL", false
		}
		_, _, warnings := t.p.log.counts()
		fmt.Fprintf(w, "summary: %d requests (authproxy counted %.0f proxied), errors: wrk %d, metrics %.0f (outcomes other than proxied), log warnings/errors %d\n",
			reqs, proxied, wrkErrs, badMetric, warnings)
		fmt.Fprintf(w, "memory: RSS %.1f MiB at the first sample, %.1f MiB at the last (%+.1f %%; min %.1f, max %.1f); heap %.1f → %.1f MiB; goroutines %.0f → %.0f\n",
			mib(first.rss), mib(last.rss), 100*growth, mib(minRSS), mib(maxRSS), first.heap/(1<<20), last.heap/(1<<20), first.goroutines, last.goroutines)
		fmt.Fprintf(w, "verdict: %s (zero errors: %v; peak RSS, second half vs first, %+.1f %% within %.0f %%: %v; goroutines flat: %v)\n\n",
			verdict, errOK, 100*growth, 100*o.memTolerance, memOK, gorOK)
		for _, l := range t.p.log.problems() {
			fmt.Fprintf(w, "  log: %s\n", l)
		}
	}
	rss := mustProc(s.redis).rss
	fmt.Fprintf(w, "redis-server RSS at the end: %.1f MiB\n", mib(rss))
	if pass {
		fmt.Fprintln(w, "overall verdict: PASS")
	} else {
		fmt.Fprintln(w, "overall verdict: FAIL")
	}
	return pass
}
