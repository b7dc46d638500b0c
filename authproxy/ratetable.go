package authproxy

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// rateTable is a bounded table of token buckets, one per client address
// (rateKey). However many addresses a flood comes from, it holds at most
// rateShards*perShard buckets: a new address takes the place of the least
// recently used one of its shard. The bucket evicted first is the one idle
// longest, so usually one that has refilled and lost nothing; under a flood
// of more addresses than it holds, an evicted address starts again with a
// full bucket, which lets a many-address flood through at no more than a
// burst per address per eviction, and never makes a client's limit
// stricter. It is safe for concurrent use.
type rateTable struct {
	rate     float64 // tokens per second
	burst    float64
	perShard int
	seed     maphash.Seed // shard choice an attacker cannot aim at
	// epoch is the time buckets count from: a monotonic clock's reading
	// when it has one, so that a wall clock stepped back or forth neither
	// freezes nor refills buckets.
	epoch  time.Time
	shards [rateShards]rateShard
}

// rateShards is how many independently locked parts a rateTable has.
const rateShards = 16

type rateShard struct {
	mu      sync.Mutex
	buckets map[rateKey]*bucket
	lru     bucket // sentinel: lru.next is the most recently used, lru.prev the least
}

// bucket is one address's tokens, in the LRU list of its shard.
type bucket struct {
	key    rateKey
	tokens float64
	at     int64 // when tokens was counted, nanoseconds since the epoch
	logged int64 // when this address's last audit line was written, since the epoch; neverLogged if not yet
	prev   *bucket
	next   *bucket
}

// neverLogged is bucket.logged before the address's first audit line.
const neverLogged = math.MinInt64

// rateKey is the address a bucket belongs to: an IPv4 address, or an IPv6
// address's /64, as 16 bytes.
type rateKey [16]byte

// rateKeyOf returns the bucket key of a client address. IPv6 addresses are
// grouped by their /64, the smallest network a single host is usually
// given: one host rotating through its prefix stays one client. The zero
// Addr has a key of its own.
func rateKeyOf(addr netip.Addr) rateKey {
	if !addr.IsValid() {
		return rateKey{}
	}
	addr = addr.Unmap()
	k := rateKey(addr.As16())
	if !addr.Is4() {
		clear(k[8:])
	}
	return k
}

// newRateTable returns an empty table of buckets shaped by l (which must
// not be off), holding at most maxEntries buckets, counting time from epoch
// (take's times must come from the same clock).
func newRateTable(l RateLimit, maxEntries int, epoch time.Time) *rateTable {
	t := &rateTable{
		rate:     float64(l.N) / l.Per.Seconds(),
		burst:    float64(l.Burst),
		perShard: max(1, maxEntries/rateShards),
		seed:     maphash.MakeSeed(),
		epoch:    epoch,
	}
	for i := range t.shards {
		sh := &t.shards[i]
		sh.buckets = map[rateKey]*bucket{}
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	}
	return t
}

// take spends one token of key's bucket at now. When there is none, ok is
// false, retry is how long until there is one, and logDue says whether this
// address's audit line for the minute is due (it is then counted as
// written).
func (t *rateTable) take(key rateKey, now time.Time) (ok bool, retry time.Duration, logDue bool) {
	ns := int64(now.Sub(t.epoch))
	sh := t.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.buckets[key]
	switch {
	case b != nil:
		sh.unlink(b)
		if elapsed := ns - b.at; elapsed > 0 {
			b.tokens = min(t.burst, b.tokens+float64(elapsed)/1e9*t.rate)
		}
		b.at = ns
	case len(sh.buckets) >= t.perShard:
		b = sh.lru.prev
		sh.unlink(b)
		delete(sh.buckets, b.key)
		*b = bucket{key: key, tokens: t.burst, at: ns, logged: neverLogged}
		sh.buckets[key] = b
	default:
		b = &bucket{key: key, tokens: t.burst, at: ns, logged: neverLogged}
		sh.buckets[key] = b
	}
	sh.pushFront(b)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, false
	}
	retry = time.Duration((1 - b.tokens) / t.rate * 1e9)
	if b.logged == neverLogged || ns-b.logged >= int64(time.Minute) || ns < b.logged {
		b.logged, logDue = ns, true
	}
	return false, retry, logDue
}

// shard returns the shard that holds key's bucket.
func (t *rateTable) shard(key rateKey) *rateShard {
	return &t.shards[maphash.Comparable(t.seed, key)%rateShards]
}

// len returns how many buckets the table holds.
func (t *rateTable) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.buckets)
		sh.mu.Unlock()
	}
	return n
}

func (sh *rateShard) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (sh *rateShard) pushFront(b *bucket) {
	b.prev, b.next = &sh.lru, sh.lru.next
	sh.lru.next.prev = b
	sh.lru.next = b
}
