package report

import (
	"fmt"
	"strconv"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// kernelSwitchesWhy says why the Go twin makes more context switches per
// thread than perf bench and what follows under load (issue 17 §6).
const kernelSwitchesWhy = "A locked goroutine's thread does not clone: when it blocks, the runtime hands its processor to another thread, which a locked thread asks the template thread to create, and when it is woken the waker hands it the processor and sleeps; pthread_create and pthread_join block about once per thread. " +
	"Each voluntary switch waits for a CPU when other work runs, so under load the twin's time per thread grows more than perf bench's (with a `yes` pinned to each vCPU on top of other work, about 15× against perf bench's 3× on the reference VM), and its slowdown, a ratio of two runs made moments apart, follows the load more than the breakpoints: compare the two slowdowns only from runs the noise section does not mark as loaded."

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
	w.p("| case | Go usecs/op | perf usecs/op | Go/perf | Go slowdown | perf slowdown | voluntary switches per thread, Go / perf |\n|---|---|---|---|---|---|---|")
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
		sw := "n/a"
		if _, gcs := cell(bench.MetricCswPerThread); gcs != "n/a" {
			_, pcs := cell(bench.MetricPerfCswPerThread)
			sw = gcs + " / " + pcs
		}
		w.p("| `%s` | %s | %s | %s | %s | %s | %s |", c.Name, gs, ps, r, sd, psd, sw)
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
		w.kernelSwitches(thread)
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

// kernelSwitches says, with this run's counts, why the Go twin's figures
// follow the machine's load more than perf bench's, and whether c ran
// under load.
func (w *reportWriter) kernelSwitches(c *runfile.Case) {
	if _, ok := c.Metric(bench.MetricCswPerThread); !ok {
		return
	}
	if _, ok := c.Metric(bench.MetricPerfCswPerThread); !ok {
		return
	}
	f := func(unit string) string { return w.iv(runfile.IvOf(c, unit), plainUnit) }
	w.p("\nWhy the Go twin is the more load-sensitive: in `%s` it makes %s voluntary context switches per created thread where perf bench makes %s (involuntary, from preemption: %s vs %s). %s",
		c.Name, f(bench.MetricCswPerThread), f(bench.MetricPerfCswPerThread), f(bench.MetricIvcswPerThread), f(bench.MetricPerfIvcswPerThread), kernelSwitchesWhy)
	runs, loaded := 0, 0
	for _, r := range w.run.Results {
		if r.Name != c.Name {
			continue
		}
		runs++
		if l, _ := loadOf(r, w.run.Machine.NumCPU); l {
			loaded++
		}
	}
	switch {
	case loaded == 0:
	case runs == 1:
		w.p("In this run `%s` ran under load.", c.Name)
	default:
		w.p("In this run `%s` ran under load in %d of its %d runs.", c.Name, loaded, runs)
	}
}
