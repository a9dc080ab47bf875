package report

import (
	"fmt"

	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// kernelEnableCaveat explains the one kernel case where Go and perf bench
// differ by an order of magnitude (README, Known limitations).
const kernelEnableCaveat = "the Go child runtime keeps threads on the other vCPU that carry the inherited events, so toggles need cross-CPU work that perf bench's single thread avoids. The thread benchmark, which is what Elver's series measured, agrees."

func (w *reportWriter) sectionKernel() {
	w.p("## Does the Go harness measure what perf bench breakpoint measures?\n")
	cases := append(runfile.Family(w.all, "KernelThread"), runfile.Family(w.all, "KernelEnable")...)
	if len(cases) == 0 {
		w.absent("KernelThread/KernelEnable")
		return
	}
	w.p("| case | Go usecs/op | perf usecs/op | Go/perf | Go slowdown | perf slowdown |\n|---|---|---|---|---|---|")
	caveat := ""
	for _, c := range cases {
		cell := func(unit string) (stats.Interval, string) {
			if _, ok := c.Metric(unit); !ok {
				return stats.Interval{}, "n/a"
			}
			iv := runfile.IvOf(c, unit)
			return iv, fmtIv(iv, plainUnit)
		}
		g, gs := cell("usecs/op")
		pf, ps := cell("perf-usecs/op")
		r := "n/a"
		if g.N > 0 && pf.N > 0 {
			r = ratioVerdict(g, pf)
			if !g.Separated(pf) {
				r = "~ (" + r + ")"
			}
		}
		_, sd := cell("slowdown")
		_, psd := cell("perf-slowdown")
		w.p("| `%s` | %s | %s | %s | %s | %s |", c.Name, gs, ps, r, sd, psd)
		if runfile.HasParams(c, map[string]string{"passive": "0", "active": "0"}) && c.Family() == "KernelEnable" && pf.Median > 0 && g.Median/pf.Median > 3 {
			caveat = fmt.Sprintf("`%s` in Go is %s perf bench: %s", c.Name, present.Ratio(g.Median, pf.Median), kernelEnableCaveat)
		}
	}
	if caveat != "" {
		w.p("\nCause of the outlier: %s", caveat)
	}
	w.plotLink("kernel-vs-perf", "Go vs perf bench")
	w.p("")
}
