package report

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"bpbench/charts"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// The cross-kernel report's cost sections: one more task breakpoint's
// cost against those other threads hold, next to the model's curves, and
// the 2022 series' own benchmark.

// Thresholds of a kernel's verdict, on its cost at the largest held count
// over its cost at 64 (each over its reference): the pre-2022 walk grows
// past legacyAbove; 6.1's histograms stay at most flatBelow.
const (
	legacyAbove = 1.5
	flatBelow   = 1.3
)

// tasksVerdict classifies a kernel's curve by its last point's ratio.
func tasksVerdict(p runfile.TaskPoint) (string, bool) {
	switch {
	case p.Ratio.N == 0:
		return "has no ratio", false
	case p.Ratio.Lo > legacyAbove:
		return "grows like the model's legacy (the pre-2022 list walk)", true
	case p.Ratio.Hi <= flatBelow:
		return "stays flat like the model's linux (the 2022 rework)", true
	case p.Ratio.Median <= flatBelow:
		return fmt.Sprintf("stays flat at the median (linux-like), its interval not under %.1f", flatBelow), false
	}
	return "is not resolved", false
}

func xUnit(float64) (float64, string) { return 1, "×" }

// slope is the cost added per held breakpoint from N = 64 to the largest
// N: cost(64) × (ratio − 1) / (N − 64), with the ratio taken against the
// reference (so the machine's swings between the two cases cancel), and
// its interval.
func slope(curve []runfile.TaskPoint) (stats.Interval, bool) {
	base := runfile.PointAt(curve, 64)
	last := curve[len(curve)-1]
	if base.Cost.N == 0 || last.Ratio.N == 0 || last.Held <= 64 {
		return stats.Interval{}, false
	}
	f := base.Cost.Median / float64(last.Held-64)
	r := last.Ratio
	return stats.Interval{Median: f * (r.Median - 1), Lo: f * (r.Lo - 1), Hi: f * (r.Hi - 1), N: r.N, From: r.From, Coverage: r.Coverage}, true
}

// grownCurves returns, for each vCPU count at which the kernel's cell ran
// kernel-tasks past N = 64, the task target's curve.
func grownCurves(g kernelGrid, label string) (cpus []int, curves [][]runfile.TaskPoint) {
	for _, n := range g.cpus {
		c := g.at[label][n]
		if c == nil || !c.OK() {
			continue
		}
		if curve := c.TaskCurve("task"); len(curve) > 0 && curve[len(curve)-1].Held > 64 {
			cpus, curves = append(cpus, n), append(curves, curve)
		}
	}
	return cpus, curves
}

// kernelsVerdicts gives one verdict per kernel: which model curve its cost
// against live task breakpoints follows, at each vCPU count.
func (w *reportWriter) kernelsVerdicts(g kernelGrid) {
	w.section("Verdicts: cost against live task breakpoints\n")
	w.p("One more task breakpoint (perf_event_open + close, on all CPUs) while N task breakpoints are held on N other threads (`KernelTasks/target=task`), p50 with its 95%% interval. The ratio is the cost at N over the cost at N = 64 in the same cell, each first divided by its case's reference (a CPU-bound open+close on the same CPU, run between every two measured ops: flat in N on every kernel, it follows the machine's speed, which a shared host and emulation move by up to 2× for stretches); its interval is conservative (from the two intervals' ends). The model's strategies are `legacy` (the pre-2022 walk of every task breakpoint, per CPU) and `linux` (6.1's histograms); their ratios are of the model's own task reservation cost.\n")
	any := false
	for _, l := range g.labels {
		var parts, figs []string
		resolved, noRatio := true, false
		ns, curves := grownCurves(g, l)
		for i, curve := range curves {
			n, last := ns[i], curve[len(curve)-1]
			v, ok := tasksVerdict(last)
			resolved = resolved && ok
			noRatio = noRatio || last.Ratio.N == 0
			s := fmt.Sprintf("at %d CPUs, N = %d costs %s the N = 64 cost (%s vs %s): %s", n, last.Held, w.iv(last.Ratio, xUnit), present.FmtNs(last.Cost.Median), present.FmtNs(runfile.PointAt(curve, 64).Cost.Median), v)
			if leg := g.m.ModelCurve("legacy", n); leg[64] > 0 && leg[last.Held] > 0 {
				s += fmt.Sprintf("; model legacy %s, linux %s", present.Ratio(leg[last.Held], leg[64]), present.Ratio(g.m.ModelCurve("linux", n)[last.Held], g.m.ModelCurve("linux", n)[64]))
			}
			if sl, ok := slope(curve); ok {
				s += fmt.Sprintf("; slope %s per held breakpoint", w.iv(sl, nsUnit))
			}
			parts = append(parts, s)
			figs = append(figs, fmt.Sprintf("%d CPUs, N = %d: %s", n, last.Held, w.iv(last.Ratio, xUnit)))
		}
		if len(parts) == 0 {
			continue
		}
		any = true
		w.p("- **%s**: %s.", l, strings.Join(parts, "; "))
		res := "yes"
		switch {
		case noRatio:
			res = "no: no ratio (the N = 64 case or its reference is missing)"
		case !resolved:
			res = fmt.Sprintf("no: an interval straddles %.1f–%.1f (more ops or `--count` would narrow it)", flatBelow, legacyAbove)
		}
		w.verdict(verdict{
			question: fmt.Sprintf("Does one more task breakpoint on **%s** cost more as other threads hold more (the pre-2022 walk), or stay flat (6.1's rework)?", l),
			answer:   verdictAnswer(g, l),
			figure:   "cost at N over cost at N = 64: " + strings.Join(figs, "; "),
			resolved: res,
		})
	}
	if !any {
		w.p("No cell ran kernel-tasks up to N > 64.")
	}
	w.gap()
}

// verdictAnswer is a kernel's verdicts across its vCPU counts, folded
// into one when they agree.
func verdictAnswer(g kernelGrid, label string) string {
	var vs []string
	ns, curves := grownCurves(g, label)
	for i, curve := range curves {
		v, _ := tasksVerdict(curve[len(curve)-1])
		vs = append(vs, fmt.Sprintf("%d CPUs: %s", ns[i], v))
	}
	first := ""
	for i, v := range vs {
		_, rest, _ := strings.Cut(v, ": ")
		if i == 0 {
			first = rest
		} else if rest != first {
			return strings.Join(vs, "; ")
		}
	}
	return first
}

// kernelsTasks tabulates kernel-tasks per vCPU count: every kernel and
// target, p50 and ratio to N = 64.
func (w *reportWriter) kernelsTasks(g kernelGrid) {
	w.section("Cost against live task breakpoints, per vCPU count\n")
	w.p("p50 of one perf_event_open + close with its 95%% interval, and its ratio to the same target's N = 64 after dividing each by the interleaved reference (see the verdicts). The `cpu` target is the reference itself: its ratios are raw and carry the machine's swings. Kernels of both architectures stand side by side at each vCPU count; compare their shapes (the ratios), not their times.\n")
	any := false
	for _, n := range g.cpus {
		var cols []*runfile.Cell
		for _, l := range g.labels {
			if c := g.at[l][n]; c != nil && c.OK() && len(c.TaskCurve("task")) > 0 {
				cols = append(cols, c)
			}
		}
		if len(cols) == 0 {
			continue
		}
		any = true
		var head strings.Builder
		for _, c := range cols {
			fmt.Fprintf(&head, " %s p50 | ratio to N=64 |", c.Label)
		}
		w.p("### %d CPUs\n\n| target | held N |%s\n|---|---|%s", n, head.String(), strings.Repeat("---|---|", len(cols)))
		for _, tg := range []string{"task", "taskcpu", "cpu"} {
			var hs []int
			for _, c := range cols {
				for _, p := range c.TaskCurve(tg) {
					if !containsInt(hs, p.Held) {
						hs = append(hs, p.Held)
					}
				}
			}
			sort.Ints(hs)
			for _, h := range hs {
				var row strings.Builder
				for _, c := range cols {
					p := runfile.PointAt(c.TaskCurve(tg), h)
					fmt.Fprintf(&row, " %s | %s |", ivOrDash(w, p.Cost, nsUnit), ivOrDash(w, p.Ratio, xUnit))
				}
				w.p("| %s | %d |%s", tg, h, row.String())
			}
		}
		for _, c := range cols {
			for _, s := range c.Run.Skipped {
				if strings.HasPrefix(s.Name, "KernelTasks/") {
					w.p("\n%s skipped %s: %s", c.Label, s.Name, s.Reason)
				}
			}
		}
		w.gap()
		w.plotLink(charts.KernelTasksStem(n), fmt.Sprintf("task breakpoint cost / its N=64 cost, %d CPUs", n))
		w.gap()
	}
	if !any {
		w.absent("kernel-tasks")
		return
	}
	if plotted(w, charts.KernelTasksVCPUsStem) {
		w.p("### Against vCPUs\n\nThe task target's p50 at N = 64 and at the largest N each kernel reached, against vCPUs (%s): under TCG the CPU count costs emulation time itself, so read each kernel's growth next to the others'.\n", strings.ToUpper(strings.Join(cellAccels(g.m), ", ")))
		w.plotLink(charts.KernelTasksVCPUsStem, "task breakpoint cost against vCPUs")
		w.gap()
	}
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func ivOrDash(w *reportWriter, iv stats.Interval, u unitFmt) string {
	if iv.N == 0 {
		return "–"
	}
	return w.iv(iv, u)
}

// kernelsSeries tabulates the 2022 series' benchmark per kernel and the
// cost of each kernel over the others at each (vCPUs, threads).
func (w *reportWriter) kernelsSeries(g kernelGrid) {
	w.section("The 2022 series' benchmark\n")
	type key struct{ cpus, threads int }
	byKey := map[key]map[string]runfile.SeriesPoint{}
	var keys []key
	var rows []string
	for _, l := range g.labels {
		for _, n := range g.cpus {
			c := g.at[l][n]
			if c == nil || !c.OK() {
				continue
			}
			for _, p := range c.Series() {
				rows = append(rows, fmt.Sprintf("| %s | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s |", l, n, p.Parallelism, p.Threads, p.Repeat, ivOrDash(w, p.PerfIv, plainUnit), orDash(p.PerfB0), ivOrDash(w, p.PerfSlow, xUnit), ivOrDash(w, p.GoIv, plainUnit), orDash(p.GoB0), ivOrDash(w, p.GoSlow, xUnit)))
				k := key{n, p.Threads}
				if byKey[k] == nil {
					byKey[k] = map[string]runfile.SeriesPoint{}
					keys = append(keys, k)
				}
				byKey[k][l] = p
			}
		}
	}
	if len(rows) == 0 {
		w.absent("kernel-series")
		return
	}
	w.p("`perf bench -r R breakpoint thread -b 4 -p P -t T` (P = the CPU count, T threads a batch: the CPU count up to 8, R repeats: the fewest that create 512 threads a run, at least 4) and its Go twin, µs per thread created, against the same with -b 0, in 5 rounds that alternate the four runs. µs/op: the median of the rounds with its interval (each at %s, so that a ratio of two kernels' figures covers 95%%); slowdown: -b 4 over -b 0 paired within each round, median and interval over the rounds. The series measured `-b 4 -p 64 -t 64` on 256 CPUs: 236 s before, 0.067 s after. A guest without perf for its architecture (the host's perf is an x86 binary) has the Go twin alone.\n", pct(stats.ComponentConfidence, 1))
	w.p("| kernel | CPUs | -p | -t | -r | perf bench µs/op | perf -b 0 | perf slowdown | Go µs/op | Go -b 0 | Go slowdown |\n|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		w.p("%s", r)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].cpus < keys[j].cpus || keys[i].cpus == keys[j].cpus && keys[i].threads < keys[j].threads
	})
	var pairs []string
	for _, k := range keys {
		pts := byKey[k]
		for i, a := range g.labels {
			for _, z := range g.labels[i+1:] {
				pa, okA := pts[a]
				pz, okZ := pts[z]
				if !okA || !okZ {
					continue
				}
				var parts []string
				if pz.PerfIv.N > 0 && pa.PerfIv.N > 0 {
					parts = append(parts, "perf bench "+w.kernelRatio(stats.Ratio(pa.PerfIv, pz.PerfIv)))
				}
				if pz.GoIv.N > 0 && pa.GoIv.N > 0 {
					parts = append(parts, "Go "+w.kernelRatio(stats.Ratio(pa.GoIv, pz.GoIv)))
				}
				if len(parts) > 0 {
					pairs = append(pairs, fmt.Sprintf("- %d CPUs / %d threads: %s over %s: %s", k.cpus, k.threads, a, z, strings.Join(parts, "; ")))
				}
			}
		}
	}
	if len(pairs) > 0 {
		w.p("\nCost of one kernel over another at the same vCPUs and threads (µs per thread with 4 breakpoints, the ratio of the medians with its conservative interval from the two intervals' ends; \"unresolved\" where it holds 1):\n")
		for _, p := range pairs {
			w.p("%s", p)
		}
	}
	w.gap()
	w.plotLink(charts.KernelSeriesStem, "perf bench breakpoint thread -b 4 against vCPUs")
	w.gap()
}

// kernelRatio prints a ratio of two kernels' figures with its interval,
// and "unresolved" where the interval holds 1.
func (w *reportWriter) kernelRatio(r stats.Interval) string {
	if r.N == 0 {
		return "–"
	}
	s := w.iv(r, xUnit)
	if r.Lo <= 1 && r.Hi >= 1 {
		s += " (unresolved)"
	}
	return s
}

// orDash prints a figure, or "–" where there is none.
func orDash(v float64) string {
	if v == 0 || math.IsNaN(v) {
		return "–"
	}
	return present.TrimFloat(v)
}

func div(a, z float64) string {
	if a <= 0 || z <= 0 {
		return "–"
	}
	return present.Ratio(a, z)
}

// plotted reports whether the chart stem was drawn into the report's
// plots directory.
func plotted(w *reportWriter, stem string) bool {
	_, err := os.Stat(filepath.Join(w.dir, runfile.PlotsDir, stem+".png"))
	return err == nil
}

// kernelsSummary is the matrix in one table: per cell, conformance, the
// task breakpoint's cost growth, the 2022 benchmark and the cell's time.
func (w *reportWriter) kernelsSummary(g kernelGrid) {
	w.section("Summary\n")
	w.p("| kernel | arch | vCPUs | conform | task open+close at N=64 | largest N: cost / N=64 cost (vs reference) | perf bench thread -b 4 µs/op (slowdown over -b 0) | Go twin µs/op (slowdown) | cell wall |\n|---|---|---|---|---|---|---|---|---|")
	g.each(func(c *runfile.Cell) {
		if !c.OK() {
			w.p("| %s | %s | %d | FAILED | | | | | %.0f s |", c.Label, c.Arch, c.CPUs, c.Wall.Seconds())
			return
		}
		conf := "–"
		if r := c.Run.Conformance; r != nil {
			conf = fmt.Sprintf("%s (%d opens)", map[bool]string{true: "0 divergences", false: "DIVERGED"}[r.Agrees()], r.Opens)
		}
		at64, grow := "–", "–"
		if curve := c.TaskCurve("task"); len(curve) > 0 {
			at64 = ivOrDash(w, runfile.PointAt(curve, 64).Cost, nsUnit)
			if last := curve[len(curve)-1]; last.Held > 64 {
				grow = fmt.Sprintf("N=%d: %s", last.Held, ivOrDash(w, last.Ratio, xUnit))
			}
		}
		perf, goS := "–", "–"
		for _, p := range c.Series() {
			if p.Threads == min(p.Parallelism, 8) {
				perf = fmt.Sprintf("%s (%s)", orDash(p.Perf), ivOrDash(w, p.PerfSlow, xUnit))
				goS = fmt.Sprintf("%s (%s)", orDash(p.Go), ivOrDash(w, p.GoSlow, xUnit))
			}
		}
		w.p("| %s | %s | %d | %s | %s | %s | %s | %s | %.0f s |", c.Label, c.Arch, c.CPUs, conf, at64, grow, perf, goS, c.Wall.Seconds())
	})
	w.gap()
}
