package authproxy

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authproxy/authproxy/session"
)

// TestRevocationHeard checks what a replica does with a revocation that
// `authproxy sessions revoke` announced: it closes the open streams of the
// revoked sessions at once (never a bearer token's, which is no session),
// counts it by how, and ignores a malformed announcement.
func TestRevocationHeard(t *testing.T) {
	e := newTestEnv(t)
	now := time.Now()
	mk := func(id, sub, email string) *session.Session {
		return &session.Session{ID: id, Subject: sub, Email: email, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	ada, adaAgain, adaBearer := mk("a1", "sub-ada", "Ada@Example.com"), mk("a2", "sub-ada", "ada@example.com"), mk("bearer", "sub-ada", "ada@example.com")
	bob, carol := mk("b1", "sub-bob", "bob@example.com"), mk("c1", "sub-carol", "")
	open := map[*session.Session]context.Context{}
	for _, sess := range []*session.Session{ada, adaAgain, adaBearer, bob, carol} {
		ctx, done := e.srv.streams.track(context.Background(), sess)
		t.Cleanup(done)
		open[sess] = ctx
	}
	closed := func() []string {
		var ids []string
		for sess, ctx := range open {
			if ctx.Err() != nil {
				ids = append(ids, sess.ID+"/"+sess.Subject)
			}
		}
		return ids
	}
	announce := func(args ...string) []byte {
		q, err := ParseSessionsArgs(append([]string{"revoke"}, args...))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(q.notice(2, true))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	steps := []struct {
		name       string
		msg        []byte
		how        string // the counter that grows; "" for none
		wantClosed int    // streams closed so far
	}{
		{"malformed", []byte("not json"), "", 0},
		{"unknown how", []byte(`{"by":"sid","name":"x"}`), "", 0},
		{"sub without a name", []byte(`{"by":"sub"}`), "", 0},
		{"another user's email", announce("--email", "eve@example.com"), "email", 0},
		{"ada's email, in another case", announce("--email", "ADA@example.com"), "email", 2},
		{"bob's sub", announce("--sub", "sub-bob"), "sub", 3},
		{"all", announce("--all"), "all", 4},
	}
	want := map[string]float64{}
	for _, s := range steps {
		e.srv.revocationHeard(s.msg)
		if s.how != "" {
			want[s.how]++
		}
		for _, how := range []string{"sub", "email", "all"} {
			if got := counterValue(t, e.srv.metrics.revocations.WithLabelValues(how)); got != want[how] {
				t.Errorf("%s: authproxy_session_revocations_total{how=%q} = %v, want %v", s.name, how, got, want[how])
			}
		}
		if got := closed(); len(got) != s.wantClosed {
			t.Errorf("%s: closed streams %v; want %d", s.name, got, s.wantClosed)
		}
	}
	if open[adaBearer].Err() != nil {
		t.Error("a bearer token's stream was closed by a session revocation")
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `"event":"revoke_heard"`); n != 4 {
		t.Errorf("%d revoke_heard log lines, want 4:\n%s", n, logs)
	}
	if n := strings.Count(logs, "ignoring a malformed revocation announcement"); n != 3 {
		t.Errorf("%d malformed-announcement log lines, want 3", n)
	}
	if strings.Contains(logs, "ada@example.com") || strings.Contains(logs, "sub-bob") {
		t.Errorf("a replica's log names the revoked user; the CLI's audit line does:\n%s", logs)
	}
}
