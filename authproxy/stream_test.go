package authproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/providers"
	"github.com/authproxy/authproxy/session"
	"github.com/authproxy/authproxy/templates"
)

// newPublicServer builds a Server in front of upstream whose /ws, /events
// and /slow routes are public, so serving and streaming can be tested
// without signing in. Its IdP is never reached. env adds or overrides
// variables.
func newPublicServer(t testing.TB, upstream string, env map[string]string) (*Server, *Config) {
	t.Helper()
	vars := map[string]string{
		"AUTHPROXY_UPSTREAM":         upstream,
		"AUTHPROXY_OIDC_ISSUER":      "http://127.0.0.1:1/unused",
		"AUTHPROXY_CLIENT_ID":        "c",
		"AUTHPROXY_REDIRECT_URL":     "http://127.0.0.1/oauth2/callback",
		"AUTHPROXY_COOKIE_SECRET":    strings.Repeat("ab", 32),
		"AUTHPROXY_SKIP_AUTH_ROUTES": "/ws, GET /events, GET /slow",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := LoadConfig(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	key := [][]byte{[]byte(cfg.CookieSecrets[0].Reveal())}
	codec, err := session.NewCodec(key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := templates.New("")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{
		Config:     cfg,
		Provider:   providers.NewOIDC(providers.OIDCConfig{IssuerURL: cfg.Issuer.String()}),
		Store:      session.NewCookieStore(codec, session.CookieOptions{}, nil),
		StateCodec: codec,
		Templates:  pages,
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv, cfg
}

// newStreamProxy serves newPublicServer from an httptest.Server.
func newStreamProxy(t *testing.T, upstream string) *httptest.Server {
	t.Helper()
	srv, _ := newPublicServer(t, upstream, nil)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts
}

// TestWebSocketPassesThrough upgrades a connection through the proxy and
// echoes bytes both ways over it. The upstream speaks the HTTP/1.1 upgrade
// handshake itself (RFC 6455 framing is the app's business, not the proxy's).
func TestWebSocketPassesThrough(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-User") != "" {
			http.Error(w, "want a websocket upgrade without identity", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		fmt.Fprint(brw, "echo: "+line)
		brw.Flush()
	}))
	defer upstream.Close()
	proxy := newStreamProxy(t, upstream.URL)

	conn, err := net.Dial("tcp", strings.TrimPrefix(proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Forwarded-User: spoofed\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status = %d (%s), want 101", resp.StatusCode, body)
	}
	fmt.Fprint(conn, "hello\n")
	got, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if got != "echo: hello\n" {
		t.Errorf("echo = %q, want %q", got, "echo: hello\n")
	}
}

// TestServerSentEventsStream checks that each event reaches the client
// while the upstream is still holding the response open.
func TestServerSentEventsStream(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "data: second\n\n")
	}))
	defer upstream.Close()
	proxy := newStreamProxy(t, upstream.URL)

	resp, err := http.Get(proxy.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "data: first\n" {
			t.Errorf("first line = %q, want %q", line, "data: first\n")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("first event did not arrive while the upstream held the stream open: the proxy buffers")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("rest of stream = %q, want the second event", rest)
	}
}
