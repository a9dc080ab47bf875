package cli

import (
	"math"
	"slices"
	"strconv"
)

// fmtNs formats a duration in nanoseconds with a readable unit.
func fmtNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return trimFloat(ns/1e9) + " s"
	case ns >= 1e6:
		return trimFloat(ns/1e6) + " ms"
	case ns >= 1e3:
		return trimFloat(ns/1e3) + " µs"
	}
	return trimFloat(ns) + " ns"
}

// trimFloat prints 3 significant digits without exponent.
func trimFloat(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// ratio formats a/b as "3.4×", or "n/a" when b is zero.
// cheaper says how much cheaper the cost ours is than theirs ("2.03×
// cheaper"), or, when it is not, how much dearer ("1.07× more expensive"),
// so a report never calls a 0.93 ratio "cheaper".
func cheaper(theirs, ours float64) string {
	if ours == 0 || theirs == 0 || math.IsNaN(theirs/ours) {
		return "n/a cheaper"
	}
	if theirs >= ours {
		return trimFloat(theirs/ours) + "× cheaper"
	}
	return trimFloat(ours/theirs) + "× more expensive"
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return trimFloat(a/b) + "×"
}

// placeLabel says what a race's place parameter means.
func placeLabel(place string) string {
	switch place {
	case "same":
		return "competitor on the holder's CPU (time-sliced)"
	case "other":
		return "competitor on the other CPU (parallel)"
	case "":
		return ""
	}
	return "place=" + place
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// backendOrder is the presentation order of backends: model, then the two
// real kernel interfaces.
var backendOrder = []string{"sim", "ptrace", "perf"}

// orderedBackends returns the keys of m in backendOrder, then any others
// sorted.
func orderedBackends[V any](m map[string]V) []string {
	var out []string
	for _, be := range backendOrder {
		if _, ok := m[be]; ok {
			out = append(out, be)
		}
	}
	for _, be := range sortedKeys(m) {
		if !slices.Contains(backendOrder, be) {
			out = append(out, be)
		}
	}
	return out
}
