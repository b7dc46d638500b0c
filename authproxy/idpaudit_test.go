package authproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
)

// With several IdPs, the audit lines and the metrics of a session or token
// name its IdP, and those of a request whose IdP is not known say so
// ("unknown"), never the default's name.

// eventLines returns the log's lines of this event whose msg is msg.
func eventLines(t *testing.T, e *testEnv, event, msg string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for line := range strings.Lines(e.logs.String()) {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if l["event"] == event && l["msg"] == msg {
			lines = append(lines, l)
		}
	}
	return lines
}

// checkAudit fails the test unless the log has a line of this event and
// msg, and every such line names the IdP idp.
func checkAudit(t *testing.T, e *testEnv, event, msg, idp string) {
	t.Helper()
	lines := eventLines(t, e, event, msg)
	if len(lines) == 0 {
		t.Errorf("no %q line %q in the log:\n%s", event, msg, e.logs.String())
	}
	for _, l := range lines {
		if l["idp"] != idp {
			t.Errorf("%q line %q has idp %v, want %q: %v", event, msg, l["idp"], idp, l)
		}
	}
}

// metricsText is the server's /metrics.
func metricsText(t *testing.T, e *testEnv) string {
	t.Helper()
	r := e.request(t, e.browser(), http.MethodGet, metricsPath)
	if r.Status != http.StatusOK {
		t.Fatalf("/metrics: %d", r.Status)
	}
	return r.Body
}

// checkMetrics fails the test unless /metrics has each of want, and none
// of the lines holding a string of not.
func checkMetrics(t *testing.T, e *testEnv, want []string, not ...string) {
	t.Helper()
	m := metricsText(t, e)
	for _, w := range want {
		if !strings.Contains(m, w+"\n") {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	for line := range strings.Lines(m) {
		for _, n := range not {
			if strings.Contains(line, n) {
				t.Errorf("/metrics has %s", strings.TrimSpace(line))
			}
		}
	}
}

// TestCallbackWithoutStateNamesNoIdP: a callback without a valid state is
// counted and logged under idp "unknown", not the default IdP's name; one
// with a valid state under the IdP the sign-in started at.
func TestCallbackWithoutStateNamesNoIdP(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	bogus := "state-" + randomString(16)
	for name, q := range map[string]url.Values{
		"bad_state": {"code": {"c-1"}, "state": {bogus}},
		"idp_error": {"error": {"access_denied"}, "state": {bogus}},
	} {
		r := e.navigate(t, noFollow(e.browser()), callbackPath+"?"+q.Encode())
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, r.Status)
		}
		if links := chooserLinks(r.Body); len(links) != 1 || links[0] != startURL(nil, "/") {
			t.Errorf("%s: links %q, want only %q (no IdP is known to retry at)", name, links, startURL(nil, "/"))
		}
	}
	// The partner refuses a sign-in started there.
	c := e.browser()
	start := e.navigate(t, noFollow(c), startURL(e.srv.idps.get("partners"), "/portal/"))
	if r := e.navigate(t, noFollow(c), partner.refuse(t, start.Header.Get("Location"), "access_denied", "no").String()); r.Status != http.StatusBadRequest {
		t.Errorf("refused at the partner: %d, want 400", r.Status)
	}

	checkMetrics(t, e, []string{
		`authproxy_sign_ins_total{idp="unknown",result="bad_state"} 1`,
		`authproxy_sign_ins_total{idp="unknown",result="idp_error"} 1`,
		`authproxy_sign_ins_total{idp="partners",result="idp_error"} 1`,
	}, `authproxy_sign_ins_total{idp="default"`)
	checkAudit(t, e, "sign_in", "sign-in callback without matching state", "unknown")
	lines := eventLines(t, e, "sign_in", "sign-in refused by identity provider")
	if len(lines) != 2 || lines[0]["idp"] != "unknown" || lines[1]["idp"] != "partners" {
		t.Errorf("idp_error lines %v; want idp unknown, then partners", lines)
	}
}

// TestAuditLinesNameTheSessionsIdP: a partner session's refresh (ok,
// unavailable, refused), sign-out and too-large sign-in, and a partner's
// refused bearer token, are logged with idp "partners", and the sign-in and
// refresh metrics carry its label.
func TestAuditLinesNameTheSessionsIdP(t *testing.T) {
	e := newMultiEnv(t)
	partner := e.others["partners"]
	partner.set(shortTokens) // every request refreshes
	partners := e.srv.idps.get("partners")
	signIn := func() (*http.Client, reply) {
		c := e.browser()
		start := e.navigate(t, noFollow(c), startURL(partners, "/portal/"))
		return c, e.callback(t, c, partner.authorize(t, start.Header.Get("Location")))
	}
	setRefreshFail := func(status int) { partner.set(func(f *fakeIdP) { f.refreshFail = status }) }

	c, cb := signIn()
	if cb.Status != http.StatusFound {
		t.Fatalf("callback: %d", cb.Status)
	}
	fromUpstream(t, e.navigate(t, c, "/portal/"))
	checkAudit(t, e, "refresh", "session refreshed", "partners")
	if r := e.navigate(t, noFollow(c), signOutPath); r.Status != http.StatusFound {
		t.Errorf("sign-out: %d", r.Status)
	}
	checkAudit(t, e, "sign_out", "signed out", "partners")

	setRefreshFail(http.StatusServiceUnavailable)
	c, _ = signIn()
	fromUpstream(t, e.navigate(t, c, "/portal/")) // the session is kept
	checkAudit(t, e, "refresh", "token refresh failed; keeping the session", "partners")

	setRefreshFail(http.StatusBadRequest)
	c, _ = signIn()
	if r := e.api(t, c, "/portal/"); r.Status != http.StatusUnauthorized {
		t.Errorf("after a refused refresh: %d, want 401", r.Status)
	}
	checkAudit(t, e, "refresh", "refresh refused; session ended", "partners")

	partner.setClaims(map[string]any{"sub": "p-1", "email": "pat@partner.example", "email_verified": true, "groups": randomGroups(1000)})
	if _, cb := signIn(); cb.Status != http.StatusInsufficientStorage {
		t.Errorf("too large: %d, want 507", cb.Status)
	}
	checkAudit(t, e, "sign_in", "session too large for cookies", "partners")

	// A partner's token for another audience, and one of no IdP's.
	now := time.Now()
	for _, iss := range []string{partner.URL(), "https://elsewhere.example"} {
		tok := partner.sign(map[string]any{"iss": iss, "aud": "someone-else", "sub": "svc", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		if r := e.request(t, e.browser(), http.MethodGet, "/portal/", "Authorization", "Bearer "+tok); r.Status != http.StatusUnauthorized {
			t.Errorf("bearer token of %s: %d, want 401", iss, r.Status)
		}
	}
	lines := eventLines(t, e, "denied", "bearer token refused")
	if len(lines) != 2 || lines[0]["idp"] != "partners" || lines[1]["idp"] != "unknown" {
		t.Errorf("bearer refusals %v; want idp partners, then unknown", lines)
	}

	checkMetrics(t, e, []string{
		`authproxy_sign_ins_total{idp="partners",result="ok"} 3`,
		`authproxy_sign_ins_total{idp="partners",result="too_large"} 1`,
		`authproxy_refreshes_total{idp="partners",result="ok"} 1`,
		`authproxy_refreshes_total{idp="partners",result="unavailable"} 1`,
		`authproxy_refreshes_total{idp="partners",result="refused"} 1`,
	}, `idp="default"`)
}

// TestStreamClosedLineNamesTheIdP: the line for a stream closed because
// its session ended elsewhere names the session's user and IdP.
func TestStreamClosedLineNamesTheIdP(t *testing.T) {
	e := newMultiEnv(t, withBackend(session.NewMemoryBackend(nil)))
	e.srv.streams.recheck = 10 * time.Millisecond
	sess := testSession()
	sess.IdP = "partners"
	r := httptest.NewRequest(http.MethodGet, "/portal/events", nil)
	r.Header.Set("Cookie", e.mintSession(t, sess))
	ctx, done := e.srv.streams.track(context.Background(), sess)
	defer done()
	go e.srv.recheckStream(ctx, r, sess, done)
	if err := e.store.Clear(httptest.NewRecorder(), r); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is still open after its session ended")
	}
	checkAudit(t, e, "stream_closed", "closing a stream whose session ended elsewhere", "partners")
	if l := eventLines(t, e, "stream_closed", "closing a stream whose session ended elsewhere"); len(l) != 1 || l[0]["user"] != "user-123" {
		t.Errorf("stream_closed lines %v, want one with user user-123", l)
	}
}
