package authproxy

import (
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUpstreamKinds proxies to a unix socket, to https with a CA file, and
// refuses an https upstream whose certificate the configured roots don't
// vouch for.
func TestUpstreamKinds(t *testing.T) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from "+r.URL.Path) })

	sock := filepath.Join(t.TempDir(), "app.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	unixSrv := &http.Server{Handler: hello}
	go unixSrv.Serve(ln)
	defer unixSrv.Close()

	tlsSrv := httptest.NewTLSServer(hello)
	defer tlsSrv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	// httptest's TLS servers all share one certificate: make another.
	otherCAFile := filepath.Join(t.TempDir(), "other.pem")
	writeSelfSigned(t, otherCAFile, filepath.Join(t.TempDir(), "other-key.pem"), "other")

	tests := []struct {
		name       string
		env        map[string]string
		wantStatus int
		wantBody   string
	}{
		{"unix socket", map[string]string{"AUTHPROXY_UPSTREAM": "unix://" + sock}, 200, "hello from /slow"},
		{"https with CA file", map[string]string{"AUTHPROXY_UPSTREAM": tlsSrv.URL, "AUTHPROXY_UPSTREAM_CA_FILE": caFile}, 200, "hello from /slow"},
		{"https with the wrong CA", map[string]string{"AUTHPROXY_UPSTREAM": tlsSrv.URL, "AUTHPROXY_UPSTREAM_CA_FILE": otherCAFile}, 502, "did not answer"},
		{"https without CA file (system roots)", map[string]string{"AUTHPROXY_UPSTREAM": tlsSrv.URL}, 502, "did not answer"},
		{"https, verification explicitly off", map[string]string{"AUTHPROXY_UPSTREAM": tlsSrv.URL, "AUTHPROXY_INSECURE_SKIP_UPSTREAM_TLS_VERIFY": "true"}, 200, "hello from /slow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newPublicServer(t, "http://unused", tt.env)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/slow", nil)
			req.Header.Set("Accept", "text/html")
			srv.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.wantStatus, tt.wantBody)
			}
		})
	}
}
