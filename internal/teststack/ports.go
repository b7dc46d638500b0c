package teststack

import (
	"fmt"
	"net"
)

// FreePorts returns n distinct loopback addresses (127.0.0.1:port) that were free a moment ago.
// Each is held until all are chosen, so the n addresses differ.
func FreePorts(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("teststack: free port: %w", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
