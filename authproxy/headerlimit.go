package authproxy

import (
	"net/http"

	"github.com/authproxy/authproxy/templates"
)

// headerBlockSize is the size of r's request line and header fields as they
// arrive in HTTP/1.1 ("METHOD target PROTO\r\n", then "Name: value\r\n" per
// field, Host included; the final empty line not counted).
func headerBlockSize(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	if r.Host != "" {
		n += len("Host: ") + len(r.Host) + 2
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n
}

// limitHeaderBlock answers 431 to a request whose header block is larger
// than maxHeaderBytes. Go's server lets through up to 4 KiB more than its
// MaxHeaderBytes (read-buffer slack), so the documented limit is enforced
// here, exactly, before anything else looks at the request.
func (s *Server) limitHeaderBlock(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headerBlockSize(r) > maxHeaderBytes {
			setOutcome(r, outcomeBadRequest, "")
			s.answer(w, r, pageAnswer(templates.Page{
				Status:  http.StatusRequestHeaderFieldsTooLarge,
				Title:   "Request headers too large",
				Message: "The request's headers (cookies included) are larger than authproxy accepts (64 KiB).",
				Hint:    "Clearing this site's cookies usually helps.",
			}).with("Connection", "close"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
