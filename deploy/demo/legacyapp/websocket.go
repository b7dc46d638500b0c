package main

// A minimal WebSocket endpoint (RFC 6455) with the standard library only, so that the demo and the
// end-to-end tests can hold a long-lived upgraded connection open through authproxy. It speaks just
// enough of the protocol for a browser's `new WebSocket(…)`: the opening handshake, unfragmented
// text frames out, and masked text, ping and close frames in. Binary and fragmented messages end
// the connection with a close frame (1003 "unsupported data").

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// websocketGUID is the fixed suffix of the accept-key computation (RFC 6455 section 1.3).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxWebSocketMessage bounds a received message; larger ones end the connection (1009).
const maxWebSocketMessage = 64 << 10

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// websocketAccept is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// handleWebSocket upgrades GET /ws, then sends {"n":1,"user":"<X-Forwarded-User>"}, {"n":2,…}, one a
// second, and echoes every text message it receives. It ends when the peer closes or the
// connection breaks (as when authproxy closes a signed-out session's streams).
func handleWebSocket(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") ||
		r.Header.Get("Sec-WebSocket-Version") != "13" || key == "" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "want a WebSocket (version 13) upgrade", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot upgrade this connection", http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{}) // the server's timeouts were for the HTTP request
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + websocketAccept(key) + "\r\n\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	ws := &wsConn{conn: conn}
	user := r.Header.Get("X-Forwarded-User")
	slog.Info("websocket opened", "user", user)

	done := make(chan struct{})
	go func() {
		defer close(done)
		ws.readLoop(brw.Reader)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
ticks:
	for n := 1; ; n++ {
		msg, _ := json.Marshal(map[string]any{"n": n, "user": user})
		if ws.write(opText, msg) != nil {
			break
		}
		select {
		case <-done:
			break ticks
		case <-tick.C:
		}
	}
	conn.Close()
	<-done
	slog.Info("websocket closed", "user", user)
}

// headerHasToken reports whether a comma-separated header lists token, in any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// wsConn writes frames to a WebSocket connection, one at a time.
type wsConn struct {
	conn net.Conn
	mu   sync.Mutex
}

// write sends one unmasked, unfragmented frame (servers never mask).
func (c *wsConn) write(op byte, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, 126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(append(hdr, payload...))
	return err
}

// closeWith sends a close frame with code.
func (c *wsConn) closeWith(code uint16) {
	c.write(opClose, binary.BigEndian.AppendUint16(nil, code))
}

// readLoop reads client frames until the connection ends: it echoes text, answers ping with
// pong and close with close.
func (c *wsConn) readLoop(r *bufio.Reader) {
	for {
		op, payload, err := readFrame(r)
		switch {
		case errors.Is(err, errFrameTooLarge):
			c.closeWith(1009)
			return
		case errors.Is(err, errUnsupportedFrame):
			c.closeWith(1003)
			return
		case err != nil:
			return
		}
		switch op {
		case opText:
			if c.write(opText, payload) != nil {
				return
			}
		case opPing:
			c.write(opPong, payload)
		case opClose:
			c.write(opClose, payload[:min(len(payload), 2)])
			return
		}
	}
}

var (
	errFrameTooLarge    = errors.New("websocket: frame too large")
	errUnsupportedFrame = errors.New("websocket: unsupported frame")
)

// readFrame reads one client frame, which must be masked, final and not binary, and returns its
// opcode and unmasked payload.
func readFrame(r *bufio.Reader) (op byte, payload []byte, err error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	fin, masked := hdr[0]&0x80 != 0, hdr[1]&0x80 != 0
	op = hdr[0] & 0x0F
	if !fin || !masked || hdr[0]&0x70 != 0 || (op != opText && op != opClose && op != opPing && op != opPong) {
		return 0, nil, errUnsupportedFrame
	}
	n := uint64(hdr[1] & 0x7F)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if n > maxWebSocketMessage {
		return 0, nil, errFrameTooLarge
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	return op, payload, nil
}
