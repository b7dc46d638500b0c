package teststack

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The ports FreePorts hands out lie below the kernel's ephemeral range, so that no socket the
// kernel numbers itself (a client connection's local port, a listener on port 0: httptest, the
// unit tests of other packages running beside these, Chromium's DevTools) can take one between
// the moment it is chosen and the moment the component binds it. Each port is also reserved,
// across the test processes of one machine, by a file in reserveDir for reservationTTL, so that
// neither two test binaries running side by side (go test runs packages in parallel) nor two
// calls in one process hand out the same port.
const (
	// portsLow is the lowest port handed out.
	portsLow = 10000
	// reservationTTL is how long a reservation file holds its port: from being chosen until the
	// component binds it takes seconds, and a component restarted on its port mid-test is back
	// within minutes; one e2e run reserves ~550 ports, so the range outlasts any rate of runs.
	reservationTTL = 20 * time.Minute
)

// reserveDir holds one file per reserved port, named by the port.
var reserveDir = filepath.Join(os.TempDir(), "authproxy-teststack-ports")

// FreePorts returns n distinct loopback addresses (127.0.0.1:port) that were free a moment ago,
// below the kernel's ephemeral port range and reserved for this process (see above): two calls,
// in one process or in two, do not return the same port within reservationTTL.
func FreePorts(n int) ([]string, error) {
	low, high := portsLow, ephemeralLow()-1
	if high-low < 1000 {
		return nil, fmt.Errorf("teststack: free port: the ephemeral range starts at %d, leaving too few ports below it", high+1)
	}
	if err := os.MkdirAll(reserveDir, 0o777); err != nil {
		return nil, fmt.Errorf("teststack: free port: %w", err)
	}
	next := low + rand.IntN(high-low+1) // spread the callers over the range
	addrs := make([]string, 0, n)
	for tried := 0; len(addrs) < n; tried++ {
		if tried > high-low {
			return nil, fmt.Errorf("teststack: free port: none left between %d and %d", low, high)
		}
		port := next
		if next++; next > high {
			next = low
		}
		if !reserve(port) {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // something else has it: the reservation stays, so nobody tries it soon
		}
		defer l.Close()
		addrs = append(addrs, addr)
	}
	return addrs, nil
}

// reserve claims port for this process by creating its reservation file, taking over one older
// than reservationTTL; it reports whether the port is this process's to use.
func reserve(port int) bool {
	path := filepath.Join(reserveDir, strconv.Itoa(port))
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return true
		}
		if !errors.Is(err, fs.ErrExist) {
			return false
		}
		fi, err := os.Stat(path)
		if err != nil || time.Since(fi.ModTime()) < reservationTTL {
			return false
		}
		os.Remove(path) // stale: a run long over; race another process for it once
	}
	return false
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default if it cannot
// be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				return v
			}
		}
	}
	return 32768
}
