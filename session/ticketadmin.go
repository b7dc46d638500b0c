package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// infoRefLen is how many characters of a digest of the backend key an
// Info's Ref shows.
const infoRefLen = 10

// writeInfo records sess's Info for Lister, for as long as the session lives.
func (s *TicketStore) writeInfo(ctx context.Context, id string, sess *Session, now time.Time) error {
	b, err := json.Marshal(infoOf(sess))
	if err != nil {
		return err
	}
	return s.backend.Set(ctx, infoKeyPrefix+id, b, sess.end().Sub(now))
}

// RevokeEmail deletes every session whose Email is email, compared without
// regard to case, signed in at any IdP, and reports how many there were.
// email must not be empty. Sessions saved before the email index existed
// are not in it: end them with RevokeSubject or RevokeAll. On a backend
// failure it returns how many it had deleted so far and the error; calling
// it again is safe.
func (s *TicketStore) RevokeEmail(ctx context.Context, email string) (int, error) {
	e := NormalEmail(email)
	if e == "" {
		return 0, errors.New("session: revoke: empty email")
	}
	return s.revoke(ctx, emailKeyPrefix+hashName(e))
}

// RevokeAll deletes every session in the backend, as every replica sees it,
// and reports how many there were. It walks the backend's keys once (SCAN
// on Redis), so it costs time in proportion to the backend's size but
// nothing on any request; a session signed in while it runs may survive
// it. The indexes are left to expire: deleting them could drop a new
// sign-in's entry. The backend must be a RedisBackend or a MemoryBackend.
func (s *TicketStore) RevokeAll(ctx context.Context) (int, error) {
	pd, ok := s.backend.(prefixDeleter)
	if !ok {
		return 0, errors.New("session: revoke all: the backend cannot list its keys")
	}
	n, err := pd.DeletePrefix(ctx, sessionKeyPrefix)
	if err != nil {
		return n, fmt.Errorf("session: revoke all: %w", err)
	}
	if _, err := pd.DeletePrefix(ctx, infoKeyPrefix); err != nil {
		return n, fmt.Errorf("session: revoke all: %w", err)
	}
	return n, nil
}

// ListSubject returns the live sessions whose ScopedSubject is sub, oldest
// first: sub is Scope(idp, the IdP's sub), as for RevokeSubject, so a raw
// sub lists the default IdP's sessions only. sub must not be empty, nor
// scope an empty subject.
func (s *TicketStore) ListSubject(ctx context.Context, sub string) ([]Info, error) {
	if emptyScope(sub) {
		return nil, errors.New("session: list: empty subject")
	}
	return s.list(ctx, subKeyPrefix+hashName(sub))
}

// ListEmail returns the live sessions whose Email is email, compared
// without regard to case, at any IdP, oldest first. Sessions saved before
// the email index existed are not in it; ListSubject finds them.
func (s *TicketStore) ListEmail(ctx context.Context, email string) ([]Info, error) {
	e := NormalEmail(email)
	if e == "" {
		return nil, errors.New("session: list: empty email")
	}
	return s.list(ctx, emailKeyPrefix+hashName(e))
}

// list returns the Info of the live sessions the index at key names. It
// never opens a session (it has no ticket); a session that has ended by
// its idle timeout is gone from the backend already.
func (s *TicketStore) list(ctx context.Context, key string) ([]Info, error) {
	ids, err := s.backend.SetMembers(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("session: list: %w", err)
	}
	var out []Info
	for _, id := range ids {
		keys := []string{sessionKeyPrefix + id, infoKeyPrefix + id}
		vals, err := getEach(ctx, s.backend, keys)
		if err != nil {
			return nil, fmt.Errorf("session: list: %w", err)
		}
		if vals[0] == nil {
			continue // ended: the index keeps its id a little longer
		}
		var info Info
		if vals[1] != nil {
			if err := json.Unmarshal(vals[1], &info); err != nil {
				return nil, fmt.Errorf("session: list: malformed session info: %w", err)
			}
		}
		info.Ref = hashName("ref\x00" + id)[:infoRefLen]
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Ref, b.Ref)
	})
	return out, nil
}

// getEach reads keys in one round trip when the backend can, else one by
// one; a missing key reads as nil.
func getEach(ctx context.Context, b Backend, keys []string) ([][]byte, error) {
	if mg, ok := b.(multiGetter); ok {
		return mg.GetEach(ctx, keys)
	}
	out := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := b.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return nil, err
		default:
			out[i] = v
		}
	}
	return out, nil
}
