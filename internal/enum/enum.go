// Package enum names the values of the project's small enumerations
// (breakpoint kinds and types, apply modes, install policies...) from one
// table each, so that a type's String and its parser read the same names.
package enum

import "fmt"

// Value is the underlying type of an enumeration.
type Value interface{ ~uint8 | ~uint64 }

// Name returns names[v], or typ(v) for a value the table leaves unnamed.
func Name[T Value](typ string, names []string, v T) string {
	if uint64(v) < uint64(len(names)) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, uint64(v))
}

// Parse returns the value whose name in names is s, and whether there is
// one.
func Parse[T Value](names []string, s string) (T, bool) {
	for i, n := range names {
		if n != "" && n == s {
			return T(i), true
		}
	}
	return 0, false
}
