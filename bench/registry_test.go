package bench

import (
	"strings"
	"testing"
)

// TestRegistry checks that every experiment has a name taken once, a
// question and cases, that Lookup finds each one and names the known ones
// when it cannot, and that Experiments hands out a copy.
func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Experiments() {
		if e.Name == "" || seen[e.Name] {
			t.Errorf("experiment name %q empty or taken twice", e.Name)
		}
		seen[e.Name] = true
		if e.Question == "" || e.Cases == nil {
			t.Errorf("experiment %q has no question or no cases", e.Name)
		}
		if l, err := Lookup(e.Name); err != nil || l.Name != e.Name {
			t.Errorf("Lookup(%q) = %q, %v", e.Name, l.Name, err)
		}
	}
	_, err := Lookup("nosuch")
	if err == nil || !strings.Contains(err.Error(), `"nosuch"`) || !strings.Contains(err.Error(), "update, race,") {
		t.Errorf("Lookup(nosuch) = %v, want an error naming it and the known experiments", err)
	}
	first := Experiments()[0].Name
	Experiments()[0].Name = "changed"
	if Experiments()[0].Name != first {
		t.Error("Experiments() returned the registry's own slice")
	}
}
