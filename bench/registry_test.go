package bench

import (
	"slices"
	"strings"
	"testing"
)

// TestRegistry checks the presentation order, that every name is taken
// once and has cases, and that Lookup finds each experiment and names the
// known ones when it cannot.
func TestRegistry(t *testing.T) {
	want := []string{"update", "race", "scaling", "kernel", "registers", "exclusion", "apply", "blindwindow", "ptrace-race", "switch", "switch-model"}
	var got []string
	for _, e := range Experiments() {
		got = append(got, e.Name)
		if e.Question == "" || e.Cases == nil {
			t.Errorf("experiment %q has no question or no cases", e.Name)
		}
		if l, err := Lookup(e.Name); err != nil || l.Name != e.Name {
			t.Errorf("Lookup(%q) = %q, %v", e.Name, l.Name, err)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Experiments() = %q, want %q", got, want)
	}
	_, err := Lookup("nosuch")
	if err == nil || !strings.Contains(err.Error(), `"nosuch"`) || !strings.Contains(err.Error(), "update, race,") {
		t.Errorf("Lookup(nosuch) = %v, want an error naming it and the known experiments", err)
	}
	// The caller may change the returned slice without changing the registry.
	Experiments()[0].Name = "changed"
	if Experiments()[0].Name != "update" {
		t.Error("Experiments() returned the registry's own slice")
	}
}
