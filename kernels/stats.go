package kernels

import (
	"math"
	"slices"
)

// The statistics the cross-kernel report needs, as the CLI's report
// computes them (cli/stats.go; the lead folds both into package report).

// confidence is the coverage every interval aims for.
const confidence = 0.95

// interval is a median and its distribution-free confidence interval.
type interval struct {
	Median, Lo, Hi float64
	N              int
	Coverage       float64
}

func (iv interval) ok() bool { return iv.N > 0 }

// medianInterval returns the median of vs and the narrowest symmetric
// order-statistic interval [x(k), x(n+1-k)] whose coverage of the true
// median is at least confidence ([min, max] with its coverage when none
// is).
func medianInterval(vs []float64) interval { return medianIntervalAt(vs, confidence) }

// medianIntervalAt is medianInterval at coverage conf.
func medianIntervalAt(vs []float64, conf float64) interval {
	n := len(vs)
	if n == 0 {
		return interval{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[n/2]
	if n%2 == 0 {
		m = (s[n/2-1] + s[n/2]) / 2
	}
	iv := interval{Median: m, N: n}
	best, tail := 1, binomPMF(n, 0)
	iv.Coverage = 1 - 2*tail
	for k := 2; k <= (n+1)/2; k++ {
		tail += binomPMF(n, k-1)
		if 1-2*tail < conf {
			break
		}
		best, iv.Coverage = k, 1-2*tail
	}
	iv.Lo, iv.Hi = s[best-1], s[n-best]
	return iv
}

func binomPMF(n, k int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) - float64(n)*math.Ln2)
}

// ratio divides two intervals: the median's ratio, and the conservative
// interval from the ends (lo/hi' to hi/lo'), which covers the true ratio
// at least as often as both intervals together cover their medians: the
// product of their coverages (componentConfidence each makes it 95%).
func ratio(a, b interval) interval {
	if !a.ok() || !b.ok() || b.Median <= 0 || b.Lo <= 0 {
		return interval{}
	}
	return interval{Median: a.Median / b.Median, Lo: a.Lo / b.Hi, Hi: a.Hi / b.Lo, N: min(a.N, b.N), Coverage: a.Coverage * b.Coverage}
}

// componentConfidence is the coverage of each side of a ratio, so that
// the ratio's conservative interval covers 95%.
var componentConfidence = math.Sqrt(confidence)
