package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"bpbench/bench"
	"bpbench/charts"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// sectionScaling answers which strategy scales with concurrent
// reservers, from the Scaling cases: one table per mix.
func (w *reportWriter) sectionScaling(cases []*runfile.Case) {
	ncpu := w.run.Machine.NumCPU
	for _, mix := range runfile.ParamValues(cases, bench.ParamMix) {
		if mix != "" {
			w.p("### mix=%s\n", mix)
		}
		w.scalingTable(runfile.Subset(cases, bench.ParamMix, mix), mix, ncpu)
	}
	w.spurious("Scaling", "scaling")
	for _, mix := range runfile.ParamValues(cases, bench.ParamMix) {
		w.plotLink(charts.ScalingStem(mix), "throughput vs goroutines"+strings.TrimSuffix(" mix="+mix, " mix="))
	}
	w.gap()
}

// goroutinesLabel names a goroutine count, marking counts above the
// machine's CPUs as time-sliced.
func goroutinesLabel(g, ncpu int) string {
	s := present.Plural(g, "goroutine")
	if ncpu > 0 && g > ncpu {
		s += fmt.Sprintf(" (time-sliced on %d vCPUs)", ncpu)
	}
	return s
}

func (w *reportWriter) scalingTable(cases []*runfile.Case, mix string, ncpu int) {
	maxG := 0
	for _, c := range cases {
		g, _ := strconv.Atoi(bench.NameParams(c.Name)[bench.ParamGoroutines])
		maxG = max(maxG, g)
	}
	type row struct {
		strategy string
		one, top stats.Interval
	}
	var rows []row
	for _, st := range runfile.ParamValues(cases, bench.ParamStrategy) {
		r := row{strategy: st}
		for _, c := range cases {
			p := bench.NameParams(c.Name)
			if p[bench.ParamStrategy] != st {
				continue
			}
			switch p[bench.ParamGoroutines] {
			case "1":
				r.one = runfile.TputIv(c)
			case strconv.Itoa(maxG):
				r.top = runfile.TputIv(c)
			}
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].top.Median > rows[j].top.Median })
	w.p("| strategy | ops/s at 1 goroutine | ops/s at %s | scaling |\n|---|---|---|---|", goroutinesLabel(maxG, ncpu))
	for _, r := range rows {
		w.p("| %s | %s | %s | %s |", w.strat(r.strategy), w.iv(r.one, countUnit), w.iv(r.top, countUnit), present.Ratio(r.top.Median, r.one.Median))
	}
	falls := false
	for _, r := range rows {
		falls = falls || (r.top.Separated(r.one) && r.top.Median < r.one.Median)
	}
	if falls && ncpu > 0 && maxG > ncpu {
		w.p("\nScaling below 1×: no gain is possible beyond %d goroutines, where the %d vCPUs are time-sliced; that throughput falls rather than stays flat is contention on the allocator's shared state and preemption inside its critical sections, which this run does not measure apart.", ncpu, ncpu)
	} else if falls {
		w.p("\nScaling below 1× with no more goroutines than vCPUs: **unexplained**.")
	}
	if len(rows) > 1 && rows[len(rows)-1].top.Median > 0 {
		a, b, z := rows[0], rows[1], rows[len(rows)-1]
		at := "At " + goroutinesLabel(maxG, ncpu)
		answer := fmt.Sprintf("%s has the highest median at %s; its lead over %s is not resolved", w.strat(a.strategy), present.Plural(maxG, "goroutine"), w.strat(b.strategy))
		if a.top.Separated(b.top) {
			w.p("\n%s %s is fastest, %s the throughput of the next, %s, and %s that of the slowest, %s.", at, w.strat(a.strategy), present.Ratio(a.top.Median, b.top.Median), w.strat(b.strategy), present.Ratio(a.top.Median, z.top.Median), w.strat(z.strategy))
			answer = fmt.Sprintf("%s is fastest at %s, %s the next (%s)", w.strat(a.strategy), present.Plural(maxG, "goroutine"), present.Ratio(a.top.Median, b.top.Median), w.strat(b.strategy))
		} else {
			w.p("\n%s %s has the highest median, but its lead over %s is %s.", at, w.strat(a.strategy), w.strat(b.strategy), resolveNote(a.top, b.top))
			if a.top.Separated(z.top) {
				w.p("It is %s the throughput of the slowest, %s.", present.Ratio(a.top.Median, z.top.Median), w.strat(z.strategy))
			}
		}
		q := "Synchronising reservations under contention"
		if mix != "" {
			q += " (mix=" + mix + ")"
		}
		w.verdict(verdict{
			question: q,
			answer:   answer,
			figure:   fmt.Sprintf("%s vs %s ops/s; 1 goroutine: %s", w.iv(a.top, countUnit), w.iv(b.top, countUnit), w.iv(a.one, countUnit)),
			resolved: resolution(a.top, b.top),
		})
	}
	w.gap()
}

// cpusLabel says which CPU count a Tasks case ran at: the host's or a
// simulated one.
func cpusLabel(cpus string, host int) string {
	switch {
	case cpus == "":
		return "at the host's CPU count"
	case cpus == strconv.Itoa(host):
		return fmt.Sprintf("at %s CPUs (the host's count)", cpus)
	}
	return fmt.Sprintf("at %s simulated CPUs", cpus)
}

// tasksGrid is the Tasks cases by CPU count, task count and strategy.
type tasksGrid map[string]map[int]map[string]*runfile.Case

func (g tasksGrid) counts(cpus string) []int {
	var out []int
	for n := range g[cpus] {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// sectionTasks answers whether reservation cost grows with live tasks and
// with CPUs, from the Tasks cases.
func (w *reportWriter) sectionTasks(cases []*runfile.Case) {
	grid := tasksGrid{}
	for _, c := range cases {
		p := bench.NameParams(c.Name)
		n, err := strconv.Atoi(p[bench.ParamTasks])
		if err != nil {
			continue
		}
		if grid[p[bench.ParamCPUs]] == nil {
			grid[p[bench.ParamCPUs]] = map[int]map[string]*runfile.Case{}
		}
		if grid[p[bench.ParamCPUs]][n] == nil {
			grid[p[bench.ParamCPUs]][n] = map[string]*runfile.Case{}
		}
		grid[p[bench.ParamCPUs]][n][p[bench.ParamStrategy]] = c
	}
	cpuCounts := runfile.ParamValues(cases, bench.ParamCPUs)
	strategies := runfile.ParamValues(cases, bench.ParamStrategy)
	host := w.run.Machine.NumCPU
	for _, cpus := range cpuCounts {
		counts := grid.counts(cpus)
		if len(counts) == 0 {
			continue
		}
		lo, hi := counts[0], counts[len(counts)-1]
		where := cpusLabel(cpus, host)
		w.p("**Per reservation %s:**\n", where)
		w.p("| strategy | %s | %s | growth |\n|---|---|---|---|", present.Plural(lo, "live task"), present.Plural(hi, "live task"))
		for _, st := range strategies {
			a, b := grid[cpus][lo][st], grid[cpus][hi][st]
			if a == nil && b == nil {
				continue
			}
			cell := func(c *runfile.Case) string {
				if c == nil {
					return "n/a (skipped)"
				}
				return w.iv(runfile.IvOf(c, bench.UnitNsPerOp), nsUnit)
			}
			growth := "n/a"
			if a != nil && b != nil {
				ai, bi := runfile.IvOf(a, bench.UnitNsPerOp), runfile.IvOf(b, bench.UnitNsPerOp)
				growth = ratioVerdict(bi, ai)
				if ai.Separated(bi) && bi.Median < ai.Median {
					growth += "; cheaper with more live tasks: **unexplained**"
				}
			}
			w.p("| %s | %s | %s | %s |", w.strat(st), cell(a), cell(b), growth)
		}
		w.gap()
		if cpus == cpuCounts[0] {
			w.tasksVerdict(grid, cpus, lo)
		}
	}
	w.tasksCPUs(grid, cpuCounts, strategies)
	for _, cpus := range cpuCounts {
		w.plotLink(charts.TasksStem(cpus), "cost vs live tasks"+strings.TrimSuffix(", cpus="+cpus, ", cpus="))
	}
	w.plotLink("tasks-cpus", "cost vs CPUs")
	w.gap()
}

// tasksVerdict answers at the host's CPU count (the first measured): the
// slowest and the fastest at the most live tasks that two strategies or
// more ran.
func (w *reportWriter) tasksVerdict(grid tasksGrid, cpus string, lo int) {
	counts := grid.counts(cpus)
	for i := len(counts) - 1; i >= 0; i-- {
		n := counts[i]
		if len(grid[cpus][n]) < 2 || n == lo {
			continue
		}
		slow, fast := extremes(grid[cpus][n])
		si, fi := runfile.IvOf(grid[cpus][n][slow], bench.UnitNsPerOp), runfile.IvOf(grid[cpus][n][fast], bench.UnitNsPerOp)
		growth := ""
		if a := grid[cpus][lo][slow]; a != nil {
			growth = fmt.Sprintf("; it costs %s at %s", present.FmtNs(runfile.IvOf(a, bench.UnitNsPerOp).Median), present.Plural(lo, "task"))
		}
		w.verdict(verdict{
			question: "Cost against live tasks, " + strings.TrimPrefix(cpusLabel(cpus, w.run.Machine.NumCPU), "at "),
			answer:   fmt.Sprintf("at %d tasks the slowest, %s, is %s the fastest, %s%s", n, w.strat(slow), present.Ratio(si.Median, fi.Median), w.strat(fast), growth),
			figure:   w.iv(si, nsUnit) + " vs " + w.iv(fi, nsUnit),
			resolved: resolution(si, fi),
		})
		return
	}
}

// extremes returns the strategies with the highest and the lowest median.
func extremes(by map[string]*runfile.Case) (slow, fast string) {
	var hi, lo float64
	for st, c := range by {
		v := c.NsPerOp
		if slow == "" || v > hi || (v == hi && st < slow) {
			slow, hi = st, v
		}
		if fast == "" || v < lo || (v == lo && st < fast) {
			fast, lo = st, v
		}
	}
	return slow, fast
}

// tasksCPUs compares every strategy at the host's CPU count and the most
// simulated CPUs, at the most live tasks both ran.
func (w *reportWriter) tasksCPUs(grid tasksGrid, cpuCounts, strategies []string) {
	if len(cpuCounts) < 2 {
		return
	}
	a, b := cpuCounts[0], cpuCounts[len(cpuCounts)-1]
	n := 0
	for _, m := range grid.counts(a) {
		if grid[b][m] != nil {
			n = m
		}
	}
	if n == 0 {
		return
	}
	w.p("**Per reservation at %d live tasks, %s CPUs against %s:**\n", n, a, b)
	w.p("| strategy | %s CPUs | %s CPUs | growth |\n|---|---|---|---|", a, b)
	var grew []string
	var worst string
	var worstIv, worstBase stats.Interval
	for _, st := range strategies {
		ca, cb := grid[a][n][st], grid[b][n][st]
		if ca == nil || cb == nil {
			continue
		}
		ai, bi := runfile.IvOf(ca, bench.UnitNsPerOp), runfile.IvOf(cb, bench.UnitNsPerOp)
		w.p("| %s | %s | %s | %s |", w.strat(st), w.iv(ai, nsUnit), w.iv(bi, nsUnit), ratioVerdict(bi, ai))
		if ai.Separated(bi) && bi.Median > 2*ai.Median {
			grew = append(grew, w.strat(st))
			if worst == "" || bi.Median/ai.Median > worstIv.Median/worstBase.Median {
				worst, worstIv, worstBase = st, bi, ai
			}
		}
	}
	w.gap()
	if worst == "" {
		w.verdict(verdict{question: "Cost against CPUs", answer: fmt.Sprintf("no strategy costs twice as much at %s CPUs as at %s", b, a), figure: fmt.Sprintf("%d tasks", n), resolved: "see detail"})
		return
	}
	w.verdict(verdict{
		question: "Cost against CPUs",
		answer:   fmt.Sprintf("%s cost%s over twice as much at %s CPUs as at %s; the most, %s, %s", strings.Join(grew, ", "), map[bool]string{true: "s", false: ""}[len(grew) == 1], b, a, w.strat(worst), present.Ratio(worstIv.Median, worstBase.Median)),
		figure:   fmt.Sprintf("%s: %s vs %s (%d tasks)", w.strat(worst), w.iv(worstIv, nsUnit), w.iv(worstBase, nsUnit), n),
		resolved: resolution(worstIv, worstBase),
	})
}
