package authproxy

import (
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authproxy/authproxy/templates"
)

// RateLimit is the shape of a token bucket: Burst requests at once, then N
// every Per. The zero value means no limit.
type RateLimit struct {
	N     int
	Per   time.Duration
	Burst int
}

// Off reports whether l limits nothing.
func (l RateLimit) Off() bool { return l.N == 0 }

// String returns l as AUTHPROXY_*_RATE_LIMIT writes it: "30/m burst=10", or "off".
func (l RateLimit) String() string {
	if l.Off() {
		return "off"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[l.Per]
	return fmt.Sprintf("%d/%s burst=%d", l.N, unit, l.Burst)
}

// maxRate bounds N and Burst: a larger figure is a typo, not a limit.
const maxRate = 1_000_000

// parseRateLimit reads "N/s", "N/m" or "N/h" with an optional " burst=B"
// (default: a third of N, at least 1); "0" and "off" mean no limit.
func parseRateLimit(v string) (RateLimit, error) {
	if v == "0" || strings.EqualFold(v, "off") {
		return RateLimit{}, nil
	}
	bad := fmt.Errorf("want N/s, N/m or N/h with an optional burst=B (such as 30/m burst=10), or off; got %q", v)
	fields := strings.Fields(v)
	if len(fields) == 0 || len(fields) > 2 {
		return RateLimit{}, bad
	}
	count, unit, ok := strings.Cut(fields[0], "/")
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	n, err := strconv.Atoi(count)
	if !ok || per == 0 || err != nil || n < 1 || n > maxRate {
		return RateLimit{}, bad
	}
	l := RateLimit{N: n, Per: per, Burst: max(1, (n+2)/3)}
	if len(fields) == 2 {
		b, ok := strings.CutPrefix(fields[1], "burst=")
		if l.Burst, err = strconv.Atoi(b); !ok || err != nil || l.Burst < 1 || l.Burst > maxRate {
			return RateLimit{}, bad
		}
	}
	return l, nil
}

// rateTableEntries bounds each endpoint's table of buckets (1.3 MiB when
// full). A bucket matters only until it has refilled (20 s at the default
// sign-in limit), so more addresses than this would have to sign in within
// that time before an eviction could give one of them a fresh burst early.
const rateTableEntries = 8192

// Rate-limited endpoints, the values of authproxy_rate_limited_total's
// endpoint label.
const (
	limitStart       = "start" // /oauth2/start and the redirect to sign in
	limitCallback    = "callback"
	limitBackchannel = "backchannel_logout"
)

// rateLimits are the flood protections of the endpoints an anonymous
// client can make authproxy work for: sign-in starts (/oauth2/start and the
// redirect protect sends an unauthenticated navigation to), callbacks, and
// back-channel logouts. Signed-in traffic passes through none of them.
type rateLimits struct {
	start, callback, backchannel *endpointLimit
}

// endpointLimit is one endpoint's limit: a token bucket per client address.
type endpointLimit struct {
	name    string
	table   *rateTable // nil: no limit
	limited prometheus.Counter
	audit   auditThrottle
	json    bool // answer JSON whatever the client accepts (an IdP calls it)
}

// newRateLimits builds the limits cfg asks for, with their counters
// resolved; now is the Server's clock's reading at start.
func newRateLimits(cfg *Config, m *metrics, now time.Time) rateLimits {
	limit := func(name string, l RateLimit) *endpointLimit {
		e := &endpointLimit{name: name, limited: m.rateLimited.WithLabelValues(name), json: name == limitBackchannel}
		if !l.Off() {
			e.table = newRateTable(l, rateTableEntries, now)
		}
		return e
	}
	return rateLimits{
		start:       limit(limitStart, cfg.SignInRateLimit),
		callback:    limit(limitCallback, cfg.SignInRateLimit),
		backchannel: limit(limitBackchannel, cfg.BackchannelRateLimit),
	}
}

// limited wraps an endpoint's handler in its rate limit.
func (s *Server) limited(e *endpointLimit, next handler) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.allow(r, e); err != nil {
			return err
		}
		return next(w, r)
	}
}

// allow spends one of the client's tokens for endpoint e and returns nil
// when the request may go on, else its 429 answer with Retry-After: a page
// for a browser, JSON for anything else.
func (s *Server) allow(r *http.Request, e *endpointLimit) error {
	if e.table == nil {
		return nil
	}
	addr := s.trusted.clientAddr(r)
	now := s.now()
	ok, retry, logDue := e.table.take(rateKeyOf(addr), now)
	if ok {
		return nil
	}
	secs := max(1, int((retry+time.Second-1)/time.Second))
	e.limited.Inc()
	setOutcome(r, outcomeRateLimited, "")
	s.auditRateLimited(r, e, addr, secs, logDue, now)
	if e.json {
		return jsonAnswer(http.StatusTooManyRequests, map[string]string{
			"error":             "too_many_requests",
			"error_description": fmt.Sprintf("too many requests from this address; retry after %d seconds", secs),
		}).with("Retry-After", strconv.Itoa(secs))
	}
	return pageAnswer(templates.Page{
		Status:  http.StatusTooManyRequests,
		Title:   "Too many sign-in attempts",
		Message: "Sign-in was started too often from your network in a short time, so authproxy is pausing it.",
		Hint:    "Try again in " + inWords(secs) + ".",
	}).with("Retry-After", strconv.Itoa(secs))
}

// inWords says a number of seconds as a person would.
func inWords(secs int) string {
	switch {
	case secs == 1:
		return "a second"
	case secs < 120:
		return strconv.Itoa(secs) + " seconds"
	case secs < 7200:
		return strconv.Itoa((secs+59)/60) + " minutes"
	}
	return strconv.Itoa((secs+3599)/3600) + " hours"
}

// auditLinesPerMinute bounds each endpoint's rate_limited audit lines.
const auditLinesPerMinute = 20

// auditRateLimited writes the audit line of a rate-limited request, at most
// once a minute per address (logDue) and auditLinesPerMinute a minute per
// endpoint, so that a flood cannot flood the log; the requests it did not
// log one by one are counted in a summary line when the next minute's first
// request is limited. authproxy_rate_limited_total counts every one.
func (s *Server) auditRateLimited(r *http.Request, e *endpointLimit, addr netip.Addr, secs int, logDue bool, now time.Time) {
	write, unlogged, since := e.audit.admit(now, logDue)
	if unlogged > 0 {
		s.log.Warn("rate-limited requests not logged one by one", "event", "rate_limited", "endpoint", e.name,
			"unlogged", unlogged, "since", since.UTC().Format(time.RFC3339))
	}
	if write {
		client := "unknown"
		if addr.IsValid() {
			client = addr.String()
		}
		s.log.Warn("rate limited", "event", "rate_limited", "endpoint", e.name, "client", client,
			"retry_after", secs, "request_id", infoFrom(r.Context()).id)
	}
}

// auditThrottle counts one endpoint's audit lines in one-minute windows.
type auditThrottle struct {
	mu       sync.Mutex
	window   time.Time // start of the current window
	lines    int       // lines written in it
	unlogged int       // limited requests not logged in it
}

// admit reports whether a line may be written now (due: the address's line
// is due), and, when a new window begins, how many requests the one before
// left unlogged and when it began.
func (a *auditThrottle) admit(now time.Time, due bool) (write bool, unlogged int, since time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.window) >= time.Minute || now.Before(a.window) {
		unlogged, since = a.unlogged, a.window
		a.window, a.lines, a.unlogged = now, 0, 0
	}
	if due && a.lines < auditLinesPerMinute {
		a.lines++
		return true, unlogged, since
	}
	a.unlogged++
	return false, unlogged, since
}
