package stats

import "math"

// ComponentConfidence is the coverage each side of a Ratio is computed
// at, so that the ratio's interval covers Confidence.
var ComponentConfidence = math.Sqrt(Confidence)

// Ratio divides two intervals of positive figures: the medians' ratio,
// and the conservative interval from the ends (a.Lo/b.Hi to a.Hi/b.Lo),
// which holds the true ratio at least whenever both intervals hold their
// medians: with probability at least the product of their coverages
// (Confidence when each side has ComponentConfidence). It rests on the
// fewer of the two sides' values; the zero Interval when either side has
// none or b is not positive.
func Ratio(a, b Interval) Interval {
	if a.N == 0 || b.N == 0 || b.Median <= 0 || b.Lo <= 0 {
		return Interval{}
	}
	from := a.From
	if from != b.From {
		from = a.From + "/" + b.From
	}
	return Interval{Median: a.Median / b.Median, Lo: a.Lo / b.Hi, Hi: a.Hi / b.Lo, N: min(a.N, b.N), From: from, Coverage: a.Coverage * b.Coverage}
}
