package stats

import (
	"math"
	"slices"

	mstats "github.com/aclements/go-moremath/stats"
)

// Confidence is the coverage every interval in the results aims for.
const Confidence = 0.95

// Interval is a figure's median with a distribution-free confidence
// interval for it, computed from independent values: one per run when the
// case ran more than once, otherwise one per batch within its run.
type Interval struct {
	Median float64 `json:"median"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	// N is the number of independent values the interval rests on.
	N int `json:"n"`
	// From says what the values were: "runs" or "batches".
	From string `json:"from"`
	// Coverage is the interval's exact coverage: the order-statistic
	// interval of the median cannot reach Confidence with fewer than 6
	// values, so [min, max] of 3 runs covers only 75%.
	Coverage float64 `json:"coverage"`
}

// Resolved reports whether the interval reaches Confidence.
func (iv Interval) Resolved() bool { return iv.N > 0 && iv.Coverage >= Confidence-1e-9 }

// Separated reports whether two intervals do not overlap and each rests
// on more than one value: one value has no spread to judge by, so it
// separates from nothing.
func (iv Interval) Separated(o Interval) bool {
	return iv.N > 1 && o.N > 1 && (iv.Hi < o.Lo || o.Hi < iv.Lo)
}

// MedianInterval returns the median of vs and the order-statistic
// interval of the median at Confidence that benchstat prints
// (go-moremath's QuantileCI, which x/perf's benchmath uses): exact
// binomial coverage, no assumption but that the values are independent
// draws from one distribution. Below 6 values no such interval reaches
// Confidence; then it is [min, max] with its coverage, 1 - 2·2^-n (75% of
// 3 runs, 94% of 5), which the report prints beside it.
func MedianInterval(vs []float64, from string) Interval {
	return MedianIntervalAt(vs, from, Confidence)
}

// MedianIntervalAt is MedianInterval at coverage conf: the sides of a
// Ratio each take ComponentConfidence, so that the ratio's interval
// reaches Confidence.
func MedianIntervalAt(vs []float64, from string, conf float64) Interval {
	n := len(vs)
	if n == 0 {
		return Interval{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	iv := Interval{Median: Median(s), Lo: s[0], Hi: s[n-1], N: n, From: from}
	ci := mstats.QuantileCI(n, 0.5, conf)
	if ci.LoOrder < 1 || ci.HiOrder > n {
		iv.Coverage = 1 - 2*math.Pow(0.5, float64(n))
		if n == 1 {
			iv.Coverage = 0
		}
		return iv
	}
	iv.Lo, iv.Hi, iv.Coverage = s[ci.LoOrder-1], s[ci.HiOrder-1], ci.Confidence
	return iv
}

// RunsToResolve estimates how many values a side would need for two
// overlapping intervals a and b to separate, from their half-widths
// shrinking as 1/sqrt(n); 0 when the medians are equal.
func RunsToResolve(a, b Interval) int {
	d := math.Abs(a.Median - b.Median)
	if d == 0 || a.N == 0 || b.N == 0 {
		return 0
	}
	w := (a.Hi-a.Lo)/2*math.Sqrt(float64(a.N)) + (b.Hi-b.Lo)/2*math.Sqrt(float64(b.N))
	n := math.Ceil(math.Pow(w/d, 2))
	return int(math.Max(n, 6))
}

// MinSignificant is the smallest sample size per side at which the
// two-sided Mann-Whitney U test can reach p < 0.05 (4+4 gives p = 0.029).
const MinSignificant = 4
