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

// pctUnit prints a fraction as a percentage.
func pctUnit(float64) (float64, string) { return 0.01, "%" }

// ivStyle is the run's standard interval: the source most figures rest
// on, which the report names once in its header so that only figures
// from another source carry a note of where their interval comes from.
type ivStyle struct {
	// n and from are the standard's value count and source ("runs"); n
	// is 0 when the run ran every case once, so that the standard is any
	// interval over the run's batches that reaches 95%.
	n    int
	from string
}

// standardStyle picks the interval most cases' ns/op rests on: the
// run count when cases ran more than once, else batches within a run.
func standardStyle(ivs []stats.Interval) ivStyle {
	count := map[int]int{}
	for _, iv := range ivs {
		if iv.From == "runs" && iv.N > 1 {
			count[iv.N]++
		}
	}
	best, bestN := 0, 0
	for n, c := range count {
		if c > best || (c == best && n > bestN) {
			best, bestN = c, n
		}
	}
	if best == 0 {
		return ivStyle{from: "batches"}
	}
	return ivStyle{n: bestN, from: "runs"}
}

// standard reports whether iv is the run's standard interval.
func (s ivStyle) standard(iv stats.Interval) bool {
	if iv.N < 2 || iv.From != s.from {
		return false
	}
	if s.n == 0 {
		return iv.Resolved()
	}
	return iv.N == s.n
}

// sentence says once, in the header, what a bracket means.
func (s ivStyle) sentence() string {
	if s.n == 0 {
		return "Each case ran once. A figure is the median over the batches the run's operations were timed in, and brackets are its 95% interval over those batches; batches of one run share its conditions, so they understate the spread between runs (`--count 5` measures that)."
	}
	iv := stats.MedianInterval(make([]float64, s.n), "runs")
	if iv.Resolved() {
		return fmt.Sprintf("Each case ran %d times. A figure is the median of its runs, and brackets are the median's %.0f%% interval (the order statistics benchstat uses).", s.n, 100*iv.Coverage)
	}
	return fmt.Sprintf("Each case ran %d times. A figure is the median of its runs, and brackets are [min, max] of them, which holds the true median with %.0f%% probability (%d runs cannot reach 95%%; 6 can).", s.n, 100*iv.Coverage, s.n)
}

// format prints an interval as "1.78 µs [1.74, 1.83]", and notes where
// one that is not the run's standard comes from: "[0.5, 0.56; 3 batches,
// 75%]", "(1 value)" when there is no interval at all.
func (s ivStyle) format(iv stats.Interval, u unitFmt) string {
	sc, suf := u(iv.Median)
	f := func(v float64) string { return present.TrimFloat(v / sc) }
	m := f(iv.Median) + suf
	switch {
	case iv.N <= 1:
		return m + " (1 value)"
	case s.standard(iv):
		return fmt.Sprintf("%s [%s, %s]", m, f(iv.Lo), f(iv.Hi))
	case iv.Resolved():
		return fmt.Sprintf("%s [%s, %s; %s]", m, f(iv.Lo), f(iv.Hi), present.Values(iv.N, iv.From))
	}
	return fmt.Sprintf("%s [%s, %s; %s, %.0f%%]", m, f(iv.Lo), f(iv.Hi), present.Values(iv.N, iv.From), 100*iv.Coverage)
}

// iv formats an interval in the run's standard.
func (w *reportWriter) iv(iv stats.Interval, u unitFmt) string { return w.std.format(iv, u) }

// pct prints a/b as a percentage ("n/a" when b is 0), without an
// exponent however small.
func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return present.Fixed(100*a/b) + "%"
}

// count is an event count k out of n trials with its 95% Wilson interval:
// "0 of 279080 (95% upper bound 0.00138%)" when none happened, else
// "0.288% [0.263%, 0.316%] (449 of 155748)".
func count(k, n float64) string {
	if n <= 0 {
		return "none measured"
	}
	lo, hi := stats.Wilson(k, n)
	if k == 0 {
		return fmt.Sprintf("0 of %s (95%% upper bound %s)", present.Count(n), pct(hi, 1))
	}
	return fmt.Sprintf("%s [%s, %s] (%s of %s)", pct(k, n), pct(lo, 1), pct(hi, 1), present.Count(k), present.Count(n))
}
