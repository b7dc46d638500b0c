package authproxy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/authproxy/authproxy/session"
)

// revocationChannel is the Redis channel (under the key prefix) on which
// `authproxy sessions revoke` announces a revocation to the replicas.
const revocationChannel = "revocations"

// revocationNotice is the announcement of a revocation that another process
// made in the store. It names the user by a digest only: no identifier
// crosses Redis in clear.
type revocationNotice struct {
	By      string `json:"by"`             // sub, email or all
	Name    string `json:"name,omitempty"` // nameDigest of the sub or normalized email
	Count   int    `json:"count"`          // sessions ended, when Counted
	Counted bool   `json:"counted"`
}

// nameDigest is how a notice names a subject or a (normalized) email.
func nameDigest(name string) string {
	sum := sha256.Sum256([]byte("authproxy revocation\x00" + name))
	return hex.EncodeToString(sum[:])
}

// matches reports whether the notice's revocation ends sess.
func (n *revocationNotice) matches(sess *session.Session) bool {
	switch n.By {
	case "all":
		return true
	case "sub":
		return sess.Subject != "" && nameDigest(sess.ScopedSubject()) == n.Name
	case "email":
		e := session.NormalEmail(sess.Email)
		return e != "" && nameDigest(e) == n.Name
	}
	return false
}

// watchRevocations hears the revocations announced on Redis until ctx ends.
func (s *Server) watchRevocations(ctx context.Context, rb *session.RedisBackend) {
	failures := newLogThrottle(s.log, "listening for revocations failed; revoked sessions' streams close at their next check", storeLogEvery)
	stop := rb.Subscribe(revocationChannel, revocationListener{s: s, failures: failures})
	<-ctx.Done()
	stop()
}

// revocationListener is the Server's side of its subscription to
// revocation announcements.
type revocationListener struct {
	s        *Server
	failures *logThrottle
}

// Subscribed implements session.Subscriber.
func (l revocationListener) Subscribed() {}

// Lost implements session.Subscriber: announcements may be missed until
// Subscribed; the streams' periodic check still ends revoked ones.
func (l revocationListener) Lost(err error) { l.failures.failed(err) }

// Receive implements session.Subscriber.
func (l revocationListener) Receive(msg []byte) { l.s.revocationHeard(msg) }

// revocationHeard handles one announcement: the store already holds the
// revocation; this process counts it, forgets cached sessions, closes the
// revoked sessions' open streams at once and logs it.
func (s *Server) revocationHeard(msg []byte) {
	var n revocationNotice
	if err := json.Unmarshal(msg, &n); err != nil || (n.By != "all" && n.By != "sub" && n.By != "email") || (n.By != "all" && n.Name == "") {
		s.log.Warn("ignoring a malformed revocation announcement", "err", errors.Join(err, errors.New("want by sub, email or all, with a name")))
		return
	}
	if s.cache != nil {
		s.cache.Reset() // this replica's cached sessions may include the revoked
	}
	closed := s.streams.closeWhere(func(o *session.Session) bool { return o.ID != "bearer" && n.matches(o) })
	s.metrics.revocations.WithLabelValues(n.By).Inc()
	attrs := []any{"event", "revoke_heard", "by", n.By, "streams_closed", closed}
	if n.Counted {
		attrs = append(attrs, "count", n.Count)
	}
	s.log.Info("sessions revoked by an operator", attrs...)
}
