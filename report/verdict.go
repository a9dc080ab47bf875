package report

import (
	"fmt"
	"math"
	"strings"

	"bpbench/internal/present"
	"bpbench/stats"
)

// verdict is one row of the table report.md opens with: a design
// question, the answer this run gives, the figure it rests on with its
// interval, and whether the comparison is resolved. A section adds its
// rows while it writes its detail (reportWriter.verdict), so a section
// added for a new question brings its row with it.
type verdict struct {
	question, answer, figure string
	// resolved is "yes", or "no: why" (see resolution).
	resolved string
}

func (w *reportWriter) verdict(v verdict) { w.verdicts = append(w.verdicts, v) }

// writeVerdicts prints the table of answers.
func (w *reportWriter) writeVerdicts(out *strings.Builder) {
	if len(w.verdicts) == 0 {
		return
	}
	fmt.Fprintf(out, "## Answers\n\n")
	switch {
	case w.resolvedNote != "":
		fmt.Fprintf(out, "%s", w.resolvedNote)
	case w.std.n == 0:
		fmt.Fprintf(out, "Resolved: the two intervals compared do not overlap (each case ran once: within that run).")
	default:
		fmt.Fprintf(out, "Resolved: the two intervals compared do not overlap.")
	}
	fmt.Fprintf(out, " The sections below give every figure.")
	fmt.Fprintf(out, "\n\n| question | answer | figure | resolved |\n|---|---|---|---|\n")
	for _, v := range w.verdicts {
		fmt.Fprintf(out, "| %s | %s | %s | %s |\n", v.question, v.answer, v.figure, v.resolved)
	}
	fmt.Fprintln(out)
}

// resolution says whether a and b separate: "yes", or why not and what
// would resolve them.
func resolution(a, b stats.Interval) string {
	if a.Separated(b) {
		return "yes"
	}
	return "no: " + unresolved(a, b)
}

// unresolved says why two intervals that do not separate cannot be told
// apart: a side with a single value has no interval at all (which is not
// an overlap); overlapping intervals would separate at about n runs.
func unresolved(a, b stats.Interval) string {
	if a.N < 2 || b.N < 2 {
		one := []string{}
		for _, iv := range []stats.Interval{a, b} {
			if iv.N < 2 {
				one = append(one, "1 value")
			} else {
				one = append(one, present.Values(iv.N, iv.From))
			}
		}
		return fmt.Sprintf("%s against %s: a single value has no interval to compare (`--count 3` or more gives one)", one[0], one[1])
	}
	n := stats.RunsToResolve(a, b)
	switch {
	case n == 0:
		return "equal medians"
	case n > 1000:
		return fmt.Sprintf("the intervals overlap and the medians differ by %.2g%%, too little for any practical number of runs", 100*math.Abs(a.Median-b.Median)/math.Max(math.Abs(b.Median), 1e-300))
	}
	return fmt.Sprintf("the intervals overlap; about %d runs would resolve it", n)
}

// resolveNote is unresolved as a clause: "not resolved: ...".
func resolveNote(a, b stats.Interval) string { return "not resolved: " + unresolved(a, b) }

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

// allResolved folds the resolutions of several comparisons into one
// cell: "yes" when all are, else the first reason, naming what it is
// about.
func allResolved(parts map[string]string, order []string) string {
	for _, k := range order {
		if r := parts[k]; r != "yes" {
			if k == "" {
				return r
			}
			return strings.Replace(r, "no: ", "no ("+k+"): ", 1)
		}
	}
	return "yes"
}
