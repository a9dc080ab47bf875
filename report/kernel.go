package report

import (
	"fmt"
	"strconv"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// kernelEnableCaveat explains the one kernel case where Go and perf bench
// differ by an order of magnitude (README, Known limitations).
const kernelEnableCaveat = "the Go child runtime keeps threads on the other vCPU that carry the inherited events, so toggles need cross-CPU work that perf bench's single thread avoids. The thread benchmark, which is what Elver's series measured, agrees."

func (w *reportWriter) sectionKernel() {
	w.section("Does the Go harness measure what perf bench breakpoint measures?\n")
	cases := append(runfile.Family(w.all, "KernelThread"), runfile.Family(w.all, "KernelEnable")...)
	if len(cases) == 0 {
		w.absent("KernelThread/KernelEnable")
		return
	}
	w.p("Microseconds per operation of each workload in the Go harness and in `perf bench breakpoint`, run alternately; slowdown is against the same tool's run without breakpoints.\n")
	w.p("| case | Go usecs/op | perf usecs/op | Go/perf | Go slowdown | perf slowdown |\n|---|---|---|---|---|---|")
	caveat := ""
	var thread *runfile.Case
	topB := -1
	for _, c := range cases {
		cell := func(unit string) (stats.Interval, string) {
			if _, ok := c.Metric(unit); !ok {
				return stats.Interval{}, "n/a"
			}
			iv := runfile.IvOf(c, unit)
			return iv, w.iv(iv, plainUnit)
		}
		g, gs := cell(bench.MetricUsecs)
		pf, ps := cell(bench.MetricPerfUsecs)
		r := "n/a"
		if g.N > 0 && pf.N > 0 {
			r = ratioVerdict(g, pf)
		}
		_, sd := cell("slowdown")
		_, psd := cell("perf-slowdown")
		w.p("| `%s` | %s | %s | %s | %s | %s |", c.Name, gs, ps, r, sd, psd)
		if c.Family() == "KernelEnable" && runfile.HasParams(c, map[string]string{"passive": "0", "active": "0"}) && g.Separated(pf) && g.Median/pf.Median > 3 {
			caveat = fmt.Sprintf("`%s` in Go is %s perf bench: %s", c.Name, present.Ratio(g.Median, pf.Median), kernelEnableCaveat)
		}
		if b, err := strconv.Atoi(bench.NameParams(c.Name)[bench.ParamBreakpoints]); err == nil && c.Family() == "KernelThread" && b > topB {
			if _, ok := c.Metric(bench.MetricPerfSlowdown); ok {
				thread, topB = c, b
			}
		}
	}
	if caveat != "" {
		w.p("\nCause of the outlier: %s", caveat)
	}
	if thread != nil {
		gi, pi := runfile.IvOf(thread, bench.MetricSlowdown), runfile.IvOf(thread, bench.MetricPerfSlowdown)
		answer := fmt.Sprintf("the slowdowns differ: Go's is %s perf bench's", present.Ratio(gi.Median, pi.Median))
		res := "yes"
		switch {
		case gi.N < 2 || pi.N < 2:
			answer, res = "not shown", "no: "+unresolved(gi, pi)
		case !gi.Separated(pi):
			answer, res = "yes: the slowdowns agree within their intervals", "no difference found ("+present.Values(gi.N, gi.From)+")"
		}
		w.verdict(verdict{
			question: "Does the Go twin measure what perf bench measures? (`" + present.PerfBenchArgs(thread.Name) + "`)",
			answer:   answer,
			figure:   fmt.Sprintf("slowdown %s (Go) vs %s (perf bench)", w.iv(gi, plainUnit), w.iv(pi, plainUnit)),
			resolved: res,
		})
	}
	w.plotLink("kernel-vs-perf", "Go vs perf bench")
	w.gap()
}
