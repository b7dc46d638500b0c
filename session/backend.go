package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// ErrBackendMiss is returned by Backend.Get when the key is absent or has
// expired. It wraps ErrNotFound, so errors.Is(err, ErrNotFound) holds too.
var ErrBackendMiss = fmt.Errorf("session: backend: no such key: %w", ErrNotFound)

// Backend keeps server-side session data under string keys, each with a
// time to live: the ticket store's encrypted sessions and their indexes, a
// RevocationList's marks, and short locks of the caller's own. Every key is
// either a value (Get, Set, SetNX, Replace) or a set of strings (AddToSet,
// RemoveFromSet, SetMembers); using one kind's methods on the other kind's
// key is an error.
//
// No key lives forever: every ttl must be positive, or the call fails.
// Implementations must be safe for concurrent use, and must make every
// failure of the backend itself an error that does not wrap ErrNotFound, so
// that callers can tell "no such session" from "the backend is down".
type Backend interface {
	// Get returns the value at key, or an error wrapping ErrBackendMiss
	// when there is none. The caller may modify the result.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value at key for ttl, replacing any value and TTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value at key for ttl unless key exists, and reports
	// whether it did. It is atomic, so it can serve as a lock.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Replace stores value at key for ttl only if key exists, and reports
	// whether it did; it never brings back a key deleted meanwhile.
	Replace(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Delete removes key, if it exists; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// AddToSet adds member to the set at key, creating it if needed, and
	// makes the set live at least ttl from now; it never shortens its life.
	AddToSet(ctx context.Context, key, member string, ttl time.Duration) error
	// RemoveFromSet removes member from the set at key, if it is there.
	RemoveFromSet(ctx context.Context, key, member string) error
	// SetMembers returns the members of the set at key in no particular
	// order; none (and no error) when there is no such set.
	SetMembers(ctx context.Context, key string) ([]string, error)
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
}

// errWrongKind is what a Backend returns when a value key is used as a set
// or the other way round.
var errWrongKind = errors.New("session: backend: key holds the wrong kind of value")

// checkTTL refuses the TTLs a Backend does not accept.
func checkTTL(op string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("session: backend: %s: ttl %v: want a positive TTL", op, ttl)
	}
	return nil
}

// MemoryBackend is a Backend in this process's memory: for tests, and for a
// single replica that may lose every session when it restarts. Replicas do
// not share it, so behind a load balancer each would know only the sessions
// it saved itself; use Redis there.
//
// It is a Broadcaster too, within this process (see Publish and Subscribe).
//
// Expired keys are misses at once; their memory is reclaimed when they are
// next touched, or by a sweep that writes trigger now and then. The zero
// value is not usable; call NewMemoryBackend. It is safe for concurrent use.
type MemoryBackend struct {
	now func() time.Time

	mu     sync.Mutex
	items  map[string]*memoryItem
	writes int // since the last sweep

	ps memoryPubSub // see Publish and Subscribe
}

// memoryItem is a value (set == nil) or a set.
type memoryItem struct {
	value   []byte
	set     map[string]struct{}
	expires time.Time
}

var _ Backend = (*MemoryBackend)(nil)

// NewMemoryBackend returns an empty MemoryBackend that tells the time with
// now; nil means time.Now.
func NewMemoryBackend(now func() time.Time) *MemoryBackend {
	if now == nil {
		now = time.Now
	}
	return &MemoryBackend{now: now, items: map[string]*memoryItem{}, ps: memoryPubSub{subs: map[*memorySub]struct{}{}}}
}

// live returns the unexpired item at key, deleting an expired one. The
// caller holds b.mu.
func (b *MemoryBackend) live(key string, now time.Time) *memoryItem {
	it, ok := b.items[key]
	if !ok {
		return nil
	}
	if !now.Before(it.expires) {
		delete(b.items, key)
		return nil
	}
	return it
}

// wrote counts a write and, once there have been as many writes as items
// (and at least 64), drops every expired item: an amortized constant cost
// per write. The caller holds b.mu.
func (b *MemoryBackend) wrote(now time.Time) {
	b.writes++
	if b.writes < max(64, len(b.items)) {
		return
	}
	b.writes = 0
	maps.DeleteFunc(b.items, func(_ string, it *memoryItem) bool { return !now.Before(it.expires) })
}

// Get implements Backend.
func (b *MemoryBackend) Get(ctx context.Context, key string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	it := b.live(key, b.now())
	switch {
	case it == nil:
		return nil, ErrBackendMiss
	case it.set != nil:
		return nil, fmt.Errorf("session: backend: get: %w", errWrongKind)
	}
	return slices.Clone(it.value), nil
}

// Set implements Backend.
func (b *MemoryBackend) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.items[key] = &memoryItem{value: cloneValue(value), expires: now.Add(ttl)}
	b.wrote(now)
	return nil
}

// SetNX implements Backend.
func (b *MemoryBackend) SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.live(key, now) != nil {
		return false, nil
	}
	b.items[key] = &memoryItem{value: cloneValue(value), expires: now.Add(ttl)}
	b.wrote(now)
	return true, nil
}

// Replace implements Backend.
func (b *MemoryBackend) Replace(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("replace", ttl); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.live(key, now) == nil {
		return false, nil
	}
	// Like Redis's SET XX, this replaces a set as well.
	b.items[key] = &memoryItem{value: cloneValue(value), expires: now.Add(ttl)}
	return true, nil
}

// Delete implements Backend.
func (b *MemoryBackend) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.items, key)
	return nil
}

// AddToSet implements Backend.
func (b *MemoryBackend) AddToSet(ctx context.Context, key, member string, ttl time.Duration) error {
	if err := checkTTL("add to set", ttl); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	it := b.live(key, now)
	switch {
	case it == nil:
		it = &memoryItem{set: map[string]struct{}{}, expires: now.Add(ttl)}
		b.items[key] = it
	case it.set == nil:
		return fmt.Errorf("session: backend: add to set: %w", errWrongKind)
	}
	it.set[member] = struct{}{}
	if e := now.Add(ttl); e.After(it.expires) {
		it.expires = e
	}
	b.wrote(now)
	return nil
}

// RemoveFromSet implements Backend.
func (b *MemoryBackend) RemoveFromSet(ctx context.Context, key, member string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	it := b.live(key, b.now())
	switch {
	case it == nil:
		return nil
	case it.set == nil:
		return fmt.Errorf("session: backend: remove from set: %w", errWrongKind)
	}
	delete(it.set, member)
	if len(it.set) == 0 {
		delete(b.items, key) // as Redis drops an empty set
	}
	return nil
}

// SetMembers implements Backend.
func (b *MemoryBackend) SetMembers(ctx context.Context, key string) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	it := b.live(key, b.now())
	switch {
	case it == nil:
		return nil, nil
	case it.set == nil:
		return nil, fmt.Errorf("session: backend: set members: %w", errWrongKind)
	}
	return slices.Collect(maps.Keys(it.set)), nil
}

// Ping implements Backend; a MemoryBackend always answers.
func (b *MemoryBackend) Ping(ctx context.Context) error { return nil }

// cloneValue copies value, keeping an empty value non-nil so that it reads
// back as present.
func cloneValue(value []byte) []byte {
	return append([]byte{}, value...)
}
