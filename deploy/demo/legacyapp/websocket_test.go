package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestWebSocketAccept(t *testing.T) {
	// The example of RFC 6455 section 1.3.
	if got, want := websocketAccept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("websocketAccept = %q; want %q", got, want)
	}
}

// dialWebSocket opens /ws on srv by hand and returns the connection after the handshake.
func dialWebSocket(t *testing.T, srv *httptest.Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-User: u1\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return conn, br
}

// clientFrame is a masked, final frame as a browser sends it.
func clientFrame(op byte, payload string) []byte {
	mask := [4]byte{1, 2, 3, 4}
	f := []byte{0x80 | op, 0x80 | byte(len(payload))}
	f = append(f, mask[:]...)
	for i := range len(payload) {
		f = append(f, payload[i]^mask[i%4])
	}
	return f
}

// serverFrame reads one unmasked frame from the server.
func serverFrame(t *testing.T, br *bufio.Reader) (op byte, payload string) {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[1]&0x80 != 0 || hdr[1]&0x7F > 125 {
		t.Fatalf("frame header %x: want an unmasked short frame", hdr)
	}
	p := make([]byte, hdr[1]&0x7F)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatal(err)
	}
	return hdr[0] & 0x0F, string(p)
}

func TestWebSocket(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(handleWebSocket))
	defer srv.Close()
	conn, br := dialWebSocket(t, srv)

	op, msg := serverFrame(t, br)
	var tick struct {
		N    int    `json:"n"`
		User string `json:"user"`
	}
	if op != opText || json.Unmarshal([]byte(msg), &tick) != nil || tick.N != 1 || tick.User != "u1" {
		t.Fatalf("first frame: opcode %d %q; want the text tick {n:1, user:u1}", op, msg)
	}
	conn.Write(clientFrame(opText, "hello"))
	// The echo comes before the next tick, a second later.
	if op, msg := serverFrame(t, br); op != opText || msg != "hello" {
		t.Fatalf("after sending hello: opcode %d %q; want the echo", op, msg)
	}
	if op, msg := serverFrame(t, br); op != opText || !strings.Contains(msg, `"n":2`) {
		t.Fatalf("second tick: opcode %d %q", op, msg)
	}
	conn.Write(clientFrame(opClose, string(binary.BigEndian.AppendUint16(nil, 1000))))
	for {
		op, msg := serverFrame(t, br)
		if op == opClose {
			if msg != "\x03\xe8" {
				t.Errorf("close frame payload %q; want code 1000 back", msg)
			}
			break
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the close frame: %v; want the server to end the connection", err)
	}
}

func TestWebSocketRefusesPlainGET(t *testing.T) {
	rec := httptest.NewRecorder()
	handleWebSocket(rec, httptest.NewRequest(http.MethodGet, "/ws", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("GET /ws without an upgrade: %d; want 400", rec.Code)
	}
}

func TestWebSocketRefusesBinary(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(handleWebSocket))
	defer srv.Close()
	conn, br := dialWebSocket(t, srv)
	serverFrame(t, br) // the first tick
	conn.Write(clientFrame(0x2, "bin"))
	if op, msg := serverFrame(t, br); op != opClose || msg != "\x03\xeb" {
		t.Errorf("after a binary frame: opcode %d %q; want close 1003", op, msg)
	}
}
