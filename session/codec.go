package session

import (
	"bytes"
	"compress/flate"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
)

// SecretLength is the length in bytes of every secret given to NewCodec.
const SecretLength = 32

// maxSealedLength caps a sealed value, both when sealing and, before any
// decoding, when opening. It is generous so that a session split over several
// cookies fits; a Store enforces its own, smaller limit.
const maxSealedLength = 64 << 10

// maxPlainLength caps a value's JSON, both when sealing and when an opened
// value is inflated, so that a sealed value can never expand past it.
const maxPlainLength = 64 << 10

// deflated marks a sealed value whose JSON is compressed with DEFLATE
// (RFC 1951). Values sealed without it (all of those sealed before
// compression, and those that compression would not shorten) hold JSON as
// it is, and JSON never starts with this byte.
const deflated = 0x01

// HKDF info strings: one per derived key, so that the hash key and the block
// key are independent even though they come from the same secret.
const (
	hashKeyInfo  = "authproxy cookie hash v1"
	blockKeyInfo = "authproxy cookie block v1"
)

// Codec seals values into strings safe to put in a cookie, and opens them
// again. A sealed value is JSON, compressed with DEFLATE when that makes it
// shorter, then encrypted with AES-256 and authenticated with HMAC-SHA256
// over the cookie name, a timestamp and the ciphertext
// (github.com/gorilla/securecookie), so a value sealed for one cookie name
// does not open under another. Values sealed as plain JSON, as every value
// was before compression, still open.
//
// A Codec is safe for concurrent use. It is not tied to sessions: anything
// that marshals to JSON can be sealed, such as a short-lived sign-in state.
// Use a different cookie name for each kind of value.
type Codec struct {
	codecs []securecookie.Codec
	// Compressors are reused: a new flate.Writer costs some 800 KB.
	writers sync.Pool // *flate.Writer
	readers sync.Pool // io.ReadCloser that is a flate.Resetter
}

// NewCodec returns a Codec keyed by secrets, each exactly SecretLength bytes
// of random data. The first secret seals; every secret opens, so keys are
// rotated by putting the new secret first and dropping the old one once no
// cookie sealed with it can still be valid.
//
// From each secret an HMAC-SHA256 key and an AES-256 key are derived with
// HKDF-SHA256; the secrets themselves are not used as keys and are not kept.
//
// maxAge, at least one second, bounds how long after sealing a value still
// opens, in whole seconds by the wall clock (not an injected one). It is
// independent of any expiry inside the value; callers must still check that.
func NewCodec(secrets [][]byte, maxAge time.Duration) (*Codec, error) {
	if len(secrets) == 0 {
		return nil, errors.New("session: no cookie secret")
	}
	if maxAge < time.Second {
		return nil, fmt.Errorf("session: cookie max age %v: want at least 1s", maxAge)
	}
	pairs := make([][]byte, 0, 2*len(secrets))
	for i, secret := range secrets {
		if len(secret) != SecretLength {
			return nil, fmt.Errorf("session: cookie secret %d: want %d bytes, got %d", i, SecretLength, len(secret))
		}
		hashKey, err := hkdf.Key(sha256.New, secret, nil, hashKeyInfo, 64)
		if err != nil {
			return nil, fmt.Errorf("session: derive hash key: %w", err)
		}
		blockKey, err := hkdf.Key(sha256.New, secret, nil, blockKeyInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("session: derive block key: %w", err)
		}
		pairs = append(pairs, hashKey, blockKey)
	}
	codecs := securecookie.CodecsFromPairs(pairs...)
	for _, c := range codecs {
		sc := c.(*securecookie.SecureCookie)
		// Seal and Open encode the JSON themselves (see encodeJSON).
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(int(maxAge / time.Second))
		// Length is checked by Seal and Open themselves, so that Seal can
		// report ErrTooLarge and Open can refuse before decoding anything.
		sc.MaxLength(0)
	}
	return &Codec{codecs: codecs}, nil
}

// Seal returns v as JSON, compressed when that makes it shorter, encrypted
// and authenticated for the cookie called name, sealed with the first
// secret. The result uses only base64url characters and "=", so it can be a
// cookie value as is. When the JSON or the result would be longer than
// 64 KiB, Seal returns an error wrapping ErrTooLarge.
func (c *Codec) Seal(name string, v any) (string, error) {
	plain, err := c.encodeJSON(v)
	if err != nil {
		return "", fmt.Errorf("session: seal %q: %w", name, err)
	}
	sealed, err := securecookie.EncodeMulti(name, plain, c.codecs...)
	if err != nil {
		return "", fmt.Errorf("session: seal %q: %w", name, err)
	}
	if len(sealed) > maxSealedLength {
		return "", fmt.Errorf("session: seal %q: %d bytes sealed, limit %d: %w", name, len(sealed), maxSealedLength, ErrTooLarge)
	}
	return sealed, nil
}

// Open verifies value as sealed by Seal for the cookie called name with any
// of the Codec's secrets, no longer ago than the Codec's max age, and
// unmarshals it into dst, which must be a non-nil pointer. Values longer than
// 64 KiB are refused before any decoding, and a compressed value is inflated
// to at most 64 KiB, though only once it has been authenticated.
//
// On error dst may have been partly written; the caller must discard it.
// Errors say why the value did not open but never include it.
func (c *Codec) Open(name, value string, dst any) error {
	if value == "" {
		return fmt.Errorf("session: open %q: empty value", name)
	}
	if len(value) > maxSealedLength {
		return fmt.Errorf("session: open %q: %d bytes, limit %d", name, len(value), maxSealedLength)
	}
	var opened []byte
	if err := securecookie.DecodeMulti(name, value, &opened, c.codecs...); err != nil {
		return fmt.Errorf("session: open %q: %w", name, err)
	}
	if err := c.decodeJSON(opened, dst); err != nil {
		return fmt.Errorf("session: open %q: %w", name, err)
	}
	return nil
}

// encodeJSON returns v as JSON, or as deflated and the JSON compressed when
// that is shorter (small values, such as sign-in states, seldom are).
func (c *Codec) encodeJSON(v any) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if len(plain) > maxPlainLength {
		return nil, fmt.Errorf("%d bytes of JSON, limit %d: %w", len(plain), maxPlainLength, ErrTooLarge)
	}
	var buf bytes.Buffer
	buf.Grow(len(plain))
	buf.WriteByte(deflated)
	zw, _ := c.writers.Get().(*flate.Writer)
	if zw == nil {
		if zw, err = flate.NewWriter(&buf, flate.BestCompression); err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
	} else {
		zw.Reset(&buf)
	}
	defer c.writers.Put(zw)
	if _, err := zw.Write(plain); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	if buf.Len() >= len(plain) {
		return plain, nil
	}
	return buf.Bytes(), nil
}

// decodeJSON unmarshals what encodeJSON returned into dst, inflating it
// first when it starts with deflated, to at most maxPlainLength bytes.
func (c *Codec) decodeJSON(b []byte, dst any) error {
	if len(b) > 0 && b[0] == deflated {
		plain, err := c.inflate(b[1:])
		if err != nil {
			return err
		}
		b = plain
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// inflate returns b decompressed, refusing more than maxPlainLength bytes.
func (c *Codec) inflate(b []byte) ([]byte, error) {
	src := bytes.NewReader(b)
	zr, _ := c.readers.Get().(io.ReadCloser)
	if zr == nil {
		zr = flate.NewReader(src)
	} else if err := zr.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	defer c.readers.Put(zr)
	plain, err := io.ReadAll(io.LimitReader(zr, maxPlainLength+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(plain) > maxPlainLength {
		return nil, fmt.Errorf("inflates past %d bytes", maxPlainLength)
	}
	return plain, nil
}
