package authproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authproxy/authproxy/session"
)

// Server limits that are not worth a variable.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	// maxHeaderBytes bounds a request's header block: enough for a session
	// split over five cookies and an app's own cookies, little for a flood.
	maxHeaderBytes = 64 << 10
)

// Serve listens on AUTHPROXY_LISTEN (with TLS when AUTHPROXY_TLS_CERT_FILE
// is set) and, when AUTHPROXY_METRICS_LISTEN is set, serves /metrics there
// too. When ctx ends it stops accepting, lets in-flight requests finish for
// up to AUTHPROXY_SHUTDOWN_GRACE, then closes what is left. ready, when not nil, is
// called with the bound addresses once both listeners are open.
func (s *Server) Serve(ctx context.Context, ready func(addr string)) error {
	cfg, log := s.cfg, s.log
	servers := []*http.Server{newHTTPServer(cfg.Listen, s, log)}
	if cfg.MetricsListen != "" {
		servers = append(servers, newHTTPServer(cfg.MetricsListen, s.MetricsHandler(), log))
	}
	var tlsCfg *tls.Config
	if cfg.TLSCertFile != "" {
		kp, err := newKeyPairReloader(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return err
		}
		kp.log, kp.reloads = log, s.metrics.tlsReloads
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get}
	}

	errc := make(chan error, len(servers))
	for i, srv := range servers {
		ln, err := net.Listen("tcp", srv.Addr)
		if err != nil {
			return fmt.Errorf("authproxy: listening on %s: %w", srv.Addr, err)
		}
		if i == 0 && tlsCfg != nil {
			ln = tls.NewListener(ln, tlsCfg)
		}
		if ready != nil {
			ready(ln.Addr().String())
		}
		go func() { errc <- srv.Serve(ln) }()
	}

	select {
	case err := <-errc:
		return fmt.Errorf("authproxy: serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	s.streams.closeWhere(func(*session.Session) bool { return true })
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(shutCtx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("authproxy: shutdown after %s grace: %w", cfg.ShutdownGrace, err)
	}
	return nil
}

func newHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// keyPairReloader serves a certificate and key from files, loading them
// again when either file changes (checked at most every few seconds), so
// that renewed certificates are used without a restart. A changed pair that
// does not load keeps the old one serving; every such failure is counted
// and logged (at most once a minute while it keeps failing).
type keyPairReloader struct {
	certFile, keyFile string
	log               *slog.Logger           // nil: failures are not logged
	reloads           *prometheus.CounterVec // nil: not counted
	lastLogged        time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	modTime  time.Time
	checked  time.Time
	checkGap time.Duration
}

func newKeyPairReloader(certFile, keyFile string) (*keyPairReloader, error) {
	kp := &keyPairReloader{certFile: certFile, keyFile: keyFile, checkGap: 5 * time.Second}
	if err := kp.load(); err != nil {
		return nil, err
	}
	return kp, nil
}

func (kp *keyPairReloader) load() error {
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("authproxy: AUTHPROXY_TLS_CERT_FILE/AUTHPROXY_TLS_KEY_FILE: %w", err)
	}
	kp.cert, kp.modTime = &cert, kp.latestModTime()
	return nil
}

func (kp *keyPairReloader) latestModTime() time.Time {
	var latest time.Time
	for _, f := range []string{kp.certFile, kp.keyFile} {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest
}

func (kp *keyPairReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if now := time.Now(); now.Sub(kp.checked) >= kp.checkGap {
		kp.checked = now
		if !kp.latestModTime().Equal(kp.modTime) {
			// A half-written pair fails to load: keep serving the old one.
			kp.reloaded(now, kp.load())
		}
	}
	return kp.cert, nil
}

// reloaded records the result of loading a changed pair.
func (kp *keyPairReloader) reloaded(now time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	if kp.reloads != nil {
		kp.reloads.WithLabelValues(result).Inc()
	}
	switch {
	case kp.log == nil:
	case err == nil:
		kp.log.Info("TLS certificate reloaded", "cert_file", kp.certFile)
		kp.lastLogged = time.Time{}
	case now.Sub(kp.lastLogged) >= time.Minute:
		kp.log.Error("TLS certificate changed but does not load; still serving the previous one", "err", err)
		kp.lastLogged = now
	}
}
