package session

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
)

// invalidationChannel is the channel, under a RedisBackend's key prefix,
// that CachedStores publish invalidations on and subscribe to.
const invalidationChannel = "session-invalidations"

// cacheKey is the SHA-256 of a request's session cookies, exactly as sent.
type cacheKey [32]byte

// nameSum is the SHA-256 of a session's ID, ScopedSID or ScopedSubject:
// invalidations name sessions by these, never by the names themselves,
// which would reach every client of the backend in clear. A default-IdP
// session's scoped values are its raw ones, so replicas from before
// sessions knew their IdP, which sum raw values, name them alike.
type nameSum [32]byte

func sumName(name string) nameSum { return sha256.Sum256([]byte(name)) }

// invalidation names the cached sessions a change affects: every one (all),
// those opened from exact session cookies (keys), and those whose ID,
// ScopedSID or ScopedSubject has one of the given sums.
type invalidation struct {
	all             bool
	keys            []cacheKey
	ids, sids, subs []nameSum
}

// empty reports whether inv names nothing.
func (inv *invalidation) empty() bool {
	return !inv.all && len(inv.keys)+len(inv.ids)+len(inv.sids)+len(inv.subs) == 0
}

// Invalidation messages are text: "1" (the format's version), then for each
// thing named a space and a letter, "k" (a cache key), "i" (an ID), "s" (a
// scoped SID) or "u" (a scoped Subject), followed by its sum in unpadded base64url; or " *"
// for everything. An example: "1 kAbC… iXyZ…".
const invalidationVersion = "1"

// encode returns inv as a message.
func (inv *invalidation) encode() []byte {
	n := len(inv.keys) + len(inv.ids) + len(inv.sids) + len(inv.subs)
	b := make([]byte, 0, len(invalidationVersion)+n*(2+base64.RawURLEncoding.EncodedLen(sha256.Size))+2)
	b = append(b, invalidationVersion...)
	if inv.all {
		b = append(b, " *"...)
	}
	add := func(kind byte, sum []byte) {
		b = append(b, ' ', kind)
		b = base64.RawURLEncoding.AppendEncode(b, sum)
	}
	for _, k := range inv.keys {
		add('k', k[:])
	}
	for _, s := range inv.ids {
		add('i', s[:])
	}
	for _, s := range inv.sids {
		add('s', s[:])
	}
	for _, s := range inv.subs {
		add('u', s[:])
	}
	return b
}

// decodeInvalidation reads a message. Anything it cannot read (another
// version, an unknown letter, a bad sum) invalidates everything: a message
// from a newer replica must not leave a revoked session in this one's cache.
func decodeInvalidation(msg []byte) invalidation {
	fields := bytes.Fields(msg)
	if len(fields) == 0 || string(fields[0]) != invalidationVersion {
		return invalidation{all: true}
	}
	var inv invalidation
	for _, f := range fields[1:] {
		if string(f) == "*" {
			inv.all = true
			continue
		}
		var sum [32]byte
		if len(f)-1 != base64.RawURLEncoding.EncodedLen(len(sum)) {
			return invalidation{all: true}
		}
		if n, err := base64.RawURLEncoding.Decode(sum[:], f[1:]); err != nil || n != len(sum) {
			return invalidation{all: true}
		}
		switch f[0] {
		case 'k':
			inv.keys = append(inv.keys, sum)
		case 'i':
			inv.ids = append(inv.ids, sum)
		case 's':
			inv.sids = append(inv.sids, sum)
		case 'u':
			inv.subs = append(inv.subs, sum)
		default:
			return invalidation{all: true}
		}
	}
	if inv.empty() {
		return invalidation{all: true}
	}
	return inv
}
