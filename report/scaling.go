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
