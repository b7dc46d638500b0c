package authproxy

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// accessLine is what one access-log line says about a request.
type accessLine struct {
	time     time.Time
	warn     bool // level WARN (a 5xx), else INFO
	id       string
	method   string
	path     string
	status   int
	bytes    int64
	duration time.Duration
	outcome  string
	user     string
	idp      string // left out when empty
}

// appendJSON appends the line as slog's JSONHandler writes the same record
// (a test holds the two byte for byte), without slog's allocations: the
// record's attributes beyond five, and json.Marshal for the float.
func (a *accessLine) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = a.time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	if a.warn {
		b = append(b, "WARN"...)
	} else {
		b = append(b, "INFO"...)
	}
	b = append(b, `","msg":"request","request_id":`...)
	b = appendJSONString(b, a.id)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, a.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, a.path)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, a.bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, durationMillis(a.duration), 'f', -1, 64)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, a.outcome)
	b = append(b, `,"user":`...)
	b = appendJSONString(b, a.user)
	if a.idp != "" {
		b = append(b, `,"idp":`...)
		b = appendJSONString(b, a.idp)
	}
	return append(b, "}\n"...)
}

// durationMillis is d in milliseconds with microsecond resolution, as the
// access log reports it.
func durationMillis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// appendJSONString appends s as a JSON string the way log/slog does:
// quotes, backslashes and control characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped, HTML characters left alone.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
