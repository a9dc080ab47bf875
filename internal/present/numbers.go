package present

import (
	"math"
	"strconv"
	"strings"
)

// FmtNs formats a duration in nanoseconds with a readable unit.
func FmtNs(ns float64) string {
	switch {
	case ns >= 1e9:
		return TrimFloat(ns/1e9) + " s"
	case ns >= 1e6:
		return TrimFloat(ns/1e6) + " ms"
	case ns >= 1e3:
		return TrimFloat(ns/1e3) + " µs"
	}
	return TrimFloat(ns) + " ns"
}

// TrimFloat prints 3 significant digits without exponent.
func TrimFloat(v float64) string {
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

// Fixed prints 3 significant digits like TrimFloat, but never with an
// exponent: 0.0000628, not 6.28e-05.
func Fixed(v float64) string {
	if a := math.Abs(v); a == 0 || a >= 1e-3 {
		return TrimFloat(v)
	}
	return strconv.FormatFloat(RoundSig(v, 3), 'f', -1, 64)
}

// Count prints a whole number with its thousands grouped: "842,685,620".
func Count(v float64) string {
	s := strconv.FormatFloat(math.Round(math.Abs(v)), 'f', 0, 64)
	var b []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if v < 0 {
		return "-" + string(b)
	}
	return string(b)
}

// PerfBenchArgs writes a kernel case as the `perf bench breakpoint`
// command line it mirrors ("thread -b 4 -p 2 -t 10"), which is how its
// readers know these workloads.
func PerfBenchArgs(name string) string {
	parts := strings.Split(name, "/")
	sub := map[string]string{"KernelThread": "thread", "KernelEnable": "enable"}[parts[0]]
	if sub == "" {
		sub = parts[0]
	}
	flags := map[string]string{"breakpoints": "-b", "parallelism": "-p", "threads": "-t", "passive": "-p", "active": "-a"}
	out := []string{sub}
	for _, el := range parts[1:] {
		k, v, ok := strings.Cut(el, "=")
		if f, known := flags[k]; ok && known {
			out = append(out, f, v)
		} else {
			out = append(out, el)
		}
	}
	return strings.Join(out, " ")
}

// Cheaper says how much cheaper the cost ours is than theirs ("2.03×
// cheaper"), or, when it is not, how much dearer ("1.07× more expensive"),
// so a report never calls a 0.93 ratio "cheaper".
func Cheaper(theirs, ours float64) string {
	if ours == 0 || theirs == 0 || math.IsNaN(theirs/ours) {
		return "n/a cheaper"
	}
	if theirs >= ours {
		return TrimFloat(theirs/ours) + "× cheaper"
	}
	return TrimFloat(ours/theirs) + "× more expensive"
}

// Ratio formats a/b as "3.4×", or "n/a" when b is zero.
func Ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) {
		return "n/a"
	}
	return TrimFloat(a/b) + "×"
}

// RoundSig rounds v to digits significant digits (the shortest decimal
// that parses back to the rounded value, so rounding twice changes
// nothing).
func RoundSig(v float64, digits int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', digits, 64), 64)
	if err != nil {
		return v
	}
	return r
}
