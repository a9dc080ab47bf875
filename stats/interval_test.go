package stats

import (
	"math"
	"testing"
)

func TestMedianIntervalCoverage(t *testing.T) {
	for _, tc := range []struct {
		n        int
		k        int // expected order statistic, 1-based from each end
		coverage float64
	}{
		{1, 1, 0}, {3, 1, 0.75}, {5, 1, 0.9375}, {6, 1, 0.96875}, {9, 2, 0.9609375}, {20, 6, 0.9586105},
	} {
		vs := make([]float64, tc.n)
		for i := range vs {
			vs[i] = float64(tc.n - i) // reversed: the function must sort
		}
		iv := MedianInterval(vs, "runs")
		if iv.Lo != float64(tc.k) || iv.Hi != float64(tc.n+1-tc.k) || math.Abs(iv.Coverage-tc.coverage) > 1e-6 {
			t.Errorf("n=%d: got [%v, %v] coverage %.7f, want [%d, %d] coverage %.7f", tc.n, iv.Lo, iv.Hi, iv.Coverage, tc.k, tc.n+1-tc.k, tc.coverage)
		}
		if want := tc.coverage >= Confidence; iv.Resolved() != want {
			t.Errorf("n=%d: Resolved() = %v", tc.n, iv.Resolved())
		}
	}
}

func TestWilson(t *testing.T) {
	lo, hi := Wilson(0, 100)
	if lo != 0 || math.Abs(hi-0.03699) > 1e-4 {
		t.Errorf("Wilson(0, 100) = %v, %v", lo, hi)
	}
	lo, hi = Wilson(50, 100)
	if math.Abs(lo-0.40383) > 1e-4 || math.Abs(hi-0.59617) > 1e-4 {
		t.Errorf("Wilson(50, 100) = %v, %v", lo, hi)
	}
}

// TestMedianIntervalAsBenchstat: from 6 values on, the interval is the one
// benchstat prints, which for some n is not symmetric (8 values: the 1st
// and 7th, 96.1%, where the symmetric 1st and 8th would cover 99.2%).
func TestMedianIntervalAsBenchstat(t *testing.T) {
	vs := []float64{8, 7, 6, 5, 4, 3, 2, 1}
	iv := MedianInterval(vs, "runs")
	if iv.Lo != 1 || iv.Hi != 7 || math.Abs(iv.Coverage-0.9609375) > 1e-6 || iv.Median != 4.5 {
		t.Errorf("n=8: got %+v, want [1, 7] coverage 0.9609375 median 4.5", iv)
	}
}

// TestSeparatedNeedsSpread: a single value separates from nothing.
func TestSeparatedNeedsSpread(t *testing.T) {
	one := Interval{Median: 1, Lo: 1, Hi: 1, N: 1}
	far := Interval{Median: 10, Lo: 9, Hi: 11, N: 5}
	near := Interval{Median: 2, Lo: 1.5, Hi: 3, N: 5}
	if one.Separated(far) || far.Separated(one) {
		t.Error("a one-value interval was called separated")
	}
	if !near.Separated(far) || near.Separated(Interval{Lo: 2.5, Hi: 4, N: 5}) {
		t.Error("Separated is wrong on intervals of five values")
	}
}
