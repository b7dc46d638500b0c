package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
)

// A ticket is what the browser holds for a TicketStore session: a random
// secret from which the session's backend key and its encryption key are
// derived, and a short fingerprint of the Session.ID it was issued for. It
// is sealed with the store's Codec before it becomes a cookie.
//
// Deriving both keys from one secret, rather than carrying a random id and
// a random key side by side, keeps the sealed cookie under 200 bytes: the
// Codec's format more than doubles what it seals. For the same reason a
// ticket has no version byte: a later format must differ in length.
const (
	ticketSecretLen      = 32
	ticketFingerprintLen = 3
	ticketLen            = ticketSecretLen + ticketFingerprintLen

	ticketIDInfo  = "authproxy ticket id v1"
	ticketKeyInfo = "authproxy ticket key v1"
	ticketIDLen   = 16 // bytes, before encoding
	ticketKeyLen  = 32 // AES-256

	// blobVersion is the first byte of every session stored in a backend.
	blobVersion = 1
)

type ticket struct {
	secret      [ticketSecretLen]byte
	fingerprint [ticketFingerprintLen]byte

	id  string // backend key suffix, derived from secret
	key []byte // AES-256 key, derived from secret
}

// newTicket returns a ticket with a fresh random secret for the session
// with ID sessionID.
func newTicket(sessionID string) (*ticket, error) {
	t := &ticket{fingerprint: fingerprint(sessionID)}
	rand.Read(t.secret[:]) // never fails (crypto/rand, Go 1.24+)
	if err := t.derive(); err != nil {
		return nil, err
	}
	return t, nil
}

// parseTicket decodes a ticket as encode wrote it.
func parseTicket(s string) (*ticket, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != ticketLen {
		return nil, errors.New("malformed ticket")
	}
	t := &ticket{}
	copy(t.secret[:], b)
	copy(t.fingerprint[:], b[ticketSecretLen:])
	if err := t.derive(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *ticket) derive() error {
	id, err := hkdf.Key(sha256.New, t.secret[:], nil, ticketIDInfo, ticketIDLen)
	if err != nil {
		return fmt.Errorf("session: derive ticket id: %w", err)
	}
	t.key, err = hkdf.Key(sha256.New, t.secret[:], nil, ticketKeyInfo, ticketKeyLen)
	if err != nil {
		return fmt.Errorf("session: derive ticket key: %w", err)
	}
	t.id = base64.RawURLEncoding.EncodeToString(id)
	return nil
}

func (t *ticket) encode() string {
	b := make([]byte, 0, ticketLen)
	b = append(b, t.secret[:]...)
	b = append(b, t.fingerprint[:]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issuedFor reports whether t was issued for the session with ID
// sessionID, as far as its short fingerprint can tell.
func (t *ticket) issuedFor(sessionID string) bool {
	fp := fingerprint(sessionID)
	return subtle.ConstantTimeCompare(t.fingerprint[:], fp[:]) == 1
}

func fingerprint(sessionID string) [ticketFingerprintLen]byte {
	sum := sha256.Sum256([]byte("authproxy ticket session v1\x00" + sessionID))
	return [ticketFingerprintLen]byte(sum[:ticketFingerprintLen])
}

// hashName turns a sid or subject into a fixed-length backend key suffix:
// no IdP identifier appears in the backend, and none can contain "{".
func hashName(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sealBlob encrypts plain with AES-256-GCM under key, binding it to the
// ticket id, behind a version byte.
func sealBlob(key []byte, id string, plain []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal([]byte{blobVersion}, nil, plain, []byte(id)), nil
}

// openBlob reverses sealBlob.
func openBlob(key []byte, id string, blob []byte) ([]byte, error) {
	if len(blob) == 0 || blob[0] != blobVersion {
		return nil, errors.New("stored session has an unknown format")
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nil, blob[1:], []byte(id))
	if err != nil {
		return nil, errors.New("stored session does not open with the ticket's key")
	}
	return plain, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session: ticket cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("session: ticket cipher: %w", err)
	}
	return aead, nil
}
