package authproxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIsNavigation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string][]string
		want    bool
	}{
		{"browser page load", "GET", map[string][]string{"Accept": {acceptHTML}, "Sec-Fetch-Mode": {"navigate"}}, true},
		{"page load without fetch metadata", "GET", map[string][]string{"Accept": {acceptHTML}}, true},
		{"HEAD", "HEAD", map[string][]string{"Accept": {"text/html"}}, true},
		{"text/html with parameters", "GET", map[string][]string{"Accept": {"text/html;q=0.9;charset=utf-8"}}, true},
		{"text/html in upper case", "GET", map[string][]string{"Accept": {"TEXT/HTML"}}, true},
		{"text/html in a second Accept line", "GET", map[string][]string{"Accept": {"application/json", "text/html"}}, true},
		{"spaces around text/html", "GET", map[string][]string{"Accept": {"application/json ,  text/html ; q=1"}}, true},

		{"POST", "POST", map[string][]string{"Accept": {acceptHTML}}, false},
		{"PUT", "PUT", map[string][]string{"Accept": {acceptHTML}}, false},
		{"OPTIONS", "OPTIONS", map[string][]string{"Accept": {acceptHTML}}, false},
		{"lower-case method", "get", map[string][]string{"Accept": {acceptHTML}}, false},
		{"fetch, cors", "GET", map[string][]string{"Accept": {acceptHTML}, "Sec-Fetch-Mode": {"cors"}}, false},
		{"fetch, no-cors", "GET", map[string][]string{"Accept": {acceptHTML}, "Sec-Fetch-Mode": {"no-cors"}}, false},
		{"fetch, same-origin", "GET", map[string][]string{"Accept": {acceptHTML}, "Sec-Fetch-Mode": {"same-origin"}}, false},
		{"websocket", "GET", map[string][]string{"Accept": {acceptHTML}, "Sec-Fetch-Mode": {"websocket"}}, false},
		{"XMLHttpRequest", "GET", map[string][]string{"Accept": {acceptHTML}, "X-Requested-With": {"XMLHttpRequest"}}, false},
		{"XMLHttpRequest, lower-case name", "GET", map[string][]string{"Accept": {acceptHTML}, "x-requested-with": {"XMLHttpRequest"}}, false},
		{"JSON", "GET", map[string][]string{"Accept": {"application/json"}}, false},
		{"anything", "GET", map[string][]string{"Accept": {"*/*"}}, false},
		{"no Accept", "GET", nil, false},
		{"text/html as a prefix only", "GET", map[string][]string{"Accept": {"text/htmlx"}}, false},
		{"application/xhtml+xml only", "GET", map[string][]string{"Accept": {"application/xhtml+xml"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/app", nil)
			r.Method = tc.method
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := isNavigation(r); got != tc.want {
				t.Errorf("isNavigation = %t, want %t", got, tc.want)
			}
		})
	}
}
