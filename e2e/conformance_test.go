package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/internal/hostileop"
)

// TestConformanceHostileOP runs the real authproxy binary against a few rows
// of CONFORMANCE.md, with internal/hostileop's OP in this process: a
// deliberately hostile fake speaking the real wire formats, which records
// every call. (authproxy/conformance_test.go drives every row through the
// handler chain; this proves the binary as shipped does the same.)
func TestConformanceHostileOP(t *testing.T) {
	requireStack(t)
	const clientID, secret = "e2e-conformance", "e2e-conformance-secret-0123456789abcdef"
	for _, tc := range []struct {
		name   string
		bend   func(op *hostileop.OP, b *hostileop.Behaviour)
		env    []string
		ready  bool
		status int // of the callback
		tokens int // token requests the OP must have seen
	}{
		{"rp-discovery-issuer-not-matching-config", func(_ *hostileop.OP, b *hostileop.Behaviour) {
			b.Discovery = func(doc map[string]any) { doc["issuer"] = "https://attacker.example" }
		}, nil, false, 0, 0},
		{"rfc9207-2.4-iss-other-op", func(_ *hostileop.OP, b *hostileop.Behaviour) {
			b.AuthResponse = func(q url.Values) { q.Set("iss", "https://attacker.example") }
		}, nil, true, http.StatusBadRequest, 0},
		{"rp-id_token-sig-none", func(_ *hostileop.OP, b *hostileop.Behaviour) { b.Sign = hostileop.Unsigned }, nil, true, http.StatusBadRequest, 1},
		{"token-response-20MiB", func(_ *hostileop.OP, b *hostileop.Behaviour) {
			b.Token = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				chunk := strings.Repeat(" ", 64<<10)
				io.WriteString(w, `{"access_token":"at","token_type":"Bearer","pad":"`)
				for n := 0; n < 20<<20; n += len(chunk) {
					if _, err := io.WriteString(w, chunk); err != nil {
						return
					}
				}
				io.WriteString(w, `"}`)
			}
		}, nil, true, http.StatusBadGateway, 1},
		{"token-never-answers", func(_ *hostileop.OP, b *hostileop.Behaviour) {
			b.Token = func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		}, []string{"AUTHPROXY_IDP_TIMEOUT=1s"}, true, http.StatusGatewayTimeout, 1},
		{"rp-id_token-sig-rs256", func(*hostileop.OP, *hostileop.Behaviour) {}, nil, true, http.StatusFound, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := hostileop.New(t, clientID, secret)
			op.Set(func(b *hostileop.Behaviour) { tc.bend(op, b) })
			ps := newProcSet(t)
			pp := newProxy(t, ps, "authproxy")
			env := []string{
				"AUTHPROXY_UPSTREAM=" + stack.appURL,
				"AUTHPROXY_OIDC_ISSUER=" + op.URL(),
				"AUTHPROXY_CLIENT_ID=" + clientID,
				"AUTHPROXY_CLIENT_SECRET=" + secret,
				"AUTHPROXY_REDIRECT_URL=" + pp.callbackURL(),
				"AUTHPROXY_COOKIE_SECRET=" + newSecret(),
				"AUTHPROXY_COOKIE_SECURE=false",
				"AUTHPROXY_LOG_FORMAT=text",
			}
			env = append(env, tc.env...)
			if !tc.ready {
				pp.p = ps.startProc(t, pp.name, append([]string{"AUTHPROXY_LISTEN=" + pp.addr}, env...), filepath.Join(stack.dir, "authproxy"))
				waitUnready(t, pp.url+"/readyz")
				// /readyz names what is not ready; why is the log's to say.
				if log := pp.log(t); !strings.Contains(log, "AUTHPROXY_OIDC_ISSUER") || !strings.Contains(log, "https://attacker.example") {
					t.Errorf("the log does not say that the issuers differ:\n%s", log)
				}
				resp, body := call(t, http.MethodGet, pp.url+"/oauth2/start?rd=%2F", nil, http.Header{"Accept": {"text/html"}}, nil)
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "<title>") {
					t.Errorf("/oauth2/start: got %s Location %q, want a 503 page", resp.Status, resp.Header.Get("Location"))
				}
				if n := len(op.Calls("/authorize")) + len(op.Calls("/token")); n != 0 {
					t.Errorf("the OP was asked %d authorization or token request(s)", n)
				}
				return
			}
			pp.start(t, env...)
			resp, body := hostileSignIn(t, pp.url)
			if resp.StatusCode != tc.status || resp.Request.URL.Path != "/oauth2/callback" {
				t.Fatalf("sign-in stopped at %s with %s, want the callback's %d; body: %.300s", resp.Request.URL.Path, resp.Status, tc.status, body)
			}
			if n := len(op.Calls("/token")); n != tc.tokens {
				t.Errorf("%d token request(s), want %d", n, tc.tokens)
			}
			setsSession := false
			for _, c := range resp.Cookies() {
				if c.Name == "_authproxy" && c.Value != "" && c.MaxAge >= 0 {
					setsSession = true
				}
			}
			if ok := tc.status == http.StatusFound; setsSession != ok {
				t.Errorf("callback set a session: %t, want %t", setsSession, ok)
			}
			if tc.status != http.StatusFound {
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<title>") {
					t.Errorf("callback: want an HTML error page, got %q: %.300s", resp.Header.Get("Content-Type"), body)
				}
				if n := len(op.Calls("/userinfo")); n != 0 {
					t.Errorf("%d userinfo call(s) after a refused sign-in", n)
				}
			}
		})
	}
}

// hostileSignIn starts a sign-in at the proxy and follows the redirects to
// the OP and back, stopping at the callback's answer.
func hostileSignIn(t *testing.T, proxyURL string) (*http.Response, []byte) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second, CheckRedirect: func(_ *http.Request, via []*http.Request) error {
		if via[len(via)-1].URL.Path == "/oauth2/callback" || len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	req, err := http.NewRequest(http.MethodGet, proxyURL+"/oauth2/start?rd=%2F", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// waitUnready polls a /readyz that must answer 503 until it names the
// identity provider as not ready.
func waitUnready(t *testing.T, readyz string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(readyz)
		if err == nil {
			var body struct {
				NotReady []string `json:"not_ready"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("%s answers 200 with another issuer in discovery", readyz)
			}
			if err == nil && slices.Contains(body.NotReady, "identity_provider") {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never said the identity provider is not ready", readyz)
}
