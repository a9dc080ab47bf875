package enum

import "testing"

type color uint8

var colorNames = []string{1: "red", 2: "green"}

// TestNameParse checks that every named value round-trips, that a value
// the table leaves unnamed prints as typ(v), and that an unknown name does
// not parse.
func TestNameParse(t *testing.T) {
	for _, tc := range []struct {
		c    color
		want string
	}{{1, "red"}, {2, "green"}, {0, "color(0)"}, {3, "color(3)"}, {255, "color(255)"}} {
		got := Name("color", colorNames, tc.c)
		if got != tc.want {
			t.Errorf("Name(%d) = %q, want %q", tc.c, got, tc.want)
		}
		back, ok := Parse[color](colorNames, got)
		if named := tc.c == 1 || tc.c == 2; ok != named || (ok && back != tc.c) {
			t.Errorf("Parse(%q) = %d, %v", got, back, ok)
		}
	}
	for _, s := range []string{"", "blue", "Red"} {
		if _, ok := Parse[color](colorNames, s); ok {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}
