package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	out := "Running 10s test @ http://127.0.0.1:1/app\n  2 threads and 32 connections\n" +
		`BENCHJSON {"requests":1000,"duration_us":2000000,"bytes":1,"connect":1,"read":2,"write":0,"status":3,"timeout":4,` +
		`"p50":1500,"p75":2000,"p90":2500,"p99":9000.5,"p999":12000,"max":20000,"mean":1700.0}` + "\n"
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 1000 || r.RPS() != 500 || r.StatusErrors != 3 || r.SocketErrors != 7 ||
		r.P50 != 1500*time.Microsecond || r.P99 != 9000500*time.Nanosecond || r.Max != 20*time.Millisecond {
		t.Errorf("parseWrk = %+v", r)
	}
	if _, err := parseWrk("no report"); err == nil {
		t.Error("parseWrk accepted output without a report line")
	}
}

// heyOutput is hey v0.1.5's summary, which prints "%%" literally.
const heyOutput = `
Summary:
  Total:	10.0012 secs
  Slowest:	0.0300 secs
  Fastest:	0.0002 secs
  Average:	0.0012 secs
  Requests/sec:	4998.1000

Latency distribution:
  10%% in 0.0005 secs
  50%% in 0.0010 secs
  75%% in 0.0013 secs
  90%% in 0.0020 secs
  99%% in 0.0090 secs

Status code distribution:
  [200]	49970 responses
  [401]	10 responses

Error distribution:
  [3]	Get "http://127.0.0.1:1/app": dial tcp: connection refused
`

func TestParseHey(t *testing.T) {
	r, err := parseHey(heyOutput)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 49980 || r.StatusErrors != 10 || r.SocketErrors != 3 || r.P50 != time.Millisecond ||
		r.P99 != 9*time.Millisecond || r.Duration != 10001200*time.Microsecond {
		t.Errorf("parseHey = %+v", r)
	}
}

func TestParseProc(t *testing.T) {
	stat := "1234 (auth proxy) S 1 1234 1234 0 -1 4194560 500 0 0 0 150 70 0 0 20 0 8 0 100 2000000 3000 18446744073709551615\n"
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 2200*time.Millisecond {
		t.Errorf("parseStatCPU = %v, %v; want 2.2s", cpu, err)
	}
	rss, hwm := parseStatusMem("Name:\tauthproxy\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n")
	if rss != 10<<20 || hwm != 20<<20 {
		t.Errorf("parseStatusMem = %d, %d", rss, hwm)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP x\n" +
		`authproxy_requests_total{outcome="proxied"} 12` + "\n" +
		`authproxy_requests_total{outcome="unauthorized"} 3` + "\n" +
		"go_goroutines 17\nprocess_resident_memory_bytes 2.5e+07\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := outcomes(m)
	if o["proxied"] != 12 || o["unauthorized"] != 3 || m["go_goroutines"] != 17 || m["process_resident_memory_bytes"] != 25e6 {
		t.Errorf("parsed %v, outcomes %v", m, o)
	}
}

func TestDexConfig(t *testing.T) {
	cfg, err := dexConfig("../../deploy/demo/dex.yaml", "127.0.0.1:1001", "127.0.0.1:1002", []string{"127.0.0.1:2001", "127.0.0.1:2002"})
	if err != nil {
		t.Fatal(err)
	}
	s := string(cfg)
	for _, want := range []string{"issuer: http://127.0.0.1:1001/dex", "http: 127.0.0.1:1002",
		"- http://127.0.0.1:2001/oauth2/callback", "- http://127.0.0.1:2002/oauth2/callback"} {
		if !strings.Contains(s, want) {
			t.Errorf("rewritten Dex configuration lacks %q", want)
		}
	}
	if strings.Contains(s, "4180") || strings.Contains(s, "5556") {
		t.Error("rewritten Dex configuration still names a demo port")
	}
}

func TestParseMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got := parseMachineBusy("cpu  100 5 50 1000 20 3 2 0 0 0")
	if want := 160 * clockTick; got != want { // all but idle and iowait
		t.Errorf("parseMachineBusy = %v, want %v", got, want)
	}
}

func TestLogSink(t *testing.T) {
	path := t.TempDir() + "/x.log"
	l, err := newLogSink(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{
		`{"time":"2026-01-02T03:04:05.123456789Z","level":"INFO","msg":"request","request_id":"a","status":200}`,
		`{"time":"2026-01-02T03:04:05.123456789Z","level":"INFO","msg":"authproxy serving","listen":"127.0.0.1:1"}`,
		`{"time":"2026-01-02T03:04:05.123456789Z","level":"WARN","msg":"request","status":502}`,
		`{"time":"2026-01-02T03:04:05.123456789Z","level":"ERROR","msg":"upstream unavailable"}`,
	}
	// Written in odd pieces, as a pipe delivers them.
	all := strings.Join(lines, "\n") + "\n"
	for len(all) > 0 {
		n := min(len(all), 37)
		l.Write([]byte(all[:n]))
		all = all[n:]
	}
	l.Close()
	n, requests, warnings := l.counts()
	if n != 4 || requests != 2 || warnings != 2 {
		t.Errorf("counts = %d lines, %d requests, %d warnings; want 4, 2, 2", n, requests, warnings)
	}
	if p := l.problems(); len(p) != 2 || !strings.Contains(p[1], "upstream unavailable") {
		t.Errorf("problems = %q", p)
	}
}
