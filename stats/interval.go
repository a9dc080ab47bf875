package stats

import (
	"math"
	"slices"
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

// Separated reports whether two intervals do not overlap.
func (iv Interval) Separated(o Interval) bool {
	return iv.N > 0 && o.N > 0 && (iv.Hi < o.Lo || o.Hi < iv.Lo)
}

// MedianInterval returns the median of vs and the narrowest symmetric
// order-statistic interval [x(k), x(n+1-k)] whose coverage of the true
// median, 1 - 2 P(Binomial(n, 1/2) < k), is at least Confidence (or [min,
// max] with its coverage when no such k exists). It assumes only that the
// values are independent draws from one distribution.
func MedianInterval(vs []float64, from string) Interval {
	n := len(vs)
	if n == 0 {
		return Interval{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	iv := Interval{Median: Median(s), Lo: s[0], Hi: s[n-1], N: n, From: from}
	// cov(k) = 1 - 2 P(X <= k-1) shrinks as k moves inwards from (min, max).
	best, tail := 1, binomPMF(n, 0)
	iv.Coverage = 1 - 2*tail
	for k := 2; k <= (n+1)/2; k++ {
		tail += binomPMF(n, k-1)
		if 1-2*tail < Confidence {
			break
		}
		best, iv.Coverage = k, 1-2*tail
	}
	iv.Lo, iv.Hi = s[best-1], s[n-best]
	return iv
}

// binomPMF is P(Binomial(n, 1/2) = k).
func binomPMF(n, k int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) - float64(n)*math.Ln2)
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
