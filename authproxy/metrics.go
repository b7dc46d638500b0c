package authproxy

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Request outcomes, the values of the outcome label.
const (
	outcomeProxied    = "proxied" // forwarded to the upstream with a session
	outcomePublic     = "public"  // forwarded on a skip-auth route
	outcomeSignIn     = "sign_in" // sent to the IdP to sign in
	outcomeUnauth     = "unauthorized"
	outcomeForbidden  = "forbidden"
	outcomeBadRequest = "bad_request"
	outcomeEndpoint   = "endpoint" // one of authproxy's own endpoints
	outcomeError      = "error"    // authproxy or the upstream failed (5xx)
	// outcomeRateLimited is a sign-in start, callback or back-channel
	// logout refused by its rate limit (429).
	outcomeRateLimited = "rate_limited"
)

// unknownIdP is the idp label (and audit field) of a request whose IdP is
// not known: a sign-in callback without a valid state, a back-channel
// logout before its token names an IdP.
const unknownIdP = "unknown"

// metrics are authproxy's Prometheus metrics, in a registry of the Server's
// own (no global state).
type metrics struct {
	reg *prometheus.Registry
	// requests counts every request by outcome only, on purpose without
	// an idp label: that would multiply its series by the number of IdPs
	// (and cost a label lookup per request); the sign-in, refresh and
	// back-channel logout counters carry the IdP, the access log its name.
	requests *prometheus.CounterVec
	// byOutcome holds requests' counters resolved once, so counting a
	// request hashes no labels.
	byOutcome   map[string]prometheus.Counter
	inFlight    prometheus.Gauge
	signIns     *prometheus.CounterVec
	refreshes   *prometheus.CounterVec
	storeTime   *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec
	upstream    *prometheus.HistogramVec
	logouts     *prometheus.CounterVec
	// tlsReloads counts loads of a changed TLS certificate, by result.
	tlsReloads *prometheus.CounterVec
	// configReloads counts configuration reloads, by result.
	configReloads *prometheus.CounterVec
	// rateLimited counts 429s by endpoint; rateLimits resolves each
	// endpoint's counter once.
	rateLimited *prometheus.CounterVec
	// revocations counts the revocations `authproxy sessions revoke`
	// announced, by how (sub, email, all).
	revocations *prometheus.CounterVec
}

func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_requests_total",
			Help: "Requests served, by outcome: proxied, public, sign_in, unauthorized, forbidden, bad_request, rate_limited, endpoint, error.",
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "authproxy_requests_in_flight",
			Help: "Requests being served now, open streams included.",
		}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_sign_ins_total",
			Help: "Completed sign-in callbacks, by result (ok, denied, rejected, bad_state, idp_error, idp_unavailable, client_refused, too_large, error) and IdP (unknown for a callback without a valid state).",
		}, []string{"result", "idp"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_refreshes_total",
			Help: "Token refreshes, by result (ok, refused, unavailable) and IdP.",
		}, []string{"result", "idp"}),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authproxy_session_store_duration_seconds",
			Help:    "Time taken by session store operations.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_session_store_errors_total",
			Help: "Session store operations that failed (not counting a missing or invalid session).",
		}, []string{"op"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authproxy_upstream_duration_seconds",
			Help:    "Time from sending a request upstream to its response headers, by status class.",
			Buckets: prometheus.DefBuckets,
		}, []string{"code"}),
		logouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_backchannel_logouts_total",
			Help: "Back-channel logout requests, by result (ok, refused, error) and IdP (unknown before a token names one).",
		}, []string{"result", "idp"}),
		tlsReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_tls_certificate_reloads_total",
			Help: "Loads of a changed AUTHPROXY_TLS_CERT_FILE/_KEY_FILE pair, by result (ok, error; an error keeps the old certificate).",
		}, []string{"result"}),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_config_reloads_total",
			Help: "Configuration reloads (SIGHUP or a changed file), by result (ok, error; an error keeps the previous configuration).",
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_rate_limited_total",
			Help: "Requests refused with 429 by a per-address rate limit, by endpoint (start, callback, backchannel_logout).",
		}, []string{"endpoint"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authproxy_session_revocations_total",
			Help: "Revocations made with authproxy sessions revoke that this replica heard of, by how (sub, email, all); every replica counts each one.",
		}, []string{"how"}),
	}
	for _, how := range []string{"sub", "email", "all"} {
		m.revocations.WithLabelValues(how)
	}
	for _, result := range []string{"ok", "error"} {
		m.configReloads.WithLabelValues(result) // shown at 0 from the start
	}
	m.byOutcome = map[string]prometheus.Counter{}
	for _, o := range []string{outcomeProxied, outcomePublic, outcomeSignIn, outcomeUnauth, outcomeForbidden, outcomeBadRequest, outcomeRateLimited, outcomeEndpoint, outcomeError} {
		m.byOutcome[o] = m.requests.WithLabelValues(o)
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "authproxy_build_info",
		Help: "Always 1; labels say which build is running.",
	}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m.requests, m.inFlight, m.signIns, m.refreshes, m.storeTime, m.storeErrors,
		m.upstream, m.logouts, m.tlsReloads, m.configReloads, m.rateLimited, m.revocations, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves the metrics in the Prometheus text format, for a
// listener of their own (AUTHPROXY_METRICS_LISTEN).
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+metricsPath, s.metrics.handler())
	return mux
}

// handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// countRequest counts one request with this outcome.
func (m *metrics) countRequest(outcome string) {
	if c := m.byOutcome[outcome]; c != nil {
		c.Inc()
		return
	}
	m.requests.WithLabelValues(outcome).Inc()
}

// observeStore records one session store operation's duration and failure.
func (m *metrics) observeStore(op string, start time.Time, failed bool) {
	m.storeTime.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if failed {
		m.storeErrors.WithLabelValues(op).Inc()
	}
}

// timedTransport records how long the upstream takes to answer.
type timedTransport struct {
	next http.RoundTripper
	m    *metrics
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	code := "error"
	if err == nil {
		code = statusClass(resp.StatusCode)
	}
	t.m.upstream.WithLabelValues(code).Observe(time.Since(start).Seconds())
	return resp, err
}

func statusClass(code int) string {
	switch {
	case code >= 500:
		return "5xx"
	case code >= 400:
		return "4xx"
	case code >= 300:
		return "3xx"
	case code >= 200:
		return "2xx"
	}
	return "1xx"
}
