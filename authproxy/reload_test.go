package authproxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

const (
	// policyAdminsOnly keeps /admin/ for the group root, which
	// testSession's user is not in.
	policyAdminsOnly = "rules:\n  - path: /admin/\n    allow: {groups: [root]}\n  - path: /\n    allow: authenticated\n"
	// policyStaffAdmin lets testSession's user (group staff) into /admin/.
	policyStaffAdmin = "rules:\n  - path: /admin/\n    allow: {groups: [staff]}\n  - path: /\n    allow: authenticated\n"
)

// statusOf returns the status of GET path with the Cookie header cookie, as
// an API client asks (no redirect to sign in).
func (e *testEnv) statusOf(t *testing.T, cookie, path string) int {
	t.Helper()
	return e.request(t, noFollow(&http.Client{}), http.MethodGet, path, "Cookie", cookie, "Accept", "application/json").Status
}

func (e *testEnv) reloads(t *testing.T, result string) float64 {
	t.Helper()
	return counterValue(t, e.srv.metrics.configReloads.WithLabelValues(result))
}

// A changed policy file takes effect at the reload, not before, for the next
// request; the reload is counted and logged with what changed.
func TestReloadPolicyFile(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "policy.yaml")
	writeConfigFile(t, pf, policyAdminsOnly)
	e := newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", pf))
	cookie := e.mintSession(t, testSession())
	if got := e.statusOf(t, cookie, "/admin/users"); got != http.StatusForbidden {
		t.Fatalf("GET /admin/users under the first policy: %d, want 403", got)
	}
	writeConfigFile(t, pf, policyStaffAdmin)
	if got := e.statusOf(t, cookie, "/admin/users"); got != http.StatusForbidden {
		t.Fatalf("GET /admin/users after the file changed, before the reload: %d, want 403 still", got)
	}
	if err := e.srv.Reload(e.lookup); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := e.statusOf(t, cookie, "/admin/users"); got != http.StatusOK {
		t.Errorf("GET /admin/users after the reload: %d, want 200", got)
	}
	if got := e.reloads(t, "ok"); got != 1 {
		t.Errorf(`authproxy_config_reloads_total{result="ok"} = %v, want 1`, got)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"configuration reloaded"`) || !strings.Contains(logs, `"changed":["AUTHPROXY_POLICY_FILE"]`) {
		t.Errorf("the log does not say the reload changed AUTHPROXY_POLICY_FILE:\n%s", logs)
	}
}

// A reload whose configuration has a problem is refused whole: the error and
// the log line name the variable (and for the policy file the line or
// rule), the configuration in effect stays the very same, it is counted as
// an error, and the server stays ready.
func TestReloadRefusesABadConfiguration(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"policy":        policyStaffAdmin,
		"cookie-secret": testCookieSecret + "\n",
		"emails":        "# who may sign in\nada@example.com\n",
		"claim-headers": "X-Dept=department\n",
	}
	for name, content := range files {
		writeConfigFile(t, filepath.Join(dir, name), content)
	}
	e := newTestEnv(t,
		withVar("AUTHPROXY_POLICY_FILE", filepath.Join(dir, "policy")),
		withVar("AUTHPROXY_COOKIE_SECRET", ""),
		withVar("AUTHPROXY_COOKIE_SECRET_FILE", filepath.Join(dir, "cookie-secret")),
		withVar("AUTHPROXY_ALLOWED_EMAIL_DOMAINS", "example.org"),
		withVar("AUTHPROXY_ALLOWED_EMAILS_FILE", filepath.Join(dir, "emails")),
		withVar("AUTHPROXY_CLAIM_HEADERS_FILE", filepath.Join(dir, "claim-headers")),
	)
	cookie := e.mintSession(t, testSession())
	for i, tc := range []struct {
		name, file, content string // content "" removes the file
		want                string
	}{
		{"policy file not YAML", "policy", "rules:\n  - path: /admin/\n    allow: [\n", "AUTHPROXY_POLICY_FILE: yaml: line 3"},
		{"policy rule without a valid path", "policy", "rules:\n  - path: admin\n    allow: authenticated\n", "AUTHPROXY_POLICY_FILE: rule 1: path"},
		{"policy file gone", "policy", "", "AUTHPROXY_POLICY_FILE: open "},
		{"cookie secret too short", "cookie-secret", base64.StdEncoding.EncodeToString([]byte("short")), "AUTHPROXY_COOKIE_SECRET: want 32 bytes base64-encoded, got 5 bytes"},
		{"one of the cookie secrets bad", "cookie-secret", testCookieSecret + "\nnot-a-secret\n", "AUTHPROXY_COOKIE_SECRET: item 2"},
		{"cookie secret file gone", "cookie-secret", "", "AUTHPROXY_COOKIE_SECRET: reading AUTHPROXY_COOKIE_SECRET_FILE"},
		{"allow-list entry not an address", "emails", "ada@example.com\nbob\n", `AUTHPROXY_ALLOWED_EMAILS: want email addresses such as ada@example.com, got "bob"`},
		{"claim header reserved", "claim-headers", "Authorization=sub\n", `AUTHPROXY_CLAIM_HEADERS: header "Authorization": reserved`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			t.Cleanup(func() { writeConfigFile(t, path, files[tc.file]) })
			if tc.content == "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				writeConfigFile(t, path, tc.content)
			}
			before := e.srv.live.Load()
			err := e.srv.Reload(e.lookup)
			var re *ReloadError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload: %v; want a *ReloadError saying %q", err, tc.want)
			}
			if e.srv.live.Load() != before {
				t.Error("a refused reload replaced the configuration in effect")
			}
			if got := e.reloads(t, "error"); got != float64(i+1) {
				t.Errorf(`authproxy_config_reloads_total{result="error"} = %v, want %d`, got, i+1)
			}
			if got := e.statusOf(t, cookie, "/admin/users"); got != http.StatusOK {
				t.Errorf("GET /admin/users after the refused reload: %d, want 200 as before", got)
			}
			if got := e.statusOf(t, "", "/readyz"); got != http.StatusOK {
				t.Errorf("/readyz after the refused reload: %d, want 200", got)
			}
			last := lastLogLine(e.logs.String(), "configuration reload refused")
			inJSON, _ := json.Marshal(tc.want)
			if !strings.Contains(last, strings.Trim(string(inJSON), `"`)) || strings.Contains(last, testCookieSecret) {
				t.Errorf("the log line of the refusal does not say %q (or shows the secret): %s", tc.want, last)
			}
		})
	}
	if got := e.reloads(t, "ok"); got != 0 {
		t.Errorf(`authproxy_config_reloads_total{result="ok"} = %v, want 0`, got)
	}
	// Restored, the files reload fine.
	if err := e.srv.Reload(e.lookup); err != nil {
		t.Errorf("Reload of the restored files: %v", err)
	}
}

// lastLogLine returns the last line of logs that contains msg.
func lastLogLine(logs, msg string) string {
	var last string
	for line := range strings.Lines(logs) {
		if strings.Contains(line, msg) {
			last = line
		}
	}
	return last
}

// Rotating the cookie secret without a restart: a new first secret in the
// file keeps every session (sealed with the old one) and seals new ones
// with the new one; dropping the old secret then ends the sessions it
// sealed, even those this process has cached.
func TestReloadRotatesCookieSecret(t *testing.T) {
	oldSecret := testCookieSecret
	newSecret := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	sf := filepath.Join(t.TempDir(), "cookie-secret")
	writeConfigFile(t, sf, oldSecret+"\n")
	e := newTestEnv(t, withVar("AUTHPROXY_COOKIE_SECRET", ""), withVar("AUTHPROXY_COOKIE_SECRET_FILE", sf))
	e.srv.reload.rebuild = func(c *Config) (session.Store, *session.Codec, error) {
		return newStore(e.cfg.withSecrets(c), session.NewMemoryBackend(nil), nil)
	}
	if e.srv.cache == nil {
		t.Fatal("the test server has no session cache; the last step would test nothing")
	}
	before := e.browser()
	e.signIn(t, before, "/app")
	oldCookie := e.sessionCookie(before)
	if got := e.statusOf(t, oldCookie, "/app"); got != http.StatusOK {
		t.Fatalf("GET /app signed in: %d, want 200", got)
	}

	writeConfigFile(t, sf, newSecret+"\n"+oldSecret+"\n")
	if err := e.srv.Reload(e.lookup); err != nil {
		t.Fatalf("Reload with the new secret first: %v", err)
	}
	if got := e.statusOf(t, oldCookie, "/app"); got != http.StatusOK {
		t.Errorf("GET /app with the session sealed before the rotation: %d, want 200 (nobody is signed out)", got)
	}
	after := e.browser()
	e.signIn(t, after, "/app")
	newCookie := e.sessionCookie(after)
	for _, tc := range []struct {
		secret string
		opens  bool
	}{{newSecret, true}, {oldSecret, false}} {
		key, _ := base64.StdEncoding.DecodeString(tc.secret)
		codec, err := session.NewCodec([][]byte{key}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, value, _ := strings.Cut(newCookie, "=")
		var s session.Session
		if err := codec.Open(e.cfg.CookieName, value, &s); (err == nil) != tc.opens {
			t.Errorf("the session signed in after the rotation opens with the %s secret alone: %v; want %t", map[bool]string{true: "new", false: "old"}[tc.opens], err, tc.opens)
		}
	}

	writeConfigFile(t, sf, newSecret+"\n")
	if err := e.srv.Reload(e.lookup); err != nil {
		t.Fatalf("Reload without the old secret: %v", err)
	}
	if got := e.statusOf(t, oldCookie, "/app"); got != http.StatusUnauthorized {
		t.Errorf("GET /app with a session only the dropped secret opens: %d, want 401", got)
	}
	if got := e.statusOf(t, newCookie, "/app"); got != http.StatusOK {
		t.Errorf("GET /app with the session sealed with the new secret: %d, want 200", got)
	}
}

// A change that only a restart applies (the Redis URL) is logged as such
// and left alone, while the rest of the same reload takes effect.
func TestReloadNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	pf, rf := filepath.Join(dir, "policy"), filepath.Join(dir, "redis-url")
	writeConfigFile(t, pf, policyAdminsOnly)
	writeConfigFile(t, rf, "redis://127.0.0.1:1/0\n")
	// The URL is never dialed: the backend is an in-memory one (the edge a
	// test may replace).
	memory := func(s *envSetup) { s.backend = session.NewMemoryBackend(nil) }
	e := newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", pf), withVar("AUTHPROXY_REDIS_URL_FILE", rf), memory)
	cookie := e.mintSession(t, testSession())
	writeConfigFile(t, pf, policyStaffAdmin)
	writeConfigFile(t, rf, "redis://127.0.0.1:2/0\n")
	if err := e.srv.Reload(e.lookup); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := e.statusOf(t, cookie, "/admin/users"); got != http.StatusOK {
		t.Errorf("GET /admin/users after the reload: %d, want 200", got)
	}
	line := lastLogLine(e.logs.String(), "only a restart applies")
	if !strings.Contains(line, `"needs_restart":["AUTHPROXY_REDIS_URL"]`) || strings.Contains(line, "127.0.0.1:2") {
		t.Errorf("the log does not say AUTHPROXY_REDIS_URL needs a restart (or shows the URL): %q", line)
	}
	if got := e.reloads(t, "ok"); got != 1 {
		t.Errorf(`authproxy_config_reloads_total{result="ok"} = %v, want 1`, got)
	}
}

// twoConfigurations returns a server under configuration 0 of two, the
// lookups of both, and a session whose department claim is research.
// Configuration n lets the user into /cn/ only and sends the claim header
// X-Cn, so a request to /c0/ that reaches the upstream must carry X-C0 and
// never X-C1.
func twoConfigurations(t *testing.T) (*testEnv, []Lookup, string) {
	dir := t.TempDir()
	lookups := make([]Lookup, 2)
	var e *testEnv
	for n := range 2 {
		pf, hf := filepath.Join(dir, fmt.Sprint("policy", n)), filepath.Join(dir, fmt.Sprint("claims", n))
		writeConfigFile(t, pf, fmt.Sprintf("rules:\n  - path: /c%d/\n    allow: authenticated\n  - path: /\n    allow: {groups: [root]}\n", n))
		writeConfigFile(t, hf, fmt.Sprintf("X-C%d=department\n", n))
		if n == 0 {
			e = newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", pf), withVar("AUTHPROXY_CLAIM_HEADERS_FILE", hf))
		}
		base := e.lookup
		lookups[n] = func(name string) (string, bool) {
			switch name {
			case "AUTHPROXY_POLICY_FILE":
				return pf, true
			case "AUTHPROXY_CLAIM_HEADERS_FILE":
				return hf, true
			}
			return base(name)
		}
	}
	s := testSession()
	s.Extra = map[string]string{"department": "research"}
	return e, lookups, e.mintSession(t, s)
}

// A reload while a request is between its access decision and the headers
// it sends upstream (held in the session store) leaves that request wholly
// on the configuration it started with; the next request gets the new one.
func TestReloadDuringARequest(t *testing.T) {
	e, lookups, cookie := twoConfigurations(t)
	gate := &gatedStore{Store: e.store, loaded: make(chan struct{}), release: make(chan struct{})}
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Config: e.cfg, Provider: e.provider, Store: gate, StateCodec: e.srv.live.Load().state, Templates: pages, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Cookie", cookie)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	inFlight := make(chan *httptest.ResponseRecorder)
	go func() { inFlight <- get("/c0/page") }()
	<-gate.loaded
	if err := srv.Reload(lookups[1]); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	close(gate.release)
	rec := <-inFlight
	if rec.Code != http.StatusOK {
		t.Fatalf("the request in flight at the reload: %d, want 200 (configuration 0 lets it in)", rec.Code)
	}
	h := fromUpstream(t, reply{Status: rec.Code, Body: rec.Body.String()}).Header
	if h.Get("X-C0") != "research" || h.Get("X-C1") != "" {
		t.Errorf("the request judged by configuration 0 reached the upstream with X-C0 %q, X-C1 %q; want only X-C0", h.Get("X-C0"), h.Get("X-C1"))
	}
	if code := get("/c0/page").Code; code != http.StatusForbidden {
		t.Errorf("GET /c0/page after the reload: %d, want 403 (configuration 1)", code)
	}
}

// Reloads between two configurations while requests run: each request is
// served wholly by one of them (see twoConfigurations). Run under -race.
func TestReloadIsAtomic(t *testing.T) {
	e, lookups, cookie := twoConfigurations(t)
	ctx, cancel := context.WithCancel(t.Context())
	reloader := make(chan struct{})
	go func() {
		defer close(reloader)
		for i := 1; ctx.Err() == nil; i++ {
			if err := e.srv.Reload(lookups[i%2]); err != nil {
				t.Errorf("Reload: %v", err)
				return
			}
		}
	}()
	var mu sync.Mutex
	served := map[string]int{}
	client := noFollow(&http.Client{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				n := (w + i) % 2
				r := e.request(t, client, http.MethodGet, fmt.Sprintf("/c%d/page", n), "Cookie", cookie, "Accept", "application/json")
				switch r.Status {
				case http.StatusForbidden:
					continue
				case http.StatusOK:
				default:
					t.Errorf("GET /c%d/page: %d, want 200 or 403", n, r.Status)
					return
				}
				h := fromUpstream(t, r).Header
				own, other := h.Get(fmt.Sprint("X-C", n)), h.Get(fmt.Sprint("X-C", 1-n))
				if own != "research" || other != "" {
					t.Errorf("GET /c%d/page reached the upstream with X-C%d %q and X-C%d %q: half of each configuration", n, n, own, 1-n, other)
				}
				mu.Lock()
				served[fmt.Sprint("/c", n)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	cancel()
	<-reloader
	t.Logf("reloads: %v; served to the upstream: %v", e.reloads(t, "ok"), served)
}

// WatchConfig reloads at once on SIGHUP, whether or not a file changed, and
// by itself when a file changes.
func TestWatchConfigReloadsOnSIGHUPAndOnChange(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "policy.yaml")
	writeConfigFile(t, pf, policyAdminsOnly)
	e := newTestEnv(t, withVar("AUTHPROXY_POLICY_FILE", pf))
	cookie := e.mintSession(t, testSession())
	hup := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.WatchConfig(ctx, e.lookup, hup) }()
	t.Cleanup(func() { cancel(); <-done })

	waitReloads := func(want float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for e.reloads(t, "ok") < want {
			if time.Now().After(deadline) {
				t.Fatalf("after 10s, %v reloads; want %v", e.reloads(t, "ok"), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	hup <- syscall.SIGHUP
	waitReloads(1)
	if !strings.Contains(e.logs.String(), "SIGHUP: reloading the configuration") {
		t.Error("the log does not say SIGHUP started the reload")
	}
	writeConfigFile(t, pf, policyStaffAdmin)
	start := time.Now()
	waitReloads(2)
	t.Logf("the change took effect %v after the write", time.Since(start).Round(time.Millisecond))
	if got := e.statusOf(t, cookie, "/admin/users"); got != http.StatusOK {
		t.Errorf("GET /admin/users after the watched file changed: %d, want 200", got)
	}
}

// The allow-lists and claim headers read from NAME_FILE take one item a
// line (or comma-separated), skip blank and # lines, and are refused
// together with the variable itself; a cookie secret file may list its
// secrets one a line.
func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeConfigFile(t, p, content)
		return p
	}
	other := base64.StdEncoding.EncodeToString([]byte("fedcba9876543210fedcba9876543210"))
	c, err := loadWith(map[string]string{
		"AUTHPROXY_ALLOWED_EMAILS_FILE":   file("emails", "# staff\nAda@Example.com\n\n  bob@example.com, eve@example.com\n"),
		"AUTHPROXY_ALLOWED_GROUPS_FILE":   file("groups", "admins\r\nops\r\n"),
		"AUTHPROXY_CLAIM_HEADERS_FILE":    file("claims", "X-Tenant=tid\n# X-Old=old\nX-Dept=department\n"),
		"AUTHPROXY_COOKIE_SECRET":         "\x00unset",
		"AUTHPROXY_COOKIE_SECRET_FILE":    file("secrets", other+"\n"+testCookieSecret+"\n"),
		"AUTHPROXY_ALLOWED_EMAIL_DOMAINS": "example.org",
	})
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	for _, tc := range []struct {
		field     string
		got, want any
	}{
		{"AllowedEmails", c.AllowedEmails, []string{"ada@example.com", "bob@example.com", "eve@example.com"}},
		{"AllowedGroups", c.AllowedGroups, []string{"admins", "ops"}},
		{"ClaimHeaders", c.ClaimHeaders, []ClaimHeader{{"X-Tenant", "tid"}, {"X-Dept", "department"}}},
		{"CookieSecrets", len(c.CookieSecrets), 2},
	} {
		if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
			t.Errorf("%s = %v, want %v", tc.field, tc.got, tc.want)
		}
	}
	_, err = loadWith(map[string]string{"AUTHPROXY_ALLOWED_GROUPS": "admins", "AUTHPROXY_ALLOWED_GROUPS_FILE": file("g2", "ops\n")})
	if err == nil || !strings.Contains(err.Error(), "AUTHPROXY_ALLOWED_GROUPS: set either AUTHPROXY_ALLOWED_GROUPS or AUTHPROXY_ALLOWED_GROUPS_FILE, not both") {
		t.Errorf("LoadConfig with both AUTHPROXY_ALLOWED_GROUPS and its _FILE: %v; want the error saying to set one", err)
	}
}
