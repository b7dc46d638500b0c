package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSpoofedHeadersNeverReachTheApp sends, with a real session, headers that claim another
// identity: the app must see only the session's.
func TestSpoofedHeadersNeverReachTheApp(t *testing.T) {
	tab := newBrowser(t)
	signIn(t, tab, alice, "/")
	cookies := browserCookies(t, tab)
	if len(cookies) == 0 {
		t.Fatal("the browser holds no cookie for the proxy after signing in")
	}

	for _, tc := range []struct {
		name   string
		header http.Header // sent as written, not canonicalized
	}{
		{"identity headers", http.Header{
			"X-Forwarded-User":               {"evil"},
			"X-Forwarded-Email":              {"evil@x"},
			"X-Forwarded-Preferred-Username": {"evil"},
			"X-Forwarded-Groups":             {"admins,root"},
			"X-Forwarded-Access-Token":       {"evil-token"},
		}},
		{"other spellings", http.Header{
			"x-forwarded-email":              {"evil@x"},
			"x_forwarded_user":               {"evil"},
			"X_Forwarded_Email":              {"evil@x"},
			"x_forwarded_preferred_username": {"evil"},
			"X_FORWARDED_GROUPS":             {"admins"},
			"x_forwarded_access_token":       {"evil-token"},
		}},
		{"X-Auth-Request family", http.Header{
			"X-Auth-Request-User":               {"evil"},
			"X-Auth-Request-Email":              {"evil@x"},
			"X-Auth-Request-Groups":             {"admins"},
			"X-Auth-Request-Preferred-Username": {"evil"},
			"X-Auth-Request-Access-Token":       {"evil-token"},
			"x_auth_request_email":              {"evil@x"},
		}},
		{"Connection names the identity headers", http.Header{
			// A proxy that strips hop-by-hop headers after setting its own would lose them here.
			"Connection":         {"X-Forwarded-User, X-Forwarded-Email, X-Forwarded-Groups, X-Forwarded-Preferred-Username"},
			"X-Forwarded-Email":  {"evil@x"},
			"X-Forwarded-Groups": {"admins"},
		}},
		{"forwarding headers from an untrusted client", http.Header{
			"X-Forwarded-For":   {"203.0.113.9"},
			"X-Forwarded-Host":  {"evil.example"},
			"X-Forwarded-Proto": {"https"},
			"Forwarded":         {"for=203.0.113.9;host=evil.example;proto=https"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, "/api/whoami", cookies, tc.header)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /api/whoami with a session and spoofed headers: %s %q; want 200", resp.Status, body)
			}
			var w whoami
			if err := json.Unmarshal(body, &w); err != nil {
				t.Fatalf("GET /api/whoami: %v: %q", err, body)
			}
			checkWhoami(t, w, alice)
			if strings.Contains(string(body), "evil") || strings.Contains(string(body), "203.0.113.9") {
				t.Errorf("a spoofed value reached the app:\n%s", body)
			}
		})
	}

	t.Run("the app's cookies pass, authproxy's do not", func(t *testing.T) {
		own := &http.Cookie{Name: "legacy_pref", Value: "dark"}
		resp, body := get(t, "/api/whoami", append(slices.Clone(cookies), own), nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/whoami: %s %q", resp.Status, body)
		}
		var w whoami
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatalf("GET /api/whoami: %v: %q", err, body)
		}
		if !slices.Equal(w.Cookies, []string{"legacy_pref"}) {
			t.Errorf("sent cookies %q; app got %q, want only legacy_pref", cookieNames(cookies), w.Cookies)
		}
	})
}

// TestStreamedResponsePassesThrough checks that Server-Sent Events reach the client as they are
// sent, not when the stream ends.
func TestStreamedResponsePassesThrough(t *testing.T) {
	tab := newBrowser(t)
	signIn(t, tab, alice, "/")
	cookies := browserCookies(t, tab)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, stack.proxyURL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	start := time.Now()
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /events: %s, Content-Type %q; want 200 text/event-stream", resp.Status, resp.Header.Get("Content-Type"))
	}

	var events []string
	var first time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if len(events) == 0 {
				first = time.Since(start)
			}
			events = append(events, data)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("GET /events: reading the stream: %v", err)
	}
	total := time.Since(start)
	if len(events) != 5 {
		t.Fatalf("GET /events: got %d events %q; want 5", len(events), events)
	}
	for _, e := range events {
		if strings.Contains(e, `"user":""`) {
			t.Errorf("GET /events: event %s was sent without X-Forwarded-User", e)
		}
	}
	// The app sends an event every 250ms; buffered until the end, the first would arrive ~1s late.
	if total-first < 500*time.Millisecond {
		t.Errorf("GET /events: first event after %v, stream ended after %v: the response was buffered, not streamed", first, total)
	}
}
