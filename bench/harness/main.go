// Command harness is authproxy's load and soak benchmark (make bench, make soak). It starts
// the whole stack on free loopback ports — Dex, redis-server, a tiny upstream, a bare
// httputil.ReverseProxy with authproxy's upstream transport settings, and authproxy twice
// (cookie store and Redis store) — signs in through each authproxy against Dex, drives every
// target with wrk, and reports requests per second, latency, CPU time per request and
// memory, each also as a ratio to the bare proxy measured in the same run.
//
//	harness bench [flags]    the benchmark (bench/run.sh bench, make bench)
//	harness soak [flags]     the soak test (bench/run.sh soak, make soak)
//	harness upstream ADDR    the sample upstream: a small fixed body on every path
//	harness bare ADDR URL    the bare reverse proxy on ADDR in front of URL
//
// bench/run.sh installs what it needs (wrk, hey, redis-server, Dex), builds authproxy and
// this program, and passes the BENCH_* / SOAK_* variables as flags. Every load loop is
// bounded in time, and only loopback addresses are ever used.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "upstream":
		if len(os.Args) != 3 {
			usage()
		}
		err = serveUpstream(os.Args[2])
	case "bare":
		if len(os.Args) != 4 {
			usage()
		}
		err = serveBare(os.Args[2], os.Args[3])
	case "bench", "soak":
		opts := parseOptions(os.Args[1], os.Args[2:])
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if os.Args[1] == "bench" {
			err = runBench(ctx, opts)
		} else {
			err = runSoak(ctx, opts)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: harness bench|soak [flags]   |   harness upstream ADDR   |   harness bare ADDR UPSTREAM_URL")
	os.Exit(2)
}

// options are the harness's flags; bench/run.sh sets them from BENCH_* and SOAK_* variables.
type options struct {
	mode      string
	authproxy string // the authproxy binary
	dex       string // the Dex binary
	redis     string // redis-server
	wrk       string
	hey       string
	dexConfig string // deploy/demo/dex.yaml, rewritten with free ports
	workDir   string // configuration files and logs; removed at the end unless keep
	keep      bool
	out       string // where the raw figures go

	rounds   int
	duration time.Duration // one wrk run
	threads  int
	conns    int
	users    int // distinct minted sessions for the many-users phase
	signIns  int

	soakDuration time.Duration
	soakInterval time.Duration
	soakConns    int
	memTolerance float64 // soak: allowed RSS growth, a fraction
}

func parseOptions(mode string, args []string) *options {
	o := &options{mode: mode}
	fs := flag.NewFlagSet("harness "+mode, flag.ExitOnError)
	fs.StringVar(&o.authproxy, "authproxy", "", "authproxy binary (required)")
	fs.StringVar(&o.dex, "dex", "", "Dex binary (required)")
	fs.StringVar(&o.redis, "redis-server", "redis-server", "redis-server binary")
	fs.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	fs.StringVar(&o.hey, "hey", "hey", "hey binary (rate-limited runs)")
	fs.StringVar(&o.dexConfig, "dex-config", "deploy/demo/dex.yaml", "the demo's Dex configuration, rewritten with free ports")
	fs.StringVar(&o.workDir, "workdir", "", "working directory (default: a new temporary one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (configurations and logs)")
	defOut := "bench/results/latest.txt"
	if mode == "soak" {
		defOut = "bench/results/soak-latest.txt"
	}
	fs.StringVar(&o.out, "out", defOut, "file for the raw figures")
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds (bench)")
	fs.DurationVar(&o.duration, "seconds", 10*time.Second, "length of one wrk run (bench)")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads (bench)")
	fs.IntVar(&o.conns, "conns", 32, "wrk connections (bench)")
	fs.IntVar(&o.users, "users", 10000, "distinct signed-in users minted for the many-users phase and the soak")
	fs.IntVar(&o.signIns, "signins", 20, "sequential sign-ins timed per authproxy (bench)")
	fs.DurationVar(&o.soakDuration, "soak-duration", 10*time.Minute, "soak length")
	fs.DurationVar(&o.soakInterval, "soak-interval", 30*time.Second, "soak sampling interval")
	fs.IntVar(&o.soakConns, "soak-conns", 16, "wrk connections per authproxy (soak)")
	fs.Float64Var(&o.memTolerance, "soak-mem-tolerance", 0.10, "soak: largest allowed RSS growth from the first to the last sample, a fraction")
	_ = fs.Parse(args)
	if o.authproxy == "" || o.dex == "" || fs.NArg() != 0 {
		fs.Usage()
		os.Exit(2)
	}
	if o.rounds < 1 || o.duration < time.Second || o.threads < 1 || o.conns < o.threads || o.users < 1 || o.signIns < 1 ||
		o.soakInterval < 5*time.Second || o.soakDuration < o.soakInterval || o.soakConns < 1 {
		fmt.Fprintln(os.Stderr, "harness: a flag is out of range (rounds, signins, users >= 1; seconds >= 1s; conns >= threads; soak-interval >= 5s; soak-duration >= soak-interval)")
		os.Exit(2)
	}
	// Durations in whole seconds: wrk and hey take seconds.
	o.duration = o.duration.Round(time.Second)
	o.soakInterval = o.soakInterval.Round(time.Second)
	return o
}
