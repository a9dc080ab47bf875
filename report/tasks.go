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
