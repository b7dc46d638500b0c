package otlphttp

import (
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/authproxy/authproxy/internal/teststack"
)

// testSpans is two resources' spans, as the SDK hands them to the client.
func testSpans() []*tracepb.ResourceSpans {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	span := func(name string, id byte) *tracepb.Span {
		return &tracepb.Span{
			TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanId: []byte{id, 0, 0, 0, 0, 0, 0, 1},
			Name: name, Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1e18, EndTimeUnixNano: 1e18 + 5e6,
			Attributes: []*commonpb.KeyValue{str("http.request.method", "GET")},
		}
	}
	return []*tracepb.ResourceSpans{
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "authproxy")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "authproxy"}, Spans: []*tracepb.Span{span("authproxy app", 1), span("upstream", 2)}}}},
		{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "other")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span("idp token", 3)}}}},
	}
}

// received is one request the collector got, its body decompressed.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

// collector is an OTLP/HTTP collector in the test that answers the n-th
// request (from 0) with answer(n, w) and keeps every request.
type collector struct {
	URL  string
	mu   sync.Mutex
	reqs []received
}

func newCollector(t *testing.T, srv *httptest.Server, answer func(n int, w http.ResponseWriter)) *collector {
	t.Helper()
	c := &collector{}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			t.Errorf("collector got %s %s", r.Method, r.URL.Path)
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				t.Errorf("gzip: %v", err)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Errorf("reading the request: %v", err)
		}
		c.mu.Lock()
		n := len(c.reqs)
		c.reqs = append(c.reqs, received{header: r.Header.Clone(), body: b, at: time.Now()})
		c.mu.Unlock()
		answer(n, w)
	})
	if srv.TLS != nil {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

func (c *collector) received() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.reqs...)
}

// answers answers the n-th request with the n-th of as, and the last one after that.
func answers(as ...func(w http.ResponseWriter)) func(int, http.ResponseWriter) {
	return func(n int, w http.ResponseWriter) { as[min(n, len(as)-1)](w) }
}

// status answers code with the header fields kv (name, value, ...) and body.
func status(code int, body string, kv ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// response answers 200 with resp, as a collector does.
func response(resp *collectorpb.ExportTraceServiceResponse) func(http.ResponseWriter) {
	b, _ := proto.Marshal(resp)
	return status(http.StatusOK, string(b), "Content-Type", "application/x-protobuf")
}

// newTestClient is New over vars plus an endpoint, with retries after 1 ms.
func newTestClient(t *testing.T, endpoint string, vars map[string]string) *Client {
	t.Helper()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
	for k, v := range vars {
		env[k] = v
	}
	c, err := New(mapEnv(env), "authproxy/test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.backoff = time.Millisecond
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

// sameSpans fails the test unless body is an ExportTraceServiceRequest of
// testSpans.
func sameSpans(t *testing.T, body []byte) {
	t.Helper()
	var req collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatalf("decoding ExportTraceServiceRequest: %v", err)
	}
	if !proto.Equal(&req, &collectorpb.ExportTraceServiceRequest{ResourceSpans: testSpans()}) {
		t.Errorf("collector got\n%v\nwant the spans sent", &req)
	}
}

func TestUploadTraces(t *testing.T) {
	ok := status(http.StatusOK, "")
	for _, tc := range []struct {
		name   string
		vars   map[string]string
		answer func(int, http.ResponseWriter)
		check  func(t *testing.T, err error, got []received, took time.Duration)
	}{
		{"protobuf request", nil, answers(ok), func(t *testing.T, err error, got []received, _ time.Duration) {
			if err != nil || len(got) != 1 {
				t.Fatalf("err %v, %d requests; want success in one", err, len(got))
			}
			h := got[0].header
			if h.Get("Content-Type") != "application/x-protobuf" || h.Get("User-Agent") != "authproxy/test" || h.Get("Content-Encoding") != "" {
				t.Errorf("headers %v", h)
			}
			sameSpans(t, got[0].body)
		}},
		{"headers", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s%3Dcret,x-tenant=red", "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=blue"}, answers(ok),
			func(t *testing.T, err error, got []received, _ time.Duration) {
				if err != nil || len(got) != 1 {
					t.Fatalf("err %v, %d requests; want success in one", err, len(got))
				}
				if h := got[0].header; h.Get("Api-Key") != "s=cret" || h.Get("X-Tenant") != "blue" || h.Get("Content-Type") != "application/x-protobuf" {
					t.Errorf("headers %v", h)
				}
			}},
		{"headers may set User-Agent", map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "User-Agent=mine"}, answers(ok),
			func(t *testing.T, err error, got []received, _ time.Duration) {
				if err != nil || got[0].header.Get("User-Agent") != "mine" {
					t.Errorf("err %v, User-Agent %q; want mine", err, got[0].header.Get("User-Agent"))
				}
			}},
		{"gzip", map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, answers(ok), func(t *testing.T, err error, got []received, _ time.Duration) {
			if err != nil || len(got) != 1 || got[0].header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("err %v, %d requests; want one gzipped", err, len(got))
			}
			sameSpans(t, got[0].body)
		}},
		{"retried on 503, then sent", nil, answers(status(503, "busy"), status(503, "busy"), ok), func(t *testing.T, err error, got []received, _ time.Duration) {
			if err != nil || len(got) != 3 {
				t.Fatalf("err %v, %d requests; want success in three", err, len(got))
			}
			sameSpans(t, got[2].body)
		}},
		{"retried on 429, 502 and 504", nil, answers(status(429, ""), status(502, ""), status(504, ""), ok), func(t *testing.T, err error, got []received, _ time.Duration) {
			if err != nil || len(got) != 4 {
				t.Fatalf("err %v, %d requests; want success in four", err, len(got))
			}
		}},
		{"Retry-After honoured", nil, answers(status(503, "", "Retry-After", "1"), ok), func(t *testing.T, err error, got []received, _ time.Duration) {
			if err != nil || len(got) != 2 {
				t.Fatalf("err %v, %d requests; want success in two", err, len(got))
			}
			if gap := got[1].at.Sub(got[0].at); gap < time.Second {
				t.Errorf("retried after %s; Retry-After said 1 s", gap)
			}
		}},
		{"Retry-After past the timeout", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "300"}, answers(status(429, "slow down", "Retry-After", "5")),
			func(t *testing.T, err error, got []received, took time.Duration) {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != 429 || len(got) != 1 || took > time.Second { // Retry-After said 5 s
					t.Errorf("err %v, %d requests in %s; want an immediate 429", err, len(got), took)
				}
			}},
		{"retries end with the timeout", map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}, answers(status(503, "busy")),
			func(t *testing.T, err error, got []received, took time.Duration) {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != 503 || se.Body != "busy" || len(got) < 2 || took > 3*time.Second {
					t.Errorf("err %v, %d requests in %s; want 503 after several", err, len(got), took)
				}
			}},
		{"400 is final", nil, answers(status(400, "  bad spans\n"), ok), func(t *testing.T, err error, got []received, _ time.Duration) {
			var se *StatusError
			if !errors.As(err, &se) || *se != (StatusError{StatusCode: 400, Body: "bad spans"}) || len(got) != 1 {
				t.Errorf("err %#v, %d requests; want 400 bad spans after one", err, len(got))
			}
		}},
		{"long error body cut", nil, answers(status(500, strings.Repeat("x", 200<<10))), func(t *testing.T, err error, got []received, _ time.Duration) {
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != 500 || len(se.Body) != maxErrorBody {
				t.Errorf("err %v; want 500 with %d bytes of body", err, maxErrorBody)
			}
		}},
		{"full success response", nil, answers(response(&collectorpb.ExportTraceServiceResponse{})), func(t *testing.T, err error, _ []received, _ time.Duration) {
			if err != nil {
				t.Errorf("err %v", err)
			}
		}},
		{"partial success", nil, answers(response(&collectorpb.ExportTraceServiceResponse{PartialSuccess: &collectorpb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"}})),
			func(t *testing.T, err error, got []received, _ time.Duration) {
				var pe *PartialSuccessError
				if !errors.As(err, &pe) || *pe != (PartialSuccessError{Rejected: 2, Message: "too old"}) || len(got) != 1 {
					t.Errorf("err %v, %d requests; want 2 rejected, too old", err, len(got))
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			col := newCollector(t, httptest.NewUnstartedServer(nil), tc.answer)
			c := newTestClient(t, col.URL, tc.vars)
			start := time.Now()
			err := c.UploadTraces(context.Background(), testSpans())
			tc.check(t, err, col.received(), time.Since(start))
		})
	}
}

// TestUploadTracesNoCollector checks that a collector that cannot be
// reached is retried until the timeout, then reported.
func TestUploadTracesNoCollector(t *testing.T) {
	// A port below the ephemeral range, reserved: none of this package's
	// listeners can be handed it.
	addrs, err := teststack.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, "http://"+addrs[0], map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "200"})
	start := time.Now()
	err = c.UploadTraces(context.Background(), testSpans())
	// It retries until the next try would pass the timeout (when, depends
	// on the backoff's jitter), then reports the refused connection.
	if took := time.Since(start); !errors.Is(err, syscall.ECONNREFUSED) || took > 2*time.Second {
		t.Errorf("err %v after %s; want the refused connection, within the 200 ms timeout", err, took)
	}
}

// TestStopInterrupts checks that Stop ends an export in flight.
func TestStopInterrupts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	col := newCollector(t, httptest.NewUnstartedServer(nil), func(int, http.ResponseWriter) { <-release })
	c := newTestClient(t, col.URL, nil)
	done := make(chan error, 1)
	go func() { done <- c.UploadTraces(context.Background(), testSpans()) }()
	for len(col.received()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("UploadTraces = %v, want it cancelled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("UploadTraces still running after Stop")
	}
	if err := c.UploadTraces(context.Background(), testSpans()); err == nil {
		t.Error("UploadTraces after Stop succeeded")
	}
}

// pki is a CA and the server and client certificates it signed, in files.
type pki struct {
	caFile, serverKeyFile, clientCertFile, clientKeyFile string
	server                                               tls.Certificate
	pool                                                 *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	issue := func(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte) {
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert, der
	}
	marshal := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	caKey, serverKey, clientKey := newKey(), newKey(), newKey()
	ca, caDER := issue(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}, nil, caKey, nil)
	_, serverDER := issue(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "collector"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, serverKey, caKey)
	_, clientDER := issue(&x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "authproxy"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, clientKey, caKey)
	p := pki{
		caFile:         write("ca.pem", "CERTIFICATE", caDER),
		serverKeyFile:  write("server-key.pem", "PRIVATE KEY", marshal(serverKey)),
		clientCertFile: write("client.pem", "CERTIFICATE", clientDER),
		clientKeyFile:  write("client-key.pem", "PRIVATE KEY", marshal(clientKey)),
		server:         tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey},
		pool:           x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	return p
}

// TestUploadTracesTLS sends to a collector that requires a client
// certificate from the test CA; a refused certificate fails at once.
func TestUploadTracesTLS(t *testing.T) {
	p := newPKI(t)
	client := map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": p.clientCertFile, "OTEL_EXPORTER_OTLP_CLIENT_KEY": p.clientKeyFile}
	for _, tc := range []struct {
		name string
		vars map[string]string
		sent bool
	}{
		{"CA and client certificate", map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": p.caFile,
			"OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": p.clientCertFile, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": p.clientKeyFile}, true},
		{"no client certificate", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": p.caFile}, false},
		{"not the collector's CA", client, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(nil)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.RequireAndVerifyClientCert}
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
			var conns atomic.Int32
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			col := newCollector(t, srv, answers(status(http.StatusOK, "")))
			tc.vars["OTEL_EXPORTER_OTLP_TIMEOUT"] = "300"
			c := newTestClient(t, col.URL, tc.vars)
			err := c.UploadTraces(context.Background(), testSpans())
			got := col.received()
			if sent := err == nil && len(got) == 1; sent != tc.sent {
				t.Fatalf("err %v, %d requests; want sent %v", err, len(got), tc.sent)
			}
			if n := conns.Load(); n != 1 {
				t.Errorf("%d connections; a certificate refused is not worth retrying: %v", n, err)
			}
			if tc.sent {
				sameSpans(t, got[0].body)
			}
		})
	}
}
