package session

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestSessionIDTokenForms(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"RS256","kid":"k1"}`))
	sig := enc([]byte("not really a signature, never checked here"))
	payload := `{"iss":"https://idp.example","sub":"u-123","groups":["admins","staff"]}`
	tests := []struct {
		name      string
		idToken   string
		wantSplit bool // stored as id_token_jws
	}{
		{"compact JWS", header + "." + enc([]byte(payload)) + "." + sig, true},
		{"none", "", false},
		{"opaque token", "opaque-" + strings.Repeat("x", 40), false},
		{"two parts", header + "." + enc([]byte(payload)), false},
		{"four parts", header + "." + enc([]byte(payload)) + "." + sig + ".x", false},
		{"payload not base64url", header + ".***." + sig, false},
		{"payload not JSON", header + "." + enc([]byte("plain text")) + "." + sig, false},
		{"payload with spaces", header + "." + enc([]byte(`{"sub": "u-123"}`)) + "." + sig, false},
		{"payload with HTML characters Marshal escapes", header + "." + enc([]byte(`{"name":"<b>&"}`)) + "." + sig, false},
		// {"a":1} with nonzero padding bits: decodes, but re-encodes otherwise.
		{"payload base64 not canonical", header + ".eyJhIjoxfR." + sig, false},
		{"padded payload", header + "." + base64.URLEncoding.EncodeToString([]byte(`{"a":1}`)) + "." + sig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newSession(t, 100)
			in.IDToken = tt.idToken
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(b, &fields); err != nil {
				t.Fatal(err)
			}
			_, split := fields["id_token_jws"]
			_, raw := fields["id_token"]
			if split != tt.wantSplit || split && raw || raw != (tt.idToken != "" && !tt.wantSplit) {
				t.Errorf("stored as id_token %v, id_token_jws %v; want split %v", raw, split, tt.wantSplit)
			}
			if tt.wantSplit && !strings.Contains(string(b), `"groups":["admins","staff"]`) {
				t.Errorf("split payload not stored as JSON: %s", fields["id_token_jws"])
			}
			var out Session
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatal(err)
			}
			if out.IDToken != tt.idToken {
				t.Errorf("ID token back as %q, want %q", out.IDToken, tt.idToken)
			}
			sameSession(t, &out, in)
		})
	}
}

// TestSessionJSONAsBefore checks that a session's JSON from before the ID
// token was split still decodes, every field.
func TestSessionJSONAsBefore(t *testing.T) {
	old := `{"id":"s1","user":"u","sub":"u","email":"u@example.com","groups":["g"],"extra":{"dept":"x"},"sid":"sid-1",` +
		`"id_token":"a.eyJhIjoxfQ.c","access_token":"at","refresh_token":"rt","token_expiry":"2030-01-01T00:05:00Z",` +
		`"created_at":"2030-01-01T00:00:00Z","expires_at":"2030-01-01T01:00:00Z","last_seen":"2030-01-01T00:01:00Z","idle_timeout":60000000000}`
	var s Session
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != "s1" || s.Subject != "u" || s.Extra["dept"] != "x" || s.SID != "sid-1" || s.IDToken != "a.eyJhIjoxfQ.c" ||
		s.AccessToken != "at" || s.RefreshToken != "rt" || s.TokenExpiry.IsZero() || s.LastSeen.IsZero() || s.IdleTimeout == 0 {
		t.Errorf("decoded %+v", s)
	}
	// And it encodes back to the same fields, its ID token now split.
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var again Session
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	sameSession(t, &again, &s)
	if again.IDToken != s.IDToken || again.AccessToken != s.AccessToken {
		t.Errorf("tokens changed in a round trip")
	}
}
