package authproxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
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
