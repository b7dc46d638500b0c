package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

//go:embed report.lua
var reportLua string

//go:embed users.lua
var usersLua string

// loadResult is one load run's figures.
type loadResult struct {
	Requests int64
	Duration time.Duration
	// Errors: responses with status >= 400 (wrk's "Non-2xx or 3xx", hey's non-2xx), and
	// socket errors (connect, read, write, timeout).
	StatusErrors                  int64
	SocketErrors                  int64
	P50, P75, P90, P99, P999, Max time.Duration
	Mean                          time.Duration
	// GenCPU is the load generator's own CPU time (user + system).
	GenCPU time.Duration
}

// RPS is requests per second over the run.
func (r loadResult) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// wrkJSON is what report.lua prints.
type wrkJSON struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"`
	Timeout    int64   `json:"timeout"`
	P50        float64 `json:"p50"`
	P75        float64 `json:"p75"`
	P90        float64 `json:"p90"`
	P99        float64 `json:"p99"`
	P999       float64 `json:"p999"`
	Max        float64 `json:"max"`
	Mean       float64 `json:"mean"`
}

func us(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }

// parseWrk reads report.lua's line from wrk's output.
func parseWrk(out string) (loadResult, error) {
	for line := range strings.Lines(out) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "BENCHJSON ")
		if !ok {
			continue
		}
		var j wrkJSON
		if err := json.Unmarshal([]byte(rest), &j); err != nil {
			return loadResult{}, fmt.Errorf("wrk report: %w", err)
		}
		return loadResult{
			Requests: j.Requests, Duration: time.Duration(j.DurationUS) * time.Microsecond,
			StatusErrors: j.Status, SocketErrors: j.Connect + j.Read + j.Write + j.Timeout,
			P50: us(j.P50), P75: us(j.P75), P90: us(j.P90), P99: us(j.P99), P999: us(j.P999),
			Max: us(j.Max), Mean: us(j.Mean),
		}, nil
	}
	return loadResult{}, fmt.Errorf("no report line in wrk's output:\n%s", out)
}

// wrkRun is one wrk invocation.
type wrkRun struct {
	url      string
	cookie   string // one Cookie header for every request; or
	users    string // a file of Cookie header values, one per user
	threads  int
	conns    int
	duration time.Duration
}

// writeScripts writes report.lua and users.lua (report.lua with a request function) to dir,
// once per run: wrk runs that go on at the same time read them.
func writeScripts(dir string) (report, users string, err error) {
	report = filepath.Join(dir, "report.lua")
	users = filepath.Join(dir, "users.lua")
	if err = os.WriteFile(report, []byte(reportLua), 0o644); err == nil {
		err = os.WriteFile(users, []byte(reportLua+"\n"+usersLua), 0o644)
	}
	return report, users, err
}

// runWrk runs wrk (bounded by its -d, and by a kill 30 s after that) and parses its report.
// dir holds the scripts writeScripts wrote.
func runWrk(ctx context.Context, bin, dir string, w wrkRun) (loadResult, string, error) {
	report, users := filepath.Join(dir, "report.lua"), filepath.Join(dir, "users.lua")
	secs := int(math.Max(1, math.Round(w.duration.Seconds())))
	args := []string{"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns), "-d", strconv.Itoa(secs) + "s",
		"--latency", "--timeout", "10s"}
	if w.users != "" {
		args = append(args, "-s", users, w.url, "--", w.users, strconv.Itoa(w.threads))
	} else {
		if w.cookie != "" {
			args = append(args, "-H", "Cookie: "+w.cookie)
		}
		args = append(args, "-s", report, w.url)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{}, string(out), fmt.Errorf("wrk: %w\n%s", err, out)
	}
	res, err := parseWrk(string(out))
	res.GenCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, string(out), err
}

// runHey runs hey at a fixed total rate (hey's -q is per worker) for duration, bounded by
// its -z and by a kill 30 s after that.
func runHey(ctx context.Context, bin, url, cookie string, rate float64, conns int, duration time.Duration) (loadResult, string, error) {
	secs := int(math.Max(1, math.Round(duration.Seconds())))
	args := []string{"-z", strconv.Itoa(secs) + "s", "-c", strconv.Itoa(conns),
		"-q", strconv.FormatFloat(rate/float64(conns), 'f', 3, 64), "-disable-redirects", "-t", "10"}
	if cookie != "" {
		args = append(args, "-H", "Cookie: "+cookie)
	}
	args = append(args, url)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return loadResult{}, string(out), fmt.Errorf("hey: %w\n%s", err, out)
	}
	res, err := parseHey(string(out))
	res.GenCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, string(out), err
}

var (
	heyTotal   = regexp.MustCompile(`^\s*Total:\s+([0-9.]+) secs`)
	heyAverage = regexp.MustCompile(`^\s*Average:\s+([0-9.]+) secs`)
	heySlowest = regexp.MustCompile(`^\s*Slowest:\s+([0-9.]+) secs`)
	heyPct     = regexp.MustCompile(`^\s*([0-9.]+)%+ in ([0-9.]+) secs`)
	heyStatus  = regexp.MustCompile(`^\s*\[([0-9]+)\]\s+([0-9]+) responses`)
	heyError   = regexp.MustCompile(`^\s*\[([0-9]+)\]\s+(.*)$`)
)

func secs(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Second))
}

// parseHey reads hey's summary: total time, latency distribution, status codes and errors.
func parseHey(out string) (loadResult, error) {
	var r loadResult
	inErrors := false
	sawStatus := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "Error distribution:"):
			inErrors = true
		case heyTotal.MatchString(line):
			r.Duration = secs(heyTotal.FindStringSubmatch(line)[1])
		case heyAverage.MatchString(line):
			r.Mean = secs(heyAverage.FindStringSubmatch(line)[1])
		case heySlowest.MatchString(line):
			r.Max = secs(heySlowest.FindStringSubmatch(line)[1])
		case heyPct.MatchString(line):
			m := heyPct.FindStringSubmatch(line)
			d := secs(m[2])
			switch m[1] {
			case "50":
				r.P50 = d
			case "75":
				r.P75 = d
			case "90":
				r.P90 = d
			case "99":
				r.P99 = d
			}
		case !inErrors && heyStatus.MatchString(line):
			m := heyStatus.FindStringSubmatch(line)
			code, _ := strconv.Atoi(m[1])
			n, _ := strconv.ParseInt(m[2], 10, 64)
			r.Requests += n
			sawStatus = true
			if code < 200 || code > 299 {
				r.StatusErrors += n
			}
		case inErrors && heyError.MatchString(line):
			n, _ := strconv.ParseInt(heyError.FindStringSubmatch(line)[1], 10, 64)
			r.SocketErrors += n
		}
	}
	if r.Duration == 0 || !sawStatus {
		return r, errors.New("hey's output has no summary")
	}
	return r, nil
}

// writeCookies writes one Cookie header value a line.
func writeCookies(path string, cookies []string) error {
	return os.WriteFile(path, []byte(strings.Join(cookies, "\n")+"\n"), 0o600)
}
