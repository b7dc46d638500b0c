package session

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestAppendCookies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []Cookie
	}{
		{"none", nil, nil},
		{"one line", []string{"a=1; _authproxy=x.y; b=2"}, []Cookie{{"a", "1", "a=1"}, {"_authproxy", "x.y", "_authproxy=x.y"}, {"b", "2", "b=2"}}},
		{"several lines, in order", []string{"a=1", " b = 2 ;;c=", "d"}, []Cookie{{"a", "1", "a=1"}, {"b", " 2", "b = 2"}, {"c", "", "c="}, {"d", "", "d"}}},
		{"quoted value", []string{`q="v w"`}, []Cookie{{"q", "v w", `q="v w"`}}},
		{"a lone quote stays", []string{`q="`}, []Cookie{{"q", `"`, `q="`}}},
		{"no name", []string{"=v; ;x=1"}, []Cookie{{"x", "1", "x=1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf [2]Cookie
			got := AppendCookies(buf[:0], http.Header{"Cookie": tc.lines})
			if !slices.Equal(got, tc.want) {
				t.Errorf("AppendCookies = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzAppendCookies: every cookie net/http reads from a Cookie header,
// AppendCookies reads too, with the same name and value, in the same order
// (it may keep more: the stores compare names exactly, and the codec
// refuses what is not sealed); and each Part is the header's own bytes.
func FuzzAppendCookies(f *testing.F) {
	f.Add("a=1; _authproxy_0=x; _authproxy_1=y")
	f.Add(`q="v"; r=" s "; =x; ;t`)
	f.Add("a=\x00; b=\xff; c=d")
	f.Fuzz(func(t *testing.T, line string) {
		h := http.Header{"Cookie": {line}}
		got := AppendCookies(nil, h)
		for _, c := range got {
			if !strings.Contains(line, c.Part) || c.Name == "" || strings.ContainsAny(c.Name, ";") {
				t.Fatalf("cookie %q: part not from the header, or a bad name", c)
			}
		}
		i := 0
		for _, want := range (&http.Request{Header: h}).Cookies() {
			for i < len(got) && (got[i].Name != want.Name || got[i].Value != want.Value) {
				i++
			}
			if i == len(got) {
				t.Fatalf("net/http reads %s=%q, AppendCookies %q", want.Name, want.Value, got)
			}
			i++
		}
	})
}
