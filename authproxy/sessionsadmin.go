package authproxy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/authproxy/authproxy/session"
)

// SessionsUsage is the usage of `authproxy sessions`.
const SessionsUsage = "usage: authproxy sessions revoke (--sub S [--idp NAME] | --email E | --all)\n" +
	"       authproxy sessions list (--sub S [--idp NAME] | --email E)"

// ErrSessionsUsage is what ParseSessionsArgs returns, wrapped, for arguments
// that are not SessionsUsage; the command should exit 2.
var ErrSessionsUsage = errors.New("authproxy sessions: bad usage")

// ErrSessionsOutOfReach is what RunSessions returns, wrapped, when the
// configured store keeps sessions where no other process can reach them.
var ErrSessionsOutOfReach = errors.New("authproxy sessions: out of reach")

// SessionsRequest is one `authproxy sessions` command: list (Revoke false)
// or revoke the sessions of one subject (Sub), of one email address
// (Email), or every session (All, revoke only). Exactly one of Sub, Email
// and All is set. A subject is one IdP's: IdP names it ("" the default
// IdP).
type SessionsRequest struct {
	Revoke bool
	Sub    string
	IdP    string
	Email  string
	All    bool
}

// by names what the request selects sessions by: sub, email or all.
func (q SessionsRequest) by() string {
	switch {
	case q.All:
		return "all"
	case q.Email != "":
		return "email"
	}
	return "sub"
}

// whose describes the sessions the request selects, for the operator.
func (q SessionsRequest) whose() string {
	switch {
	case q.All:
		return "every user"
	case q.Email != "":
		return "email " + q.Email
	}
	if q.IdP != "" {
		return "sub " + q.Sub + " of IdP " + q.IdP
	}
	return "sub " + q.Sub
}

// ParseSessionsArgs parses the arguments after `authproxy sessions`. An
// error wraps ErrSessionsUsage and says what is wrong.
func ParseSessionsArgs(args []string) (SessionsRequest, error) {
	bad := func(format string, a ...any) (SessionsRequest, error) {
		return SessionsRequest{}, fmt.Errorf("%w: %s", ErrSessionsUsage, fmt.Sprintf(format, a...))
	}
	if len(args) == 0 {
		return bad("want revoke or list")
	}
	var q SessionsRequest
	switch args[0] {
	case "revoke":
		q.Revoke = true
	case "list":
	default:
		return bad("unknown action %q; want revoke or list", args[0])
	}
	fs := flag.NewFlagSet("authproxy sessions "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&q.Sub, "sub", "", "the user's subject (the ID token's sub)")
	fs.StringVar(&q.IdP, "idp", "", "with --sub: the IdP the subject is of (default: the default IdP)")
	fs.StringVar(&q.Email, "email", "", "the user's email address (any case)")
	if q.Revoke {
		fs.BoolVar(&q.All, "all", false, "every session of every user")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return bad("%v", err)
	}
	if fs.NArg() != 0 {
		return bad("unexpected argument %q", fs.Arg(0))
	}
	q.Email = session.NormalEmail(q.Email)
	set := 0
	for _, on := range []bool{q.Sub != "", q.Email != "", q.All} {
		if on {
			set++
		}
	}
	if set != 1 {
		if q.Revoke {
			return bad("want exactly one of --sub, --email and --all, each with a value")
		}
		return bad("want exactly one of --sub and --email, with a value")
	}
	if q.IdP != "" && q.Sub == "" {
		return bad("--idp goes with --sub: an email or --all covers every IdP")
	}
	return q, nil
}

// RunSessions lists or revokes sessions as q says, in the store cfg
// describes, built as the server builds it: from outside every serving
// process, on every replica at once. It writes the result for the operator
// to out, and the audit line of a revocation (event "revoke") to log. After
// a revocation it announces it to the running replicas (over Redis), which
// count it (authproxy_session_revocations_total), log it and close the
// revoked sessions' open streams at once; a replica that misses the
// announcement closes them at its next check of the store.
//
// With the cookie store and no Redis, sessions live only in browsers and
// each replica's memory: it returns an error wrapping ErrSessionsOutOfReach.
// With the cookie store and Redis it revokes through the shared revocation
// list (without a count) but cannot list.
func RunSessions(ctx context.Context, cfg *Config, q SessionsRequest, out io.Writer, log *slog.Logger) error {
	action := "listed"
	if q.Revoke {
		action = "revoked"
	}
	sub, err := cfg.scopedSubject(q)
	if err != nil {
		return err
	}
	if !cfg.usesRedis() {
		return fmt.Errorf("%w: sessions cannot be %s from outside the process that serves them: "+
			"with AUTHPROXY_SESSION_STORE=cookie and no AUTHPROXY_REDIS_URL each session lives only in its browser's cookie "+
			"and each replica keeps its sign-outs in its own memory; set AUTHPROXY_REDIS_URL (a revocation list shared by every replica) "+
			"or AUTHPROXY_SESSION_STORE=redis", ErrSessionsOutOfReach, action)
	}
	if !q.Revoke && cfg.SessionStore != "redis" {
		return fmt.Errorf("%w: sessions cannot be listed with AUTHPROXY_SESSION_STORE=cookie: each lives only in its browser's cookie; "+
			"they can be revoked (authproxy sessions revoke); to list them use AUTHPROXY_SESSION_STORE=redis", ErrSessionsOutOfReach)
	}
	backend, err := newBackend(cfg, nil)
	if err != nil {
		return err
	}
	defer backend.Close()
	store, _, err := newStore(cfg, backend, nil)
	if err != nil {
		return err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := backend.Ping(pingCtx); err != nil {
		return fmt.Errorf("authproxy sessions: cannot reach Redis (AUTHPROXY_REDIS_URL): %w", err)
	}
	if !q.Revoke {
		l, ok := store.(session.Lister)
		if !ok {
			return fmt.Errorf("%w: the %s session store cannot list sessions", ErrSessionsOutOfReach, cfg.SessionStore)
		}
		return listSessions(ctx, cfg, l, q, out)
	}
	rv, ok := store.(session.AdminRevoker)
	if !ok {
		return fmt.Errorf("%w: the %s session store cannot revoke sessions from outside the process", ErrSessionsOutOfReach, cfg.SessionStore)
	}
	started := time.Now()
	var n int
	switch {
	case q.All:
		n, err = rv.RevokeAll(ctx)
	case q.Email != "":
		n, err = rv.RevokeEmail(ctx, q.Email)
	default:
		n, err = rv.RevokeSubject(ctx, sub)
	}
	if err != nil {
		return fmt.Errorf("authproxy sessions: revoking the sessions of %s (%d revoked before the failure; run it again): %w", q.whose(), n, err)
	}
	_, counted := store.(session.Lister)
	attrs := []any{"event", "revoke", "by", q.by()}
	if q.Sub != "" {
		attrs = append(attrs, "sub", q.Sub, "idp", cmp.Or(q.IdP, cfg.Name))
	}
	if q.Email != "" {
		attrs = append(attrs, "email", q.Email)
	}
	if counted {
		attrs = append(attrs, "count", n)
		fmt.Fprintf(out, "revoked %d %s of %s\n", n, plural(n, "session", "sessions"), q.whose())
	} else {
		attrs = append(attrs, "created_until", started.UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(out, "revoked every session of %s signed in until %s (the cookie store cannot count them)\n",
			q.whose(), started.UTC().Format(time.RFC3339))
	}
	attrs = append(attrs, "store", cfg.SessionStore, "os_user", osUser())
	log.Info("sessions revoked", attrs...)

	if rb, ok := backend.(*session.RedisBackend); ok {
		heard, err := announceRevocation(ctx, rb, q.notice(sub, n, counted))
		switch {
		case err != nil:
			log.Warn("announcing the revocation to the running replicas failed; their open streams of these sessions close at their next check", "err", err)
		case heard == 0:
			fmt.Fprintln(out, "no running authproxy heard of it; open streams of these sessions close at their next check")
		default:
			fmt.Fprintf(out, "%d running authproxy %s heard of it and closed the open streams of these sessions\n", heard, plural(heard, "process", "processes"))
		}
	}
	return nil
}

// listSessions writes the live sessions q selects as a table.
func listSessions(ctx context.Context, cfg *Config, l session.Lister, q SessionsRequest, out io.Writer) error {
	var infos []session.Info
	var err error
	if q.Email != "" {
		infos, err = l.ListEmail(ctx, q.Email)
	} else {
		var sub string
		if sub, err = cfg.scopedSubject(q); err == nil {
			infos, err = l.ListSubject(ctx, sub)
		}
	}
	if err != nil {
		return fmt.Errorf("authproxy sessions: listing the sessions of %s: %w", q.whose(), err)
	}
	fmt.Fprintf(out, "%d live %s of %s\n", len(infos), plural(len(infos), "session", "sessions"), q.whose())
	if len(infos) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tSIGNED IN\tLAST SEEN\tEXPIRES\tIDP")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.Ref, utcTime(i.CreatedAt), utcTime(i.LastSeen), utcTime(i.Ends()), cfg.describeIdP(i.IdP))
	}
	return tw.Flush()
}

// describeIdP names a session's IdP (its session name: "" for the
// default) for a listing: the issuer (or the kind, for github) with one
// IdP; with several, the name and the issuer.
func (c *Config) describeIdP(name string) string {
	idp := &c.IdPConfig
	if name != "" {
		if idp = c.idp(name); idp == nil {
			return name + " (not configured)"
		}
	}
	what := idp.Provider
	if idp.Issuer != nil {
		what = idp.Issuer.String()
	}
	if c.idpNames == nil {
		return what
	}
	return idp.Name + " " + what
}

// utcTime formats t for a table: RFC 3339 in UTC, "-" when unknown.
func utcTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// osUser names who ran the command, for the audit line.
func osUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// scopedSubject returns q's subject as the store keys it
// (session.Scope, with the IdP q names), or an error for an IdP that is not
// configured.
func (c *Config) scopedSubject(q SessionsRequest) (string, error) {
	if q.IdP == "" || q.IdP == c.Name {
		return session.Scope("", q.Sub), nil
	}
	if c.idp(q.IdP) == nil {
		return "", fmt.Errorf("%w: --idp %q is not a configured IdP (the default is %q; AUTHPROXY_IDPS names the others)", ErrSessionsUsage, q.IdP, c.Name)
	}
	return session.Scope(q.IdP, q.Sub), nil
}

// announceRevocation tells the running replicas of a revocation and reports
// how many heard it.
func announceRevocation(ctx context.Context, rb *session.RedisBackend, notice revocationNotice) (int, error) {
	b, err := json.Marshal(notice)
	if err != nil {
		return 0, err
	}
	return rb.Announce(ctx, revocationChannel, b)
}

// notice is the announcement of q's revocation, of the scoped subject sub
// when by subject, which ended n sessions when counted.
func (q SessionsRequest) notice(sub string, n int, counted bool) revocationNotice {
	notice := revocationNotice{By: q.by(), Count: n, Counted: counted}
	switch {
	case q.Email != "":
		notice.Name = nameDigest(session.NormalEmail(q.Email))
	case q.Sub != "":
		notice.Name = nameDigest(sub)
	}
	return notice
}
