package authproxy

import (
	"github.com/authproxy/authproxy/session"
	"github.com/prometheus/client_golang/prometheus"
)

// cacheCollector exports the opened-session cache's counts, read when
// scraped: counting costs a request nothing in authproxy.
type cacheCollector struct {
	stats   func() session.CacheStats
	loads   *prometheus.Desc
	entries *prometheus.Desc
	enabled *prometheus.Desc
}

func newCacheCollector(stats func() session.CacheStats) *cacheCollector {
	return &cacheCollector{
		stats: stats,
		loads: prometheus.NewDesc("authproxy_session_cache_loads_total",
			"Session loads by the opened-session cache's answer: hit (from the cache), miss (from the store, then cached), bypass (from the store: the cache is off while its Redis subscription is down).",
			[]string{"result"}, nil),
		entries: prometheus.NewDesc("authproxy_session_cache_entries",
			"Opened sessions the cache holds.", nil, nil),
		enabled: prometheus.NewDesc("authproxy_session_cache_enabled",
			"1 while the opened-session cache is in use: always without Redis; with Redis, while its invalidation subscription is in place.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.loads
	ch <- c.entries
	ch <- c.enabled
}

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.loads, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.loads, prometheus.CounterValue, float64(st.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(c.loads, prometheus.CounterValue, float64(st.Bypassed), "bypass")
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries))
	enabled := 0.0
	if st.Enabled {
		enabled = 1
	}
	ch <- prometheus.MustNewConstMetric(c.enabled, prometheus.GaugeValue, enabled)
}
