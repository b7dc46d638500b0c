package main

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// upstreamBody is what the sample upstream answers on every path but /whoami: small and
// fixed, so that the proxies' own work dominates.
var upstreamBody = []byte("Hello from the benchmark's upstream. This body is small and the same for every request.\n")

// serveUpstream is the sample upstream. /whoami answers the X-Forwarded-User it received
// (the harness checks with it that requests through authproxy are signed in).
func serveUpstream(addr string) error {
	length := strconv.Itoa(len(upstreamBody))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/whoami" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(r.Header.Get("X-Forwarded-User")))
			return
		}
		hdr := w.Header()
		hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
		hdr["Content-Length"] = []string{length}
		_, _ = w.Write(upstreamBody)
	})
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return srv.ListenAndServe()
}

// serveBare is the baseline: a bare httputil.ReverseProxy with the same upstream transport
// and server settings as authproxy (authproxy/proxy.go upstreamTransport, authproxy/serve.go
// newHTTPServer), and the same Rewrite basics (SetURL, the original Host, SetXForwarded), but
// no authentication, header filtering, metrics or access log.
func serveBare(addr, upstream string) error {
	target, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 30 * time.Second // AUTHPROXY_UPSTREAM_TIMEOUT's default
	transport.MaxIdleConns = 1024
	transport.MaxIdleConnsPerHost = 1024
	transport.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:     transport,
		FlushInterval: -1,
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           proxy,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	return srv.ListenAndServe()
}
