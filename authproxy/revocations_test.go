package authproxy

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
		b, err := json.Marshal(q.notice(q.Sub, 2, true))
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

// TestStreamRecheckSeesRevocationElsewhere checks the fallback for a replica
// that missed a revocation's announcement: its open stream's session is
// revoked by another process (`authproxy sessions revoke`, with its own
// store over the same backend, built as the command builds it), and the
// stream's periodic re-check closes it.
func TestStreamRecheckSeesRevocationElsewhere(t *testing.T) {
	backend := session.NewMemoryBackend(nil)
	e := newTestEnv(t, withBackend(backend))
	e.srv.streams.recheck = 10 * time.Millisecond
	sess := testSession()
	rec := httptest.NewRecorder()
	if err := e.srv.current(context.Background()).store.Save(rec, httptest.NewRequest(http.MethodGet, "/", nil), sess); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/events", nil)
	for _, c := range rec.Result().Cookies() {
		r.AddCookie(c)
	}
	ctx, done := e.srv.streams.track(context.Background(), sess)
	defer done()
	go e.srv.recheckStream(ctx, r, sess, done)

	// Another user's revocation leaves the stream open.
	cli, _, err := newStore(e.cfg, backend, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := cli.(session.AdminRevoker).RevokeEmail(context.Background(), "eve@example.com"); err != nil || n != 0 {
		t.Fatalf("RevokeEmail(eve) = %d, %v", n, err)
	}
	for range 3 {
		// Three re-checks' worth, each a chance to close it wrongly.
		select {
		case <-ctx.Done():
			t.Fatal("the stream closed after another user's revocation")
		case <-time.After(3 * e.srv.streams.recheck):
		}
	}

	if n, err := cli.(session.AdminRevoker).RevokeEmail(context.Background(), "ADA@example.com"); err != nil || n != 1 {
		t.Fatalf("RevokeEmail(ada) = %d, %v; want 1", n, err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stream is still open after its session was revoked by another process")
	}
	if !strings.Contains(e.logs.String(), "closing a stream whose session ended elsewhere") {
		t.Error("no log line for the closed stream")
	}
}
