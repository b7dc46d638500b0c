package session

import "strings"

// Scope returns the key under which a sid or a subject (sub) that the IdP
// named idp issued is indexed, revoked and matched: what Revoker's methods,
// Lister.ListSubject and the indexes behind them take and hold. Two IdPs
// may issue the same sid or sub to different users, and a back-channel
// logout from one must never end a session signed in at another; scoped
// values of different IdPs never match.
//
// For the default IdP, idp == "" (as in Session.IdP), Scope returns value
// unchanged, so indexes and revocations recorded before sessions knew their
// IdP, and callers that pass raw values, still match the default IdP's
// sessions. The one exception is a value starting with NUL, which becomes
// "\x00\x00" + value. For any other IdP it returns "\x00" + idp + "\x00" +
// value. So no two different (idp, value) pairs have the same scope, however
// hostile the values: a default-IdP value never starts with NUL followed by
// anything but NUL, and another IdP's always does.
//
// idp is "" for the default IdP, whatever its configured name (passing
// that name instead would miss every default-IdP session), and otherwise
// an IdP's name as configured: non-empty and never containing NUL (names
// are lower-case letters, digits and '-'). Scope of an empty
// value names no session: sessions without a sid are in no sid index (see
// Session.ScopedSID), and stores refuse to revoke it.
func Scope(idp, value string) string {
	if idp == "" {
		if strings.HasPrefix(value, "\x00") {
			return "\x00\x00" + value
		}
		return value
	}
	return "\x00" + idp + "\x00" + value
}

// emptyScope reports whether scoped is Scope(idp, "") for some idp: an
// empty sid or subject, which names no session.
func emptyScope(scoped string) bool {
	if scoped == "" {
		return true
	}
	// "\x00" + idp + "\x00", idp non-empty and without NUL.
	return len(scoped) >= 3 && scoped[0] == 0 && scoped[1] != 0 &&
		strings.IndexByte(scoped[1:], 0) == len(scoped)-2
}

// ScopedSID returns the session's SID as its IdP scopes it,
// Scope(s.IdP, s.SID): the value the sid index and revocations key it by.
// It is "" when the session has no SID.
func (s *Session) ScopedSID() string {
	if s.SID == "" {
		return ""
	}
	return Scope(s.IdP, s.SID)
}

// ScopedSubject returns the session's Subject as its IdP scopes it,
// Scope(s.IdP, s.Subject): the value the subject index and revocations key
// it by. It is "" when the session has no Subject.
func (s *Session) ScopedSubject() string {
	if s.Subject == "" {
		return ""
	}
	return Scope(s.IdP, s.Subject)
}
