package report

import (
	"fmt"
	"math"

	"bpbench/internal/present"
	"bpbench/stats"
)

// resolveNote says that two intervals overlap and about how many values
// each would need to separate.
func resolveNote(a, b stats.Interval) string {
	n := stats.RunsToResolve(a, b)
	if n == 0 {
		return fmt.Sprintf("not resolved: equal medians at %s", countOf(a, b))
	}
	if n > 1000 {
		return fmt.Sprintf("not resolved at %s: the intervals overlap and the medians differ by %.2g%%, too little for any practical number of runs to resolve", countOf(a, b), 100*math.Abs(a.Median-b.Median)/math.Max(math.Abs(b.Median), 1e-300))
	}
	return fmt.Sprintf("not resolved at %s: the intervals overlap; about %d runs would resolve it", countOf(a, b), n)
}

func countOf(a, b stats.Interval) string {
	if a.N == b.N && a.From == b.From {
		return present.Values(a.N, a.From) + " each"
	}
	return fmt.Sprintf("%d and %d values", a.N, b.N)
}

// costVerdict compares the cost ours against theirs: "3.04× cheaper" (or
// "more expensive") when the intervals separate, else why not.
func costVerdict(theirs, ours stats.Interval) string {
	if theirs.Separated(ours) {
		return present.Cheaper(theirs.Median, ours.Median)
	}
	return resolveNote(theirs, ours)
}

// ratioVerdict compares a to b as "a/b = R×" when they separate.
func ratioVerdict(a, b stats.Interval) string {
	if a.Separated(b) {
		return present.Ratio(a.Median, b.Median)
	}
	return resolveNote(a, b)
}
