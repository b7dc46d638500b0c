package providers

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestProbe(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/realm/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, issuer string
		status       int
		ok           bool
	}{
		{"answers", srv.URL + "/realm", http.StatusOK, true},
		{"answers, issuer with a slash", srv.URL + "/realm/", http.StatusOK, true},
		{"server error", srv.URL + "/realm", http.StatusBadGateway, false},
		{"not found", srv.URL + "/other", http.StatusOK, false},
		{"down", closed, http.StatusOK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status = tc.status
			err := NewOIDC(OIDCConfig{IssuerURL: tc.issuer}).Probe(t.Context())
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrUnavailable) {
				t.Errorf("Probe = %v, want ok %t (else ErrUnavailable)", err, tc.ok)
			}
		})
	}
}
