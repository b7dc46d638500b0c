package main

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// scrape reads p's /metrics (Prometheus text format) into a map from the series, as written
// (name plus labels, e.g. authproxy_requests_total{outcome="proxied"}), to its value.
func scrape(p *proc) (map[string]float64, error) {
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(p.url() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// scrapeOne returns one series' value, or -1 when it cannot be read.
func scrapeOne(p *proc, series string) float64 {
	m, err := scrape(p)
	if err != nil {
		return -1
	}
	v, ok := m[series]
	if !ok {
		return -1
	}
	return v
}

// outcomes returns authproxy_requests_total by outcome.
func outcomes(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	const prefix = `authproxy_requests_total{outcome="`
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[strings.TrimSuffix(rest, `"}`)] = v
		}
	}
	return out
}
