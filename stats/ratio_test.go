package stats

import (
	"math"
	"testing"
)

// TestRatio: the medians' ratio, and the interval from the ends, which
// covers at least the product of the sides' coverages.
func TestRatio(t *testing.T) {
	r := Ratio(Interval{Median: 10, Lo: 8, Hi: 12, N: 16, From: "sub-samples", Coverage: 0.98}, Interval{Median: 2, Lo: 1, Hi: 4, N: 12, From: "sub-samples", Coverage: 0.98})
	if r.Median != 5 || r.Lo != 2 || r.Hi != 12 || r.N != 12 || r.From != "sub-samples" || math.Abs(r.Coverage-0.9604) > 1e-9 {
		t.Errorf("Ratio = %+v", r)
	}
	if r := Ratio(Interval{Median: 1, N: 3}, Interval{}); r.N != 0 {
		t.Errorf("Ratio over an empty interval = %+v, want the zero Interval", r)
	}
}

// TestMedianIntervalAtComponent: each side of a ratio taken at
// ComponentConfidence makes the ratio reach Confidence.
func TestMedianIntervalAtComponent(t *testing.T) {
	var vs []float64
	for i := 16; i >= 1; i-- {
		vs = append(vs, float64(i))
	}
	a := MedianIntervalAt(vs, "sub-samples", ComponentConfidence)
	if a.Coverage < ComponentConfidence || a.Median != 8.5 || a.Lo >= a.Median || a.Hi <= a.Median {
		t.Errorf("16 values at %.4f: %+v", ComponentConfidence, a)
	}
	if r := Ratio(a, a); r.Coverage < Confidence-1e-12 || !r.Resolved() {
		t.Errorf("a ratio of two component intervals covers %.4f, want >= %.2f", r.Coverage, Confidence)
	}
	if b := MedianIntervalAt(vs, "runs", Confidence); b != MedianInterval(vs, "runs") {
		t.Errorf("MedianIntervalAt(Confidence) = %+v, MedianInterval = %+v", b, MedianInterval(vs, "runs"))
	}
}
