package teststack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// ReadyTimeout bounds WaitHTTP and WaitRedis.
const ReadyTimeout = 30 * time.Second

// ErrNotReady is returned, wrapped, when a process did not answer within ReadyTimeout.
var ErrNotReady = fmt.Errorf("not ready after %v", ReadyTimeout)

// WaitHTTP polls url until it answers 200, for up to ReadyTimeout, failing at once if the process
// exits or ctx ends.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	return p.poll(ctx, "GET "+url, &last, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			last = err.Error()
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true
		}
		last = fmt.Sprintf("%s: %q", resp.Status, body)
		return false
	})
}

// WaitRedis polls the redis-server at addr until it answers PING, for up to ReadyTimeout, failing
// at once if the process exits or ctx ends.
func (p *Proc) WaitRedis(ctx context.Context, addr string) error {
	last := "no answer"
	return p.poll(ctx, "PING "+addr, &last, func() bool {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			last = err.Error()
			return false
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("PING\r\n")); err != nil {
			last = err.Error()
			return false
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if strings.HasPrefix(line, "+PONG") {
			return true
		}
		last = fmt.Sprintf("%q %v", line, err)
		return false
	})
}

// poll calls ready every 100ms until it reports true.
func (p *Proc) poll(ctx context.Context, what string, last *string, ready func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("teststack: %s exited during start-up: %v (see %s.log)", p.Name, p.err, p.Name)
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("teststack: %s %w: %s: %s", p.Name, ErrNotReady, what, *last)
			}
			return fmt.Errorf("teststack: %s: %w", p.Name, ctx.Err())
		case <-tick.C:
		}
	}
}
