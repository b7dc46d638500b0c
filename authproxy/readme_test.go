package authproxy

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's variable table from the configuration table")

const (
	tableBegin = "<!-- variables:begin (generated: go test ./authproxy -run TestREADMEVariables -update) -->\n"
	tableEnd   = "<!-- variables:end -->"
)

// TestREADMEVariables keeps the README's list of variables in step with the
// table that loads them.
func TestREADMEVariables(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, tableBegin)
	end := strings.Index(readme, tableEnd)
	if start < 0 || end < start {
		t.Fatalf("README.md has no generated variable table between %q and %q", tableBegin, tableEnd)
	}
	got := readme[start+len(tableBegin) : end]
	want := VariablesMarkdown()
	if got == want {
		return
	}
	if *update {
		readme = readme[:start+len(tableBegin)] + want + readme[end:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's variable table is out of date; run: go test ./authproxy -run TestREADMEVariables -update\ngot:\n%s\nwant:\n%s", got, want)
}
