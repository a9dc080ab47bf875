package report

import (
	"strings"

	"bpbench/internal/present"
	"bpbench/runfile"
)

// blindUnits returns the blind-window metric a BlindWindow case reports,
// preferring the window from the request (what a debugger user sees) to
// the older first-to-last-armed one, and whether it is from the request.
func blindUnit(c *runfile.Case, q string) (string, bool) {
	if _, ok := c.Metric("blind-request-ns/" + q); ok {
		return "blind-request-ns/" + q, true
	}
	return "blind-ns/" + q, false
}

func (w *reportWriter) sectionThreads() {
	if len(runfile.Family(w.all, "Apply"))+len(runfile.Family(w.all, "BlindWindow")) == 0 {
		return // issue 6 experiments; not every run has them
	}
	w.p("## Should a multi-threaded debugger apply registers eagerly or lazily?\n")
	w.p("Eager stops every thread, writes its registers and resumes it; lazy records the change and writes a thread's registers just before it next resumes (rr, GDB). " +
		"Apply times a set, a modify and a clear of one watchpoint on every thread (three changes); its cost and writes are per change per thread. " +
		"BlindWindow measures how long the watchpoint is not armed on every thread, and the tracee's writes on threads not yet armed, which no trap reports.\n")
	if cs := runfile.Family(w.all, "Apply"); len(cs) > 0 {
		nsU := runfile.UnitIn(cs, "ns/change-thread", "ns/thread")
		wrU := runfile.UnitIn(cs, "writes/change-thread", "writes/thread")
		w.p("| Apply threads | eager | lazy |\n|---|---|---|")
		for _, t := range runfile.ParamValues(cs, "threads") {
			var cells [2]string
			for i, pol := range []string{"eager", "lazy"} {
				c := w.find("Apply", map[string]string{"policy": pol, "threads": t})
				if c == nil {
					cells[i] = "n/a"
					continue
				}
				var parts []string
				if _, ok := c.Metric(nsU); ok {
					parts = append(parts, fmtIv(runfile.IvOf(c, nsU), nsUnit)+" per change per thread")
				}
				if v, ok := c.Metric(wrU); ok {
					parts = append(parts, present.TrimFloat(v)+" register writes per change per thread")
				}
				cells[i] = strings.Join(parts, ", ")
			}
			w.p("| %s | %s | %s |", t, cells[0], cells[1])
		}
		w.threadVerdict("Apply", nsU, "per change per thread")
		w.p("")
	}
	if cs := runfile.Family(w.all, "BlindWindow"); len(cs) > 0 {
		fromRequest := false
		for _, c := range cs {
			if _, ok := blindUnit(c, "p50"); ok {
				fromRequest = true
			}
		}
		head := "first to last thread armed, p50"
		if fromRequest {
			head = "blind window from the request to the last thread armed, p50 (first to last armed in parentheses)"
		}
		w.p("| BlindWindow threads | eager | lazy |\n|---|---|---|")
		var zeroWindowMissed []string
		for _, t := range runfile.ParamValues(cs, "threads") {
			var cells [2]string
			for i, pol := range []string{"eager", "lazy"} {
				c := w.find("BlindWindow", map[string]string{"policy": pol, "threads": t})
				if c == nil {
					cells[i] = "n/a"
					continue
				}
				u, _ := blindUnit(c, "p50")
				var parts []string
				if _, ok := c.Metric(u); ok {
					s := fmtIv(runfile.IvOf(c, u), nsUnit) + " blind"
					if u != "blind-ns/p50" {
						if v, ok := c.Metric("blind-ns/p50"); ok {
							s += " (" + present.FmtNs(v) + ")"
						}
					}
					parts = append(parts, s)
				}
				if v, ok := c.Metric("missed/op"); ok {
					parts = append(parts, present.TrimFloat(v)+" missed writes per set")
					if b, _ := c.Metric(u); b == 0 && v > 0 && u == "blind-ns/p50" {
						zeroWindowMissed = append(zeroWindowMissed, pol+" at "+present.Plural(atoiOr(t, 0), "thread"))
					}
				}
				cells[i] = strings.Join(parts, ", ")
			}
			w.p("| %s | %s | %s |", t, cells[0], cells[1])
		}
		w.p("\nColumns: %s, and the tracee's writes missed per watchpoint set.", head)
		if len(zeroWindowMissed) > 0 {
			w.p("\nCause of the 0 ns windows with missed writes (%s): this run measures the window from the first thread armed, but a debugger user's window opens when the watchpoint is asked for; the missed writes land between the request and the first thread armed, which the metric does not count (results with blind-request-ns measure from the request).", strings.Join(zeroWindowMissed, ", "))
		}
		if c := cs[0]; true {
			u, _ := blindUnit(c, "p50")
			w.threadVerdict("BlindWindow", u, "blind window p50")
		}
		w.p("")
	}
	w.plotLink("apply-cost", "apply cost per change per thread vs threads")
	w.plotLink("apply-writes", "apply writes vs threads")
	w.plotLink("blindwindow", "blind window vs threads")
	w.plotLink("blindwindow-missed", "missed accesses vs threads")
	w.p("")
}

// threadVerdict compares eager and lazy at the largest thread count both ran.
func (w *reportWriter) threadVerdict(fam, unit, what string) {
	ts := runfile.ParamValues(runfile.Family(w.all, fam), "threads")
	for i := len(ts) - 1; i >= 0; i-- {
		e := w.find(fam, map[string]string{"policy": "eager", "threads": ts[i]})
		l := w.find(fam, map[string]string{"policy": "lazy", "threads": ts[i]})
		if e == nil || l == nil {
			continue
		}
		if _, ok := e.Metric(unit); !ok {
			return
		}
		ei, li := runfile.IvOf(e, unit), runfile.IvOf(l, unit)
		v := resolveNote(li, ei)
		if ei.Separated(li) {
			v = "lazy/eager = " + present.Ratio(li.Median, ei.Median)
		}
		w.p("\nAt %s threads, %s: eager %s, lazy %s: %s.", ts[i], what, fmtIv(ei, nsUnit), fmtIv(li, nsUnit), v)
		return
	}
}
