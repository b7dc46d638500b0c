package authproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// serveInBackground runs Serve until the returned cancel is called and
// returns the bound address and Serve's result channel.
func serveInBackground(t *testing.T, srv *Server, cfg *Config) (addr string, cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	addrs := make(chan string, 2)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, func(a string) { addrs <- a }) }()
	select {
	case addr = <-addrs:
	case err := <-errc:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(cancelCtx)
	return addr, cancelCtx, errc
}

// TestShutdownDrainsInFlightRequest is the pod roll: a request in flight
// when SIGTERM arrives (here: the context ends) completes, then Serve
// returns without error and no longer accepts connections.
func TestShutdownDrainsInFlightRequest(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	defer upstream.Close()
	srv, cfg := newPublicServer(t, upstream.URL, map[string]string{"AUTHPROXY_LISTEN": "127.0.0.1:0", "AUTHPROXY_SHUTDOWN_GRACE": "30s"})
	addr, stop, done := serveInBackground(t, srv, cfg)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-started
	stop() // SIGTERM
	// Shutdown has begun once new connections are refused.
	for i := 0; ; i++ {
		c, err := (&http.Client{Timeout: time.Second}).Get("http://" + addr + "/healthz")
		if err != nil {
			break
		}
		c.Body.Close()
		if i > 200 {
			t.Fatal("still accepting connections after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	r := <-got
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: body %q, err %v; want it to complete", r.body, r.err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v, want nil after a clean drain", err)
	}
}

// TestTLSServingReloadsCertificate serves HTTPS and picks up a replaced
// certificate without a restart.
func TestTLSServingReloadsCertificate(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "first")
	srv, cfg := newPublicServer(t, upstream.URL, map[string]string{
		"AUTHPROXY_LISTEN": "127.0.0.1:0", "AUTHPROXY_TLS_CERT_FILE": certFile, "AUTHPROXY_TLS_KEY_FILE": keyFile,
	})
	addr, _, _ := serveInBackground(t, srv, cfg)

	commonName := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := commonName(); cn != "first" {
		t.Fatalf("served certificate %q, want first", cn)
	}
	writeSelfSigned(t, certFile, keyFile, "second")
	future := time.Now().Add(time.Minute)
	os.Chtimes(certFile, future, future)
	deadline := time.Now().Add(15 * time.Second)
	for commonName() != "second" {
		if time.Now().After(deadline) {
			t.Fatal("renewed certificate was not picked up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLSReloadFailureIsLoggedAndCounted is issue 11's finding 7: a changed
// certificate that does not load keeps the old one serving, and says so:
// every failure counted, the log told (once a minute while it keeps failing).
func TestTLSReloadFailureIsLoggedAndCounted(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile, "first")
	kp, err := newKeyPairReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	m := newMetrics("test")
	kp.log, kp.reloads, kp.checkGap = slog.New(slog.NewJSONHandler(logs, nil)), m.tlsReloads, 0
	served := func() string {
		c, err := kp.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.Subject.CommonName
	}
	touch := func(name string) {
		t.Helper()
		future := time.Now().Add(time.Duration(len(logs.String())+1) * time.Second)
		if err := os.Chtimes(name, future, future); err != nil {
			t.Fatal(err)
		}
	}

	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	touch(certFile)
	for range 3 {
		if cn := served(); cn != "first" {
			t.Fatalf("served %q after a broken renewal, want the old certificate", cn)
		}
	}
	if got := counterValue(t, m.tlsReloads.WithLabelValues("error")); got != 3 {
		t.Errorf("authproxy_tls_certificate_reloads_total{result=error} = %v, want 3", got)
	}
	if n := strings.Count(logs.String(), "does not load"); n != 1 {
		t.Errorf("%d error lines for three failures in a row, want 1:\n%s", n, logs)
	}

	writeSelfSigned(t, certFile, keyFile, "second")
	touch(certFile)
	if cn := served(); cn != "second" {
		t.Fatalf("served %q after a good renewal, want second", cn)
	}
	if got := counterValue(t, m.tlsReloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("reloads{result=ok} = %v, want 1", got)
	}
}

// counterValue reads a counter's value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetCounter().GetValue()
}
