package present

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// PlaceLabel says what a race's place parameter means.
func PlaceLabel(place string) string {
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

// Plural counts n of what with the noun's English plural: "1 case",
// "2 cases", "6 strategies", "3 batches".
func Plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + PluralNoun(what)
}

// PluralNoun is the plural of a noun (its last word for a phrase).
func PluralNoun(what string) string {
	n := len(what)
	switch {
	case n > 1 && what[n-1] == 'y' && !strings.ContainsRune("aeiou", rune(what[n-2])):
		return what[:n-1] + "ies"
	case strings.HasSuffix(what, "s") || strings.HasSuffix(what, "ch") || strings.HasSuffix(what, "sh") || strings.HasSuffix(what, "x"):
		return what + "es"
	}
	return what + "s"
}

// backendOrder is the presentation order of backends: model, then the two
// real kernel interfaces.
var backendOrder = []string{"sim", "ptrace", "perf"}

// OrderedBackends returns the keys of m in backendOrder, then any others
// sorted.
func OrderedBackends[V any](m map[string]V) []string {
	var out []string
	for _, be := range backendOrder {
		if _, ok := m[be]; ok {
			out = append(out, be)
		}
	}
	for _, be := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(backendOrder, be) {
			out = append(out, be)
		}
	}
	return out
}

func OrRuns(from string) string {
	if from == "" {
		return "runs"
	}
	return from
}

// Values counts n values of an interval's source with the right noun:
// "1 run", "5 runs", "1 batch", "12 batches".
func Values(n int, from string) string {
	switch from = OrRuns(from); {
	case n == 1 && from == "runs":
		return "1 run"
	case n == 1 && from == "batches":
		return "1 batch"
	}
	return strconv.Itoa(n) + " " + from
}

// List joins "a", "b" and "c" as "a, b and c".
func List(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}
