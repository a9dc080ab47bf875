package report

import (
	"fmt"
	"strings"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
)

func (w *reportWriter) sectionThreads() {
	if len(runfile.Family(w.all, "Apply"))+len(runfile.Family(w.all, "BlindWindow")) == 0 {
		w.absent("Apply/BlindWindow")
		return
	}
	w.section("Should a multi-threaded debugger apply registers eagerly or lazily?\n")
	w.p("Eager stops every thread, writes its registers and resumes it; lazy records the change and writes a thread's registers just before it next resumes (rr, GDB). " +
		"Apply times a set, a modify and a clear of one watchpoint on every thread (three changes); its cost and writes are per change per thread. " +
		"BlindWindow measures how long the watchpoint is not armed on every thread, and the tracee's writes on threads not yet armed, which no trap reports.\n")
	if cs := runfile.Family(w.all, "Apply"); len(cs) > 0 {
		w.p("| Apply threads | eager | lazy |\n|---|---|---|")
		for _, t := range runfile.ParamValues(cs, bench.ParamThreads) {
			w.p("| %s | %s | %s |", t, w.applyCell("eager", t), w.applyCell("lazy", t))
		}
		w.p("\nCells: time per change per thread, and register writes per change per thread.")
		w.threadVerdict("Apply", bench.MetricNsPerChangeThread, "cost per change per thread", "Apply a change to every thread eagerly or lazily: cost")
		w.gap()
	}
	if cs := runfile.Family(w.all, "BlindWindow"); len(cs) > 0 {
		w.p("| BlindWindow threads | eager | lazy |\n|---|---|---|")
		for _, t := range runfile.ParamValues(cs, bench.ParamThreads) {
			w.p("| %s | %s | %s |", t, w.blindCell("eager", t), w.blindCell("lazy", t))
		}
		w.p("\nCells: the blind window from the request to the last thread armed, p50 (first to last armed in parentheses), and the tracee's writes missed per watchpoint set.")
		w.threadVerdict("BlindWindow", "blind-request-ns/p50", "blind window p50", "Eager or lazy: how long is a new watchpoint blind")
		w.gap()
	}
	w.plotLink("apply-cost", "apply cost per change per thread vs threads")
	w.plotLink("apply-writes", "apply writes vs threads")
	w.plotLink("blindwindow", "blind window vs threads")
	w.plotLink("blindwindow-missed", "missed accesses vs threads")
	w.gap()
}

func (w *reportWriter) applyCell(pol, threads string) string {
	c := w.find("Apply", map[string]string{bench.ParamPolicy: pol, bench.ParamThreads: threads})
	if c == nil {
		return "n/a"
	}
	var parts []string
	if _, ok := c.Metric(bench.MetricNsPerChangeThread); ok {
		parts = append(parts, w.iv(runfile.IvOf(c, bench.MetricNsPerChangeThread), nsUnit))
	}
	if v, ok := c.Metric(bench.MetricWritesPerChangeThread); ok {
		parts = append(parts, present.TrimFloat(v)+" writes")
	}
	return strings.Join(parts, ", ")
}

func (w *reportWriter) blindCell(pol, threads string) string {
	c := w.find("BlindWindow", map[string]string{bench.ParamPolicy: pol, bench.ParamThreads: threads})
	if c == nil {
		return "n/a"
	}
	var parts []string
	if _, ok := c.Metric("blind-request-ns/p50"); ok {
		s := w.iv(runfile.IvOf(c, "blind-request-ns/p50"), nsUnit)
		if v, ok := c.Metric(bench.MetricBlindP50); ok {
			s += " (" + present.FmtNs(v) + ")"
		}
		parts = append(parts, s)
	}
	if v, ok := c.Metric(bench.MetricMissed); ok {
		parts = append(parts, present.TrimFloat(v)+" missed")
	}
	return strings.Join(parts, ", ")
}

// threadVerdict compares eager and lazy at the largest thread count both
// ran, in the detail and as a verdict row.
func (w *reportWriter) threadVerdict(fam, unit, what, question string) {
	ts := runfile.ParamValues(runfile.Family(w.all, fam), "threads")
	for i := len(ts) - 1; i >= 0; i-- {
		e := w.find(fam, map[string]string{bench.ParamPolicy: "eager", bench.ParamThreads: ts[i]})
		l := w.find(fam, map[string]string{bench.ParamPolicy: "lazy", bench.ParamThreads: ts[i]})
		if e == nil || l == nil {
			continue
		}
		if _, ok := e.Metric(unit); !ok {
			return
		}
		ei, li := runfile.IvOf(e, unit), runfile.IvOf(l, unit)
		v := resolveNote(li, ei)
		answer := "no difference shown"
		if ei.Separated(li) {
			v = "lazy/eager = " + present.Ratio(li.Median, ei.Median)
			better := "shorter"
			if unit == bench.MetricNsPerChangeThread {
				better = "cheaper"
			}
			answer = "eager is " + better
			if li.Median < ei.Median {
				answer = "lazy is " + better
			}
			answer += fmt.Sprintf(", %s at %s threads", present.Ratio(max(li.Median, ei.Median), min(li.Median, ei.Median)), ts[i])
		}
		w.p("\nAt %s threads, %s: eager %s, lazy %s: %s.", ts[i], what, w.iv(ei, nsUnit), w.iv(li, nsUnit), v)
		w.verdict(verdict{question: question, answer: answer, figure: "eager " + w.iv(ei, nsUnit) + " vs lazy " + w.iv(li, nsUnit), resolved: resolution(ei, li)})
		return
	}
}
