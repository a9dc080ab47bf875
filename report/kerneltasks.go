package report

import (
	"strconv"

	"bpbench/internal/present"
	"bpbench/runfile"
)

// sectionKernelTasks answers, for the kernel this run ran on, whether
// reserving one more breakpoint costs more the more task breakpoints
// other threads hold (kernel-tasks, the real kernel's twin of the model's
// Tasks), and what the 2022 series' own benchmark costs on it
// (kernel-series). `bpbench kernels` asks the same of other kernels side
// by side.
func (w *reportWriter) sectionKernelTasks(cases []*runfile.Case) {
	cell := &runfile.Cell{Run: w.run, CPUs: w.run.Machine.NumCPU}
	w.p("One more breakpoint (perf_event_open + close) while N task breakpoints are held on N other threads, on this run's kernel (%s): for the measuring thread on all CPUs (task), on its CPU (taskcpu), and CPU-bound (cpu). p50 with its 95%% interval; the ratio is the cost at N over the cost at N = 64, each first divided by its case's reference (a CPU-bound open+close run between every two measured ops, which follows the machine's speed and not N), with a conservative interval (the cpu target is its own reference, so its ratios are raw and follow the machine's speed). Before Linux 6.1 a task reservation walked every task breakpoint in the system; since, it reads histograms. `bpbench kernels` boots 5.10, 6.1 and 6.12 to compare.\n", w.run.Machine.Kernel)
	w.p("| target | N | p50 | / N = 64 |\n|---|---|---|---|")
	for _, target := range []string{"task", "taskcpu", "cpu"} {
		for _, p := range cell.TaskCurve(target) {
			ratio := "–"
			if p.Ratio.N > 0 && p.Held != 64 {
				ratio = w.iv(p.Ratio, xUnit)
			}
			w.p("| %s | %d | %s | %s |", target, p.Held, w.iv(p.Cost, nsUnit), ratio)
		}
	}
	w.gap()
	curve := cell.TaskCurve("task")
	if len(curve) > 0 {
		last := curve[len(curve)-1]
		says, resolved := tasksVerdict(last)
		res := "yes"
		if !resolved {
			res = "no: " + says
		}
		if last.Ratio.N > 0 && last.Held > 64 {
			w.p("At N = %d this kernel's task reservation costs %s its N = 64 cost: it %s.", last.Held, w.iv(last.Ratio, xUnit), says)
			w.verdict(verdict{
				question: "Does the real kernel's reservation cost grow with live task breakpoints? (" + w.run.Machine.Kernel + ")",
				answer:   "cost at N = " + strconv.Itoa(last.Held) + " over N = 64: it " + says,
				figure:   w.iv(last.Ratio, xUnit) + "; " + w.iv(last.Cost, nsUnit) + " at N = " + strconv.Itoa(last.Held),
				resolved: res,
			})
		}
	}
	w.gap()
	if series := cell.Series(); len(series) > 0 {
		w.p("The 2022 series' own benchmark here (`perf bench breakpoint thread -b 4`, scaled to %s):\n", present.Plural(w.run.Machine.NumCPU, "CPU"))
		w.p("| parallelism | threads per batch | repeats | perf bench µs/op (slowdown over -b 0, paired per round) | Go twin µs/op (slowdown) |\n|---|---|---|---|---|")
		for _, p := range series {
			w.p("| %d | %d | %d | %s (%s) | %s (%s) |", p.Parallelism, p.Threads, p.Repeat,
				ivOrDash(w, p.PerfIv, plainUnit), ivOrDash(w, p.PerfSlow, xUnit), w.iv(p.GoIv, suffixUnit("")), ivOrDash(w, p.GoSlow, xUnit))
		}
		w.gap()
	}
}
