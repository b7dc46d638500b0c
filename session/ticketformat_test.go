package session

import "testing"

func TestTicketRoundTrip(t *testing.T) {
	tk, err := newTicket("some-id")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseTicket(tk.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.id != tk.id || string(got.key) != string(tk.key) || !got.issuedFor("some-id") || got.issuedFor("other-id") {
		t.Errorf("parsed ticket differs")
	}
	if len(tk.id) != 22 || len(tk.key) != 32 || string(tk.key) == tk.id {
		t.Errorf("derived id %q (%d) and key (%d bytes)", tk.id, len(tk.id), len(tk.key))
	}
	other, _ := newTicket("some-id")
	if other.id == tk.id || string(other.key) == string(tk.key) {
		t.Error("two tickets share an id or key")
	}
}
