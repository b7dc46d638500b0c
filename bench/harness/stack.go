package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authproxy/authproxy/internal/teststack"
)

// stack is every process of one run, each on its own free loopback port, launched by
// internal/teststack.
type stack struct {
	opts  *options
	dir   string
	set   *teststack.Set
	sinks map[string]*logSink // by process name
	procs []*proc

	dex      *proc
	redis    *proc
	upstream *proc
	bare     *proc
	cookie   *proc // authproxy, cookie store
	ticket   *proc // authproxy, Redis store

	issuer       string
	redisAddr    string
	cookieSecret []byte
}

// proc is one child process. Its output goes through a logSink.
type proc struct {
	*teststack.Proc
	name string // Proc.Name
	addr string // host:port it serves on
	log  *logSink
}

func (p *proc) pid() int { return p.Pid() }

func (p *proc) url() string { return "http://" + p.addr }

func (p *proc) exited() bool { return p.Exited() }

// startStack starts Dex, redis-server, the upstream, the bare proxy and both authproxies,
// each once its predecessors answer. On error the returned stack holds what was started.
func startStack(ctx context.Context, o *options) (*stack, error) {
	dir := o.workDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "authproxy-bench-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &stack{opts: o, dir: dir, cookieSecret: make([]byte, 32), sinks: map[string]*logSink{}}
	rand.Read(s.cookieSecret)
	// Should the harness die without cleaning up, its children die with it.
	s.set = &teststack.Set{Dir: dir, KillWithParent: true, Output: func(name string) (io.WriteCloser, error) {
		sink, err := newLogSink(filepath.Join(dir, name+".log"))
		s.sinks[name] = sink
		return sink, err
	}}

	if _, _, err := writeScripts(dir); err != nil {
		return s, err
	}
	ports, err := teststack.FreePorts(7)
	if err != nil {
		return s, err
	}
	dexWeb, dexTelemetry, redisAddr, upAddr, bareAddr, cookieAddr, ticketAddr :=
		ports[0], ports[1], ports[2], ports[3], ports[4], ports[5], ports[6]
	s.issuer = "http://" + dexWeb + "/dex"
	s.redisAddr = redisAddr

	cfg, err := dexConfig(o.dexConfig, dexWeb, dexTelemetry, []string{cookieAddr, ticketAddr})
	if err != nil {
		return s, err
	}
	dex, err := teststack.StartDex(ctx, s.set, "dex", o.dex, cfg, dexWeb, dexTelemetry)
	if dex != nil {
		s.dex = s.adopt(dex.Proc, dexWeb)
	}
	if err != nil {
		return s, s.withTail(err, "dex")
	}
	redis, err := teststack.StartRedis(ctx, s.set, "redis", o.redis, redisAddr)
	if redis != nil {
		s.redis = s.adopt(redis, redisAddr)
	}
	if err != nil {
		return s, s.withTail(err, "redis")
	}
	self, err := os.Executable()
	if err != nil {
		return s, err
	}
	if s.upstream, err = s.start(ctx, "upstream", upAddr, "/", nil, self, "upstream", upAddr); err != nil {
		return s, err
	}
	if s.bare, err = s.start(ctx, "bare", bareAddr, "/", nil, self, "bare", bareAddr, "http://"+upAddr); err != nil {
		return s, err
	}

	common := func(addr string) []string {
		return teststack.DemoClientEnv(teststack.Authproxy{
			Addr:         addr,
			Upstream:     "http://" + upAddr,
			Issuer:       s.issuer,
			CookieSecret: base64.StdEncoding.EncodeToString(s.cookieSecret),
			// The default (json) access log: one line per request, as in production. The
			// harness reads it from a pipe and keeps only what is not a request line.
			LogFormat: "json",
		})
	}
	if s.cookie, err = s.start(ctx, "authproxy-cookie", cookieAddr, "/readyz", common(cookieAddr), o.authproxy); err != nil {
		return s, err
	}
	ticketEnv := append(common(ticketAddr), "AUTHPROXY_SESSION_STORE=redis", "AUTHPROXY_REDIS_URL=redis://"+redisAddr+"/0")
	if s.ticket, err = s.start(ctx, "authproxy-redis", ticketAddr, "/readyz", ticketEnv, o.authproxy); err != nil {
		return s, err
	}
	return s, nil
}

// dexConfig is the demo's Dex configuration at path with its loopback addresses swapped for
// free ports and the client's one redirect URI replaced by one per authproxy.
func dexConfig(path, web, telemetry string, proxies []string) ([]byte, error) {
	demo, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var uris []string
	for _, p := range proxies {
		uris = append(uris, "http://"+p+"/oauth2/callback")
	}
	return teststack.DexConfig(demo, web, telemetry, uris)
}

// adopt records a process the launcher started, serving on addr.
func (s *stack) adopt(tp *teststack.Proc, addr string) *proc {
	p := &proc{Proc: tp, name: tp.Name, addr: addr, log: s.sinks[tp.Name]}
	s.procs = append(s.procs, p)
	return p
}

// start runs bin with args in the stack's directory, with env added to an environment
// cleared of AUTHPROXY_* variables, and waits until GET path on addr answers 200.
func (s *stack) start(ctx context.Context, name, addr, path string, env []string, bin string, args ...string) (*proc, error) {
	tp, err := s.set.Start(name, env, bin, args...)
	if err != nil {
		return nil, err
	}
	p := s.adopt(tp, addr)
	if err := tp.WaitHTTP(ctx, p.url()+path); err != nil {
		return p, s.withTail(err, name)
	}
	return p, nil
}

// withTail adds the last lines of name's log to err.
func (s *stack) withTail(err error, name string) error {
	if sink := s.sinks[name]; sink != nil {
		return fmt.Errorf("%w\n%s", err, sink.tail())
	}
	return err
}

// check reports any process that has exited.
func (s *stack) check() error {
	var errs []error
	for _, p := range s.procs {
		if p.exited() {
			errs = append(errs, fmt.Errorf("%s exited: %v\n%s", p.name, p.Err(), p.log.tail()))
		}
	}
	return errors.Join(errs...)
}

// stop ends every process (SIGTERM, then SIGKILL after 5 s), newest first, and removes the
// working directory unless asked to keep it.
func (s *stack) stop() {
	_ = s.set.StopAll() // the run has judged the processes already (check)
	if s.opts.keep {
		fmt.Fprintf(os.Stderr, "harness: configurations and logs kept in %s\n", s.dir)
	} else if s.opts.workDir == "" {
		_ = os.RemoveAll(s.dir)
	}
}

// logSink takes a process's output. It counts the lines, and the warnings and errors among
// them, and writes to its file every line except authproxy's per-request access-log lines at
// INFO (which would be hundreds of megabytes in a soak). It keeps the last lines for errors.
type logSink struct {
	mu       sync.Mutex
	f        *os.File
	partial  []byte
	lines    int64
	requests int64 // access-log lines
	warnings int64 // WARN or ERROR lines
	firstBad []string
	last     []string
}

func newLogSink(path string) (*logSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logSink{f: f}, nil
}

func (l *logSink) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			if len(l.partial) > 64<<10 { // a runaway line: take it as it is
				l.line(l.partial)
				l.partial = l.partial[:0]
			}
			break
		}
		if len(l.partial) > 0 {
			l.partial = append(l.partial, b[:i]...)
			l.line(l.partial)
			l.partial = l.partial[:0]
		} else {
			l.line(b[:i])
		}
		b = b[i+1:]
	}
	return n, nil
}

// accessLine starts every access-log line at INFO of authproxy's JSON log.
var accessLine = []byte(`"level":"INFO","msg":"request"`)

func (l *logSink) line(b []byte) {
	l.lines++
	if bytes.Contains(b[:min(len(b), 80)], accessLine) { // the common case, kept cheap
		l.requests++
		return
	}
	request := bytes.Contains(b, []byte(`"msg":"request"`))
	bad := bytes.Contains(b, []byte(`"level":"WARN"`)) || bytes.Contains(b, []byte(`"level":"ERROR"`)) ||
		bytes.Contains(b, []byte("level=WARN")) || bytes.Contains(b, []byte("level=ERROR")) ||
		bytes.Contains(b, []byte("level=error")) || bytes.Contains(b, []byte("level=warn")) ||
		bytes.Contains(b, []byte("panic"))
	if request {
		l.requests++
	}
	if bad {
		l.warnings++
		if len(l.firstBad) < 20 {
			l.firstBad = append(l.firstBad, string(b))
		}
	}
	if !request || bad {
		if l.f != nil {
			_, _ = l.f.Write(append(b, '\n'))
		}
		l.last = append(l.last, string(b))
		if len(l.last) > 40 {
			l.last = l.last[len(l.last)-40:]
		}
	}
}

// counts returns the lines, access-log lines and warning or error lines so far.
func (l *logSink) counts() (lines, requests, warnings int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines, l.requests, l.warnings
}

// problems returns the first warning and error lines.
func (l *logSink) problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.firstBad...)
}

// tail returns the last lines that were not access-log lines.
func (l *logSink) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

func (l *logSink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.line(l.partial)
		l.partial = nil
	}
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// procStat is one reading of a process's CPU time and memory from /proc.
type procStat struct {
	at   time.Time
	cpu  time.Duration // utime+stime from /proc/PID/stat (10 ms resolution)
	rss  int64         // VmRSS, bytes
	hwm  int64         // VmHWM (peak RSS), bytes
	sumN time.Duration // sum of /proc/PID/task/*/schedstat run times: ns resolution
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux architecture
// Go supports.
const clockTick = 10 * time.Millisecond

func readProc(pid int) (procStat, error) {
	st := procStat{at: time.Now()}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	if st.cpu, err = parseStatCPU(string(data)); err != nil {
		return st, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	st.rss, st.hwm = parseStatusMem(string(status))
	st.sumN = schedCPU(pid)
	return st, nil
}

// parseStatCPU returns utime+stime from the text of /proc/PID/stat. The command name, in
// parentheses, may hold spaces, so fields are counted from the last ")".
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	stm, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return time.Duration(ut+stm) * clockTick, nil
}

// parseStatusMem returns VmRSS and VmHWM, in bytes, from the text of /proc/PID/status.
func parseStatusMem(status string) (rss, hwm int64) {
	for line := range strings.Lines(status) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// schedCPU sums the on-CPU time of every thread of pid, in nanoseconds, from
// /proc/PID/task/*/schedstat. Go's runtime keeps its threads, so the sum only grows.
func schedCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum int64
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += n
		}
	}
	return time.Duration(sum)
}

// machineBusy returns the time all CPUs together spent busy (everything but idle and I/O
// wait) since boot, from the first line of /proc/stat. Interrupt and softirq time count:
// with tick-based accounting (no CONFIG_IRQ_TIME_ACCOUNTING, as on this project's machines)
// the kernel charges them to the running process too, so the loopback traffic's softirq
// work already shows in the stack's and wrk's CPU times and cancels out.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseMachineBusy(line)
}

func parseMachineBusy(line string) time.Duration {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// stackCPU is the CPU time of every process of the stack.
func (s *stack) stackCPU() time.Duration {
	var sum time.Duration
	for _, p := range s.procs {
		if !p.exited() {
			sum += mustProc(p).cpu
		}
	}
	return sum
}

func mustProc(p *proc) procStat {
	st, err := readProc(p.pid())
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: reading /proc for %s: %v\n", p.name, err)
	}
	return st
}
