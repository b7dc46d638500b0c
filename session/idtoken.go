package session

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// A session keeps the raw ID token only to send it back to the IdP as
// id_token_hint. As base64url text its claims (the groups above all) are
// invisible to the compression that follows, though the session holds the
// same claims in clear beside it; so the token's payload is stored decoded,
// where compression finds them twice and keeps them once. Nothing reads or
// trusts the decoded claims: the token is only put back together, byte for
// byte, as it was received.

// jwsParts is an ID token in compact JWS form, its payload decoded.
type jwsParts struct {
	// Header and Signature are the first and last parts as they were.
	Header    string          `json:"h"`
	Payload   json.RawMessage `json:"p"`
	Signature string          `json:"s"`
}

// splitJWS returns token's parts when token is a compact JWS whose payload
// is JSON that encoding/json writes back exactly as it is, and the parts join
// back to token; otherwise false, and token is stored as it is.
func splitJWS(token string) (*jwsParts, bool) {
	header, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, false
	}
	payload, signature, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(signature, ".") {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || !json.Valid(raw) {
		return nil, false
	}
	// Marshal compacts a RawMessage and escapes <, > and &: the payload
	// must come out of it unchanged.
	if out, err := json.Marshal(json.RawMessage(raw)); err != nil || !bytes.Equal(out, raw) {
		return nil, false
	}
	p := &jwsParts{Header: header, Payload: raw, Signature: signature}
	if p.join() != token {
		return nil, false
	}
	return p, true
}

// join returns the compact JWS the parts came from.
func (p *jwsParts) join() string {
	return p.Header + "." + base64.RawURLEncoding.EncodeToString(p.Payload) + "." + p.Signature
}

// sessionFields is Session without its JSON methods.
type sessionFields Session

// sessionWire is a Session as JSON: its ID token as id_token (as every
// session sealed before held it) or, split, as id_token_jws.
type sessionWire struct {
	*sessionFields
	IDToken    string    `json:"id_token,omitempty"`
	IDTokenJWS *jwsParts `json:"id_token_jws,omitempty"`
}

// MarshalJSON implements json.Marshaler: the fields as tagged, the ID token
// split (see jwsParts) when it can be put back together exactly.
func (s Session) MarshalJSON() ([]byte, error) {
	w := sessionWire{sessionFields: (*sessionFields)(&s)}
	if parts, ok := splitJWS(s.IDToken); ok {
		w.IDTokenJWS = parts
	} else {
		w.IDToken = s.IDToken
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler, reading either form of the ID
// token.
func (s *Session) UnmarshalJSON(b []byte) error {
	w := sessionWire{sessionFields: (*sessionFields)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.IDToken = w.IDToken
	if w.IDTokenJWS != nil {
		s.IDToken = w.IDTokenJWS.join()
	}
	return nil
}
