package report

import (
	"fmt"
	"math"

	"bpbench/internal/present"
	"bpbench/stats"
)

// unitFmt picks, from a median, the scale and suffix its interval is
// printed in, so that the bounds share the median's unit.
type unitFmt func(median float64) (scale float64, suffix string)

func nsUnit(med float64) (float64, string) {
	return scaleOf(med, []unitStep{{1e9, " s"}, {1e6, " ms"}, {1e3, " µs"}}, " ns")
}

// unitStep is a scale and the suffix of values printed in it.
type unitStep struct {
	scale  float64
	suffix string
}

// scaleOf picks the first of steps (largest first) that |med| reaches,
// else scale 1 with suffix base.
func scaleOf(med float64, steps []unitStep, base string) (float64, string) {
	a := math.Abs(med)
	for _, s := range steps {
		if a >= s.scale {
			return s.scale, s.suffix
		}
	}
	return 1, base
}

func plainUnit(float64) (float64, string) { return 1, "" }

func suffixUnit(s string) unitFmt { return func(float64) (float64, string) { return 1, s } }

func countUnit(med float64) (float64, string) {
	return scaleOf(med, []unitStep{{1e6, "M"}, {1e3, "k"}}, "")
}

// fmtIv prints an interval as "1.78 µs [1.74, 1.83]", marking one below
// Confidence with where it comes from ("[1.70–1.90 of 3 runs, 75%]").
func fmtIv(iv stats.Interval, u unitFmt) string {
	sc, suf := u(iv.Median)
	f := func(v float64) string { return present.TrimFloat(v / sc) }
	s := f(iv.Median) + suf
	switch {
	case iv.N <= 1:
		return s + " [1 value, no interval]"
	case iv.Resolved():
		return fmt.Sprintf("%s [%s, %s]", s, f(iv.Lo), f(iv.Hi))
	}
	return fmt.Sprintf("%s [%s–%s of %s, %.0f%%]", s, f(iv.Lo), f(iv.Hi), present.Values(iv.N, iv.From), 100*iv.Coverage)
}

func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return present.TrimFloat(100*a/b) + "%"
}
