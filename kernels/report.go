package kernels

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The cross-kernel view: what every cell's results say side by side.

// taskPoint is one kernel-tasks figure: the p50 cost of open+close with
// its interval (from the case's interleaved sub-samples, or its batches).
type taskPoint struct {
	held int
	cost interval // ns
	// ratio is cost over the same target's held=64 cost in the same cell.
	ratio interval
}

// tasksOf returns a cell's kernel-tasks points for target, by held count,
// each interval at coverage conf: the p50 cost in ns, or, with rel, the
// cost over the case's reference (a CPU-bound open+close timed around it,
// which follows the machine's speed and not the held breakpoints).
func tasksOf(c *Cell, target string, conf float64, rel bool) map[int]interval {
	out := map[int]interval{}
	if c.Run == nil {
		return out
	}
	for _, r := range c.Run.Results {
		if r.Experiment != "kernel-tasks" || r.Params["target"] != target {
			continue
		}
		held, err := strconv.Atoi(r.Params["held"])
		if err != nil {
			continue
		}
		vs := r.Batches["p50-ns"]
		if rel {
			vs = r.Batches["p50/ref"]
		}
		if len(vs) == 0 && !rel {
			vs = r.Batches["ns/op"]
		}
		if len(vs) == 0 && !rel {
			vs = []float64{r.NsPerOp}
		}
		if len(vs) > 0 {
			out[held] = medianIntervalAt(vs, conf)
		}
	}
	return out
}

// taskCurve returns the cell's points for target with their ratios to
// held=64, sorted by held.
func taskCurve(c *Cell, target string) []taskPoint {
	pts := tasksOf(c, target, confidence, false)
	// The CPU-bound target is its own reference.
	rel := target != "cpu"
	comp := tasksOf(c, target, componentConfidence, rel)
	if len(comp) == 0 {
		comp, rel = tasksOf(c, target, componentConfidence, false), false
	}
	base, okBase := comp[64]
	var out []taskPoint
	for h, iv := range pts {
		p := taskPoint{held: h, cost: iv}
		if okBase {
			p.ratio = ratio(comp[h], base)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].held < out[j].held })
	return out
}

// modelCurve returns the model's task-reservation cost for strategy s on
// cpus CPUs, by live tasks.
func modelCurve(m *Matrix, s string, cpus int) map[int]float64 {
	out := map[int]float64{}
	for _, r := range m.Model {
		if r.Params["strategy"] != s || r.Params["cpus"] != strconv.Itoa(cpus) {
			continue
		}
		n, err := strconv.Atoi(r.Params["tasks"])
		if err != nil {
			continue
		}
		if v, ok := r.Metrics["task-ns/op"]; ok {
			out[n] = v
		}
	}
	return out
}

// verdict classifies a kernel's curve against live tasks by its ratio
// at the largest held count over held=64: the pre-2022 walk (legacy)
// when the interval lies above 1.5, flat (linux) when it lies under 1.3.
func verdict(p taskPoint) string {
	switch {
	case !p.ratio.ok():
		return "no ratio"
	case p.ratio.Lo > 1.5:
		return "grows like the model's legacy (the pre-2022 list walk)"
	case p.ratio.Hi <= 1.3:
		return "flat like the model's linux (the 2022 rework)"
	case p.ratio.Median <= 1.3:
		return "flat at the median (linux-like), interval not under 1.3"
	}
	return "not resolved"
}

// fmtNs prints nanoseconds with a unit.
func fmtNs(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	}
	return fmt.Sprintf("%.3g ns", ns)
}

func fmtIv(iv interval, f func(float64) string) string {
	if !iv.ok() {
		return "–"
	}
	s := fmt.Sprintf("%s [%s–%s]", f(iv.Median), f(iv.Lo), f(iv.Hi))
	if iv.Coverage < confidence-1e-9 && iv.N > 1 {
		s += fmt.Sprintf(" (%d values, %.0f%%)", iv.N, 100*iv.Coverage)
	}
	return s
}

func fmtX(v float64) string { return fmt.Sprintf("%.2f×", v) }

// cellsBy returns the successful VM and host cells grouped: labels in
// order of appearance, vCPU counts sorted, and the cell of each pair.
func cellsBy(m *Matrix) (labels []string, cpus []int, at map[string]map[int]*Cell) {
	at = map[string]map[int]*Cell{}
	seenCPU := map[int]bool{}
	for _, c := range m.Cells {
		if at[c.Label] == nil {
			at[c.Label] = map[int]*Cell{}
			labels = append(labels, c.Label)
		}
		at[c.Label][c.CPUs] = c
		if !seenCPU[c.CPUs] {
			seenCPU[c.CPUs] = true
			cpus = append(cpus, c.CPUs)
		}
	}
	sort.Ints(cpus)
	return labels, cpus, at
}

// Report is the cross-kernel report.md: divergences first, then every
// cell, one verdict per kernel, cost against live task breakpoints and
// against vCPUs, and the 2022 series' benchmark.
func Report(m *Matrix, plots []string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	accel := strings.ToUpper(m.Accel)
	if accel == "" {
		accel = "none"
	}
	w("# Real kernels: %s\n\n", m.Started.Format("2006-01-02 15:04 UTC"))
	w("%d cells (%s), %s, in %v. Accelerator: **%s** (%s).", len(m.Cells), m.Arch, jobText(m.Job), m.Duration.Round(1e9), accel, m.AccelWhy)
	if m.Accel == "tcg" {
		w(" Under TCG every time is emulated, about 15× native, and work that crosses CPUs costs emulation time too: compare shapes within one kernel (ratios to its own held=64), and kernels with each other at the same vCPU count; never absolute times with the host cell.")
	}
	w("\n\n")

	// Divergences are findings: first.
	var div, failed []string
	for _, c := range m.Cells {
		if !c.OK() {
			failed = append(failed, fmt.Sprintf("- **%s** failed: %s", c.Name, strings.ReplaceAll(c.Error, "\n", "\n  ")))
			continue
		}
		if r := c.Run.Conformance; r != nil && !r.Agrees() {
			div = append(div, fmt.Sprintf("- **%s** (%s): %s", c.Name, c.Release, r.Summary()))
		}
	}
	w("## Conformance\n\n")
	switch {
	case len(div) > 0:
		w("**The model diverged from the kernel** (a finding; each divergence is in the cell's report):\n\n%s\n\n", strings.Join(div, "\n"))
	case len(failed) < len(m.Cells):
		w("Zero divergences: the model agreed with every kernel that ran, op by op.\n\n")
	}
	if len(failed) > 0 {
		w("Cells that produced no results:\n\n%s\n\n", strings.Join(failed, "\n"))
	}

	labels, cpus, at := cellsBy(m)
	w("## Cells\n\n| cell | kernel | vCPUs | conform | facts | boot | job | wall |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range labels {
		for _, n := range cpus {
			c := at[l][n]
			if c == nil {
				continue
			}
			conf, facts, boot, job := "FAILED", "", "", ""
			if c.OK() && c.Run.Conformance != nil {
				r := c.Run.Conformance
				conf = fmt.Sprintf("%s, %d opens", map[bool]string{true: "agreed", false: "DIVERGED"}[r.Agrees()], r.Opens)
				var fs []string
				for _, f := range r.Facts {
					if f.Name == "slots-per-thread" || f.Name == "inst-data-one-pool" {
						fs = append(fs, f.Name+" "+f.Value)
					}
				}
				facts = strings.Join(fs, ", ")
			}
			if c.Guest != nil {
				boot = fmt.Sprintf("%.1f s", c.Guest.UptimeStart)
				job = fmt.Sprintf("%.1f s", c.Guest.UptimeEnd-c.Guest.UptimeStart)
			}
			w("| [%s](%s/report.md) | %s %s | %d | %s | %s | %s | %s | %.1f s |\n", c.Name, c.Name, c.Kernel, c.Release, c.CPUs, conf, facts, boot, job, c.Wall.Seconds())
		}
	}
	w("\nboot: guest uptime when init started; job: conform and the experiments inside; wall: QEMU's start to its exit (the host cell: its run).\n\n")

	writeSummary(&b, m, labels, cpus, at)
	writeVerdicts(&b, m, labels, cpus, at)
	writeTasks(&b, m, labels, cpus, at, plots)
	writeSeries(&b, m, labels, cpus, at, plots)
	return b.String()
}

func jobText(j Job) string {
	s := "conform"
	if len(j.Experiments) > 0 {
		s += " + " + strings.Join(j.Experiments, ", ")
	}
	if j.Full {
		s += " (full)"
	}
	if j.Count > 1 {
		s += fmt.Sprintf(", count %d", j.Count)
	}
	return s
}

// writeVerdicts gives one verdict per kernel: which model curve its cost
// against live task breakpoints follows, at each vCPU count.
func writeVerdicts(b *strings.Builder, m *Matrix, labels []string, cpus []int, at map[string]map[int]*Cell) {
	fmt.Fprintf(b, "## Verdicts: cost against live task breakpoints\n\n")
	fmt.Fprintf(b, "One more task breakpoint (perf_event_open + close, on all CPUs) while N task breakpoints are held on N other threads (`KernelTasks/target=task`), p50 with its 95%% interval. The ratio is the cost at N over the cost at N = 64 in the same cell, each first divided by its case's reference (a CPU-bound open+close on the same CPU, run between every two measured ops: flat in N on every kernel, it follows the machine's speed, which a shared host and emulation move by up to 2× for stretches); its interval is conservative (from the two intervals' ends). The model's strategies are `legacy` (the pre-2022 walk of every task breakpoint, per CPU) and `linux` (6.1's histograms); their ratios are of the model's own task reservation cost.\n\n")
	any := false
	for _, l := range labels {
		var parts []string
		for _, n := range cpus {
			c := at[l][n]
			if c == nil || !c.OK() {
				continue
			}
			curve := taskCurve(c, "task")
			if len(curve) == 0 {
				continue
			}
			last := curve[len(curve)-1]
			if last.held <= 64 {
				continue
			}
			s := fmt.Sprintf("at %d CPUs, N = %d costs %s the N = 64 cost (%s vs %s): %s", n, last.held, fmtIv(last.ratio, fmtX), fmtNs(last.cost.Median), fmtNs(pointAt(curve, 64).cost.Median), verdict(last))
			if lin := modelCurve(m, "legacy", n); lin[64] > 0 && lin[last.held] > 0 {
				s += fmt.Sprintf("; model legacy %.2f×, linux %.2f×", lin[last.held]/lin[64], safeRatio(modelCurve(m, "linux", n), last.held))
			}
			if sl, ok := slope(curve); ok {
				s += fmt.Sprintf("; slope %s per held breakpoint", fmtIv(sl, fmtNs))
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			continue
		}
		any = true
		fmt.Fprintf(b, "- **%s**: %s.\n", l, strings.Join(parts, "; "))
	}
	if !any {
		fmt.Fprintf(b, "No cell ran kernel-tasks up to N > 64.\n")
	}
	fmt.Fprintf(b, "\n")
}

func pointAt(curve []taskPoint, held int) taskPoint {
	for _, p := range curve {
		if p.held == held {
			return p
		}
	}
	return taskPoint{}
}

func safeRatio(c map[int]float64, n int) float64 {
	if c[64] <= 0 {
		return math.NaN()
	}
	return c[n] / c[64]
}

// slope is the cost added per held breakpoint from N = 64 to the
// largest N: cost(64) x (ratio - 1) / (N - 64), with the ratio taken
// against the reference (so the machine's swings between the two cases
// cancel) and its interval.
func slope(curve []taskPoint) (interval, bool) {
	base := pointAt(curve, 64)
	last := curve[len(curve)-1]
	if !base.cost.ok() || !last.ratio.ok() || last.held <= 64 {
		return interval{}, false
	}
	f := base.cost.Median / float64(last.held-64)
	return interval{Median: f * (last.ratio.Median - 1), Lo: f * (last.ratio.Lo - 1), Hi: f * (last.ratio.Hi - 1), N: last.ratio.N, Coverage: confidence}, true
}

// writeTasks tabulates kernel-tasks per vCPU count: every kernel and
// target, p50 and ratio to N = 64.
func writeTasks(b *strings.Builder, m *Matrix, labels []string, cpus []int, at map[string]map[int]*Cell, plots []string) {
	fmt.Fprintf(b, "## Cost against live task breakpoints, per vCPU count\n\n")
	fmt.Fprintf(b, "p50 of one perf_event_open + close with its 95%% interval, and its ratio to the same target's N = 64 after dividing each by the interleaved reference (see the verdicts). The `cpu` target is the reference itself: its ratios are raw and carry the machine's swings.\n\n")
	for _, n := range cpus {
		var cols []*Cell
		for _, l := range labels {
			if c := at[l][n]; c != nil && c.OK() && len(taskCurve(c, "task")) > 0 {
				cols = append(cols, c)
			}
		}
		if len(cols) == 0 {
			continue
		}
		fmt.Fprintf(b, "### %d CPUs\n\n| target | held N |", n)
		for _, c := range cols {
			fmt.Fprintf(b, " %s p50 | ratio to N=64 |", c.Label)
		}
		fmt.Fprintf(b, "\n|---|---|%s\n", strings.Repeat("---|---|", len(cols)))
		for _, tg := range []string{"task", "taskcpu", "cpu"} {
			helds := map[int]bool{}
			for _, c := range cols {
				for _, p := range taskCurve(c, tg) {
					helds[p.held] = true
				}
			}
			var hs []int
			for h := range helds {
				hs = append(hs, h)
			}
			sort.Ints(hs)
			for _, h := range hs {
				fmt.Fprintf(b, "| %s | %d |", tg, h)
				for _, c := range cols {
					p := pointAt(taskCurve(c, tg), h)
					fmt.Fprintf(b, " %s | %s |", fmtIv(p.cost, fmtNs), fmtIv(p.ratio, fmtX))
				}
				fmt.Fprintf(b, "\n")
			}
		}
		for _, c := range cols {
			for _, s := range c.Run.Skipped {
				if strings.HasPrefix(s.Name, "KernelTasks/") {
					fmt.Fprintf(b, "\n%s skipped %s: %s", c.Label, s.Name, s.Reason)
				}
			}
		}
		if p := plotNamed(plots, fmt.Sprintf("tasks-ratio-cpus%d", n)); p != "" {
			fmt.Fprintf(b, "\n\n![task breakpoint cost / its N=64 cost, %d CPUs](plots/%s)\n", n, p)
		}
		fmt.Fprintf(b, "\n")
	}
	if p := plotNamed(plots, "tasks-vcpus"); p != "" {
		fmt.Fprintf(b, "### Against vCPUs\n\nThe task target's p50 at N = 64 and at the largest N each kernel reached, against vCPUs (%s): under TCG the CPU count costs emulation time itself, so read each kernel's growth next to the others'.\n\n![task breakpoint cost against vCPUs](plots/%s)\n\n", strings.ToUpper(m.Accel), p)
	}
}

// seriesPoint is one kernel-series figure.
type seriesPoint struct {
	cpus, par, threads      int
	perf, perfB0, goU, goB0 float64
	goIv                    interval
}

func seriesOf(c *Cell) []seriesPoint {
	var out []seriesPoint
	if c.Run == nil {
		return out
	}
	for _, r := range c.Run.Results {
		if r.Experiment != "kernel-series" {
			continue
		}
		p := seriesPoint{cpus: c.CPUs}
		p.par, _ = strconv.Atoi(r.Params["parallelism"])
		p.threads, _ = strconv.Atoi(r.Params["threads"])
		p.perf, p.perfB0 = r.Metrics["perf-usecs/op"], r.Metrics["perf-b0-usecs/op"]
		p.goU, p.goB0 = r.Metrics["usecs/op"], r.Metrics["b0-usecs/op"]
		p.goIv = medianInterval(r.Batches["usecs/op"])
		out = append(out, p)
	}
	return out
}

// writeSeries tabulates the 2022 series' benchmark per kernel and the
// first kernel's cost over the others' at each (vCPUs, threads).
func writeSeries(b *strings.Builder, m *Matrix, labels []string, cpus []int, at map[string]map[int]*Cell, plots []string) {
	fmt.Fprintf(b, "## The 2022 series' benchmark\n\n`perf bench -r P breakpoint thread -b 4 -p P -t T` (P = the CPU count, T threads a batch: the CPU count up to 8) and its Go twin, µs per thread created, against the same with -b 0. The series measured `-b 4 -p 64 -t 64` on 256 CPUs: 236 s before, 0.067 s after.\n\n")
	fmt.Fprintf(b, "| kernel | CPUs | -p | -t | perf bench µs/op | perf -b 0 | perf slowdown | Go µs/op | Go -b 0 | Go slowdown |\n|---|---|---|---|---|---|---|---|---|---|\n")
	rows := 0
	byKey := map[string]map[string]seriesPoint{}
	for _, l := range labels {
		for _, n := range cpus {
			c := at[l][n]
			if c == nil || !c.OK() {
				continue
			}
			for _, p := range seriesOf(c) {
				rows++
				fmt.Fprintf(b, "| %s | %d | %d | %d | %s | %s | %s | %s | %s | %s |\n", l, n, p.par, p.threads, num(p.perf), num(p.perfB0), div(p.perf, p.perfB0), fmtIv(p.goIv, num), num(p.goB0), div(p.goU, p.goB0))
				k := fmt.Sprintf("%d/%d", n, p.threads)
				if byKey[k] == nil {
					byKey[k] = map[string]seriesPoint{}
				}
				byKey[k][l] = p
			}
		}
	}
	if rows == 0 {
		fmt.Fprintf(b, "\nNo cell ran kernel-series.\n\n")
		return
	}
	// The cost of each kernel over the last kernel in the list that ran
	// (the newest, by the default order), at the same size.
	fmt.Fprintf(b, "\nCost of one kernel over another at the same vCPUs and threads (perf bench µs/op with 4 breakpoints):\n\n")
	var keys []string
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.Split(keys[i], "/")[0])
		c, _ := strconv.Atoi(strings.Split(keys[j], "/")[0])
		return a < c || a == c && keys[i] < keys[j]
	})
	for _, k := range keys {
		pts := byKey[k]
		for i, a := range labels {
			for _, z := range labels[i+1:] {
				pa, okA := pts[a]
				pz, okZ := pts[z]
				if !okA || !okZ || pz.perf <= 0 {
					continue
				}
				fmt.Fprintf(b, "- %s CPUs / %s threads: %s over %s: perf bench %s, Go %s\n", strings.Split(k, "/")[0], strings.Split(k, "/")[1], a, z, div(pa.perf, pz.perf), div(pa.goU, pz.goU))
			}
		}
	}
	if p := plotNamed(plots, "series"); p != "" {
		fmt.Fprintf(b, "\n![perf bench breakpoint thread -b 4 against vCPUs](plots/%s)\n", p)
	}
	fmt.Fprintf(b, "\n")
}

func num(v float64) string {
	if v == 0 || math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.3g", v)
}

func div(a, z float64) string {
	if a <= 0 || z <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/z)
}

func plotNamed(plots []string, stem string) string {
	for _, p := range plots {
		if p == stem+".png" {
			return p
		}
	}
	return ""
}

// writeSummary is the matrix in one table: per cell, conformance, the
// task breakpoint's cost growth, the 2022 benchmark and the cell's time.
func writeSummary(b *strings.Builder, m *Matrix, labels []string, cpus []int, at map[string]map[int]*Cell) {
	fmt.Fprintf(b, "## Summary\n\n| kernel | vCPUs | conform | task open+close at N=64 | largest N: cost / N=64 cost (vs reference) | perf bench thread -b 4 µs/op (slowdown over -b 0) | Go twin µs/op (slowdown) | cell wall |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range labels {
		for _, n := range cpus {
			c := at[l][n]
			if c == nil {
				continue
			}
			if !c.OK() {
				fmt.Fprintf(b, "| %s | %d | FAILED | | | | | %.0f s |\n", l, n, c.Wall.Seconds())
				continue
			}
			conf := "–"
			if r := c.Run.Conformance; r != nil {
				conf = fmt.Sprintf("%s (%d opens)", map[bool]string{true: "0 divergences", false: "DIVERGED"}[r.Agrees()], r.Opens)
			}
			at64, grow := "–", "–"
			if curve := taskCurve(c, "task"); len(curve) > 0 {
				at64 = fmtIv(pointAt(curve, 64).cost, fmtNs)
				if last := curve[len(curve)-1]; last.held > 64 {
					grow = fmt.Sprintf("N=%d: %s", last.held, fmtIv(last.ratio, fmtX))
				}
			}
			perf, goS := "–", "–"
			for _, p := range seriesOf(c) {
				if p.threads == min(p.par, 8) {
					perf = fmt.Sprintf("%s (%s)", num(p.perf), div(p.perf, p.perfB0))
					goS = fmt.Sprintf("%s (%s)", num(p.goU), div(p.goU, p.goB0))
				}
			}
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %.0f s |\n", l, n, conf, at64, grow, perf, goS, c.Wall.Seconds())
		}
	}
	fmt.Fprintf(b, "\n")
}
