package session

import (
	"strings"
	"testing"
)

func TestScope(t *testing.T) {
	tests := []struct {
		name       string
		idp, value string
		want       string
	}{
		{"default IdP: the value as it is", "", "s1", "s1"},
		{"default IdP, empty", "", "", ""},
		{"default IdP, a value starting with NUL is escaped", "", "\x00partners\x00s1", "\x00\x00\x00partners\x00s1"},
		{"default IdP, NUL inside is kept", "", "a\x00b", "a\x00b"},
		{"another IdP", "partners", "s1", "\x00partners\x00s1"},
		{"another IdP, empty", "partners", "", "\x00partners\x00"},
		{"another IdP, a value starting with NUL", "partners", "\x00x", "\x00partners\x00\x00x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Scope(tt.idp, tt.value); got != tt.want {
				t.Errorf("Scope(%q, %q) = %q, want %q", tt.idp, tt.value, got, tt.want)
			}
			if got, want := emptyScope(Scope(tt.idp, tt.value)), tt.value == ""; got != want {
				t.Errorf("emptyScope(Scope(%q, %q)) = %v, want %v", tt.idp, tt.value, got, want)
			}
		})
	}
}

func TestSessionScopedValues(t *testing.T) {
	tests := []struct {
		name             string
		sess             Session
		wantSID, wantSub string
	}{
		{"default IdP", Session{SID: "s1", Subject: "u1"}, "s1", "u1"},
		{"partners", Session{IdP: "partners", SID: "s1", Subject: "u1"}, "\x00partners\x00s1", "\x00partners\x00u1"},
		{"partners, no sid", Session{IdP: "partners", Subject: "u1"}, "", "\x00partners\x00u1"},
		{"partners, neither", Session{IdP: "partners"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sess.ScopedSID(); got != tt.wantSID {
				t.Errorf("ScopedSID() = %q, want %q", got, tt.wantSID)
			}
			if got := tt.sess.ScopedSubject(); got != tt.wantSub {
				t.Errorf("ScopedSubject() = %q, want %q", got, tt.wantSub)
			}
		})
	}
}

// validIdP reports whether idp may be given to Scope: "" (the default IdP)
// or a name without NUL. Real names are narrower (lower-case letters,
// digits and '-'); the fuzz target allows any other byte, proving more.
func validIdP(idp string) bool { return !strings.Contains(idp, "\x00") }

// FuzzScope checks that Scope never maps two different (idp, value) pairs
// to one key, whatever the values hold, and that exactly the scopes of
// empty values count as empty.
func FuzzScope(f *testing.F) {
	seeds := [][4]string{
		{"", "s1", "partners", "s1"},
		{"", "\x00partners\x00s1", "partners", "s1"},
		{"", "\x00\x00x", "", "\x00x"},
		{"a", "b\x00c", "a", "b\x00c\x00"},
		{"partners", "", "", ""},
		{"p", "\x00q\x00v", "", "\x00p\x00\x00q\x00v"},
		{"", "\x00", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, idpA, a, idpB, b string) {
		if !validIdP(idpA) || !validIdP(idpB) {
			t.Skip()
		}
		sa, sb := Scope(idpA, a), Scope(idpB, b)
		if (idpA != idpB || a != b) && sa == sb {
			t.Errorf("Scope(%q, %q) == Scope(%q, %q) == %q", idpA, a, idpB, b, sa)
		}
		if got := emptyScope(sa); got != (a == "") {
			t.Errorf("emptyScope(Scope(%q, %q)) = %v", idpA, a, got)
		}
	})
}
