package report

import (
	"fmt"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// sectionExclusion compares reservations with and without ptrace/perf
// exclusion per live-task count, from the Exclusion cases.
func (w *reportWriter) sectionExclusion(cases []*runfile.Case) {
	w.p("mode=on checks every reservation against a global list of breakpoints under one lock (powerpc's ptrace/perf exclusion, removed in 2023); mode=off is the same allocator without it.\n")
	w.p("| live tasks | exclusion on | off | on/off |\n|---|---|---|---|")
	var last *verdict
	for _, t := range runfile.ParamValues(cases, bench.ParamTasks) {
		on := w.find("Exclusion", map[string]string{bench.ParamMode: "on", bench.ParamTasks: t})
		off := w.find("Exclusion", map[string]string{bench.ParamMode: "off", bench.ParamTasks: t})
		if on == nil || off == nil {
			continue
		}
		oi, fi := runfile.IvOf(on, bench.UnitNsPerOp), runfile.IvOf(off, bench.UnitNsPerOp)
		w.p("| %s | %s | %s | %s |", t, w.iv(oi, nsUnit), w.iv(fi, nsUnit), ratioVerdict(oi, fi))
		answer := "no cost shown"
		if oi.Separated(fi) {
			answer = fmt.Sprintf("%s the cost without it at %s tasks", present.Ratio(oi.Median, fi.Median), t)
		}
		last = &verdict{
			question: "Cost of tracking ptrace/perf conflicts (exclusion)",
			answer:   answer,
			figure:   w.iv(oi, nsUnit) + " vs " + w.iv(fi, nsUnit) + " per reservation",
			resolved: resolution(oi, fi),
		}
	}
	if last != nil {
		w.verdict(*last)
	}
	w.plotLink("exclusion-cost", "exclusion on vs off")
	w.gap()
}
