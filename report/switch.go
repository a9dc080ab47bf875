package report

import (
	"fmt"
	"strings"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// sectionSwitch answers issue 13 with both halves: the real kernel's
// context-switch cost with B breakpoints installed (Switch, anchored by
// perf bench sched pipe) and the switch-policy model (SwitchModel).
func (w *reportWriter) sectionSwitch() {
	real, model := runfile.Family(w.all, "Switch"), runfile.Family(w.all, "SwitchModel")
	w.section("What do debug registers cost at a context switch, and does lazy switching pay?\n")
	if len(real)+len(model) == 0 {
		w.absent("Switch/SwitchModel")
		return
	}
	w.switchReal(real)
	w.switchModel(model)
	w.plotLink("switch-cost", "context-switch cost vs breakpoints")
	w.plotLink("switch-model-writes", "register writes per switch per policy vs CPUs")
	w.plotLink("switch-model-lost", "breakpoints lost per policy vs CPUs")
	w.gap()
}

func (w *reportWriter) switchReal(cases []*runfile.Case) {
	if len(cases) == 0 {
		w.p("_No Switch results (real kernel) in this run._\n")
		return
	}
	w.p("**Real kernel.** Two threads of one tracee ping-pong through a futex on one CPU; a figure is µs per round trip (two context switches), with B breakpoints on each thread that has them, and in parentheses its slowdown against the same backend's round trip without breakpoints.\n")
	var anchor *runfile.Case
	backends := map[string]bool{}
	for _, c := range cases {
		be := bench.NameParams(c.Name)[bench.ParamBackend]
		if be == "perfbench" {
			anchor = c
			continue
		}
		backends[be] = true
	}
	bs := runfile.ParamValues(cases, "breakpoints")
	w.p("| backend | threads with breakpoints | %s |\n|---|---|%s", "B="+strings.Join(bs, " | B="), strings.Repeat("---|", len(bs)))
	var rows []verdict
	for _, be := range present.OrderedBackends(backends) {
		bc := runfile.Subset(cases, "backend", be)
		zero := w.find("Switch", map[string]string{bench.ParamBackend: be, bench.ParamBreakpoints: "0"})
		for _, tw := range runfile.ParamValues(bc, "threads-with") {
			if tw == "0" && len(runfile.ParamValues(bc, "threads-with")) > 1 {
				continue // the 0-breakpoint round trip heads every row
			}
			cells := make([]string, len(bs))
			var top *runfile.Case
			for i, b := range bs {
				c := w.find("Switch", map[string]string{bench.ParamBackend: be, "threads-with": tw, bench.ParamBreakpoints: b})
				if b == "0" {
					c = zero
				}
				if c == nil {
					cells[i] = "n/a"
					continue
				}
				cells[i] = w.iv(runfile.IvOf(c, bench.MetricUsecs), plainUnit)
				if v, ok := c.Metric(bench.MetricSlowdown); ok && b != "0" {
					cells[i] += " (" + present.TrimFloat(v) + "×)"
				}
				if b != "0" {
					top = c
				}
			}
			w.p("| %s | %s | %s |", be, tw, strings.Join(cells, " | "))
			if top != nil && zero != nil && tw == runfile.ParamValues(bc, "threads-with")[len(runfile.ParamValues(bc, "threads-with"))-1] {
				rows = append(rows, w.switchVerdict(be, tw, zero, top))
			}
		}
	}
	w.gap()
	if anchor != nil {
		w.switchAnchor(anchor)
	}
	for _, v := range rows {
		w.verdict(v)
	}
}

// switchAnchor says what perf bench sched pipe takes beside the Go
// ping-pong and, where the run has it with -T (two threads of one process)
// as well as in its default form (two processes), whether the
// address-space switch is why perf bench's round trip is longer than the
// Go ping-pong's.
func (w *reportWriter) switchAnchor(anchor *runfile.Case) {
	ai := runfile.IvOf(anchor, bench.MetricUsecs)
	_, haveT := anchor.Metric(bench.MetricThreadsUsecs)
	if !haveT {
		s := fmt.Sprintf("Anchor: `perf bench sched pipe` takes %s µs per round trip", w.iv(ai, plainUnit))
		if _, ok := anchor.Metric(bench.MetricGoPerPerfBench); ok {
			s += fmt.Sprintf("; the Go ping-pong without breakpoints, run alternately with it, takes %s its time", w.iv(runfile.IvOf(anchor, bench.MetricGoPerPerfBench), suffixUnit("×")))
		}
		w.p("%s. perf bench runs its two tasks as processes (no -T), so each of its switches also changes address space, which the Go ping-pong's two threads of one process do not; this run did not measure perf bench with -T to tell them apart.\n", s)
		return
	}
	ti := runfile.IvOf(anchor, bench.MetricThreadsUsecs)
	gp, gt := runfile.IvOf(anchor, bench.MetricGoPerPerfBench), runfile.IvOf(anchor, bench.MetricGoPerPerfBenchThreads)
	pt := runfile.IvOf(anchor, bench.MetricProcessesPerThreads)
	x := suffixUnit("×")
	w.p("Anchor: `perf bench sched pipe` takes %s µs per round trip as two processes (its default, so each switch also changes address space) and %s µs with -T, as two threads of one process; processes take %s the threads' time. The Go ping-pong without breakpoints (two threads of one process, through a futex), run alternately with both, takes %s the first and %s the second.",
		w.iv(ai, plainUnit), w.iv(ti, plainUnit), w.iv(pt, x), w.iv(gp, x), w.iv(gt, x))
	w.p("\n%s\n", anchorCause(pt, gp, gt))
}

// anchorCause says, from the ratios of perf bench as processes to
// threads (pt) and of the Go ping-pong to each (gp, gt), why perf bench's
// default round trip is longer than the Go ping-pong's.
func anchorCause(pt, gp, gt stats.Interval) string {
	switch {
	case pt.N < 2 || gt.N < 2:
		return "Whether the address-space switch is why perf bench's round trip is longer than the Go ping-pong's is not resolved: " + unresolved(pt, gt) + "."
	case !(gp.Hi < 1):
		return "The Go ping-pong is not shorter than perf bench's default round trip here, so there is no gap to explain."
	case pt.Hi < 1:
		return "The address-space switch is not why perf bench's round trip is longer than the Go ping-pong's: as threads it takes longer than as processes (processes/threads " + fmt.Sprintf("[%s, %s]", present.TrimFloat(pt.Lo), present.TrimFloat(pt.Hi)) + ")."
	case !(pt.Lo > 1):
		one := stats.Interval{Median: 1, Lo: 1, Hi: 1, N: pt.N, From: pt.From}
		return "Whether the address-space switch is why perf bench's round trip is longer than the Go ping-pong's is not resolved: perf bench as processes against threads (processes/threads " + fmt.Sprintf("[%s, %s]", present.TrimFloat(pt.Lo), present.TrimFloat(pt.Hi)) + ") is within its spread of equal: " + unresolved(pt, one) + "."
	case gt.Hi < 1:
		share := (1/gp.Median - 1/gt.Median) / (1/gp.Median - 1) // (P-T)/(P-G) in units of G
		return fmt.Sprintf("The address-space switch is part of why perf bench's round trip is longer than the Go ping-pong's: about %s of the gap. As threads perf bench is still longer; the rest is pipes (a write and a read per hand-off) against a futex.", pct(share, 1))
	default:
		return "The address-space switch is why perf bench's round trip is longer than the Go ping-pong's: as threads of one process perf bench takes no longer than the Go ping-pong (Go/threads " + fmt.Sprintf("[%s, %s]", present.TrimFloat(gt.Lo), present.TrimFloat(gt.Hi)) + "), so pipes against a futex account for none of the gap."
	}
}

// switchVerdict answers with the slowdown of the most breakpoints on
// the most threads: measured against round trips without breakpoints
// timed alternately with it, it is resolved when its interval excludes 1
// (the two cases' own intervals include the drift between them).
func (w *reportWriter) switchVerdict(be, tw string, zero, top *runfile.Case) verdict {
	zi, ti := runfile.IvOf(zero, bench.MetricUsecs), runfile.IvOf(top, bench.MetricUsecs)
	tb := bench.NameParams(top.Name)[bench.ParamBreakpoints]
	v := verdict{question: "Debug registers at a context switch, real kernel (" + be + ")"}
	sl, ok := top.Metric(bench.MetricSlowdown)
	if !ok {
		v.answer, v.figure, v.resolved = "no cost shown", w.iv(ti, plainUnit)+" vs "+w.iv(zi, plainUnit)+" µs per round trip", resolution(ti, zi)
		if ti.Separated(zi) {
			v.answer = fmt.Sprintf("%s breakpoints on %s make a round trip %s as long", tb, present.Plural(atoiOr(tw, 0), "thread"), present.Ratio(ti.Median, zi.Median))
		}
		return v
	}
	si := runfile.IvOf(top, bench.MetricSlowdown)
	v.figure = fmt.Sprintf("slowdown %s; %s vs %s µs per round trip", w.iv(si, suffixUnit("×")), present.TrimFloat(ti.Median), present.TrimFloat(zi.Median))
	switch {
	case si.N < 2:
		v.answer, v.resolved = fmt.Sprintf("%s× in one value", present.TrimFloat(sl)), "no: 1 value, no interval (`--count 3` or more gives one)"
	case si.Lo > 1:
		v.answer, v.resolved = fmt.Sprintf("%s breakpoints on %s make a round trip %s× as long", tb, present.Plural(atoiOr(tw, 0), "thread"), present.TrimFloat(sl)), "yes"
	default:
		v.answer, v.resolved = "no cost shown", "no: the slowdown's interval contains 1"
	}
	return v
}

// switchPolicyLabel says what a SwitchModel policy does.
func switchPolicyLabel(p string) string {
	switch p {
	case "eager":
		return "eager writes the next task's registers at every switch"
	case "changed":
		return "changed writes only the registers that differ"
	case "lazy-percpu":
		return "lazy-percpu leaves registers installed and tracks the last debugged task per CPU"
	case "lazy-global":
		return "lazy-global leaves registers installed and tracks one global last debugged task (2009)"
	}
	return "policy=" + p
}

// modelCount pools a SwitchModel rate (lost/op or misdelivered/op) over
// every run of the cases of a policy, as events out of watched accesses.
func (w *reportWriter) modelCount(pol, unit string) (k, n float64) {
	for _, r := range w.run.Results {
		if f, _, _ := strings.Cut(r.Name, "/"); f != "SwitchModel" || bench.NameParams(r.Name)[bench.ParamPolicy] != pol {
			continue
		}
		ops := r.Metrics["ops"]
		k += r.Metrics[unit] * ops
		n += ops
	}
	return k, n
}

func (w *reportWriter) switchModel(cases []*runfile.Case) {
	if len(cases) == 0 {
		w.p("_No SwitchModel results (model) in this run._\n")
		return
	}
	tasks := runfile.ParamValues(cases, "tasks")
	maxT := tasks[len(tasks)-1]
	cpus := runfile.ParamValues(cases, "cpus")
	policies := runfile.ParamValues(cases, "policy")
	w.p("**Model.** A seeded scheduler switches %s tasks over simulated CPUs under four install policies: %s. Register writes per context switch (debugged: tasks holding breakpoints):\n", maxT, strings.Join(mapStrings(policies, switchPolicyLabel), "; "))
	w.p("| policy | debugged | %s |\n|---|---|%s", strings.Join(mapStrings(cpus, func(c string) string { return present.Plural(atoiOr(c, 0), "CPU") }), " | "), strings.Repeat("---|", len(cpus)))
	for _, pol := range policies {
		for _, d := range runfile.ParamValues(runfile.Subset(cases, "policy", pol), "debugged") {
			var cells []string
			any := false
			for _, cp := range cpus {
				c := w.find("SwitchModel", map[string]string{bench.ParamPolicy: pol, bench.ParamCPUs: cp, bench.ParamTasks: maxT, "debugged": d})
				if c == nil {
					cells = append(cells, "n/a")
					continue
				}
				any = true
				cells = append(cells, w.iv(runfile.IvOf(c, bench.MetricWritesPerSwitch), plainUnit))
			}
			if any {
				w.p("| %s | %s | %s |", pol, d, strings.Join(cells, " | "))
			}
		}
	}
	w.gap()
	top := cpus[len(cpus)-1]
	at := func(pol string) *runfile.Case {
		var best *runfile.Case
		for _, c := range cases {
			p := bench.NameParams(c.Name)
			if p[bench.ParamPolicy] == pol && p[bench.ParamCPUs] == top && p[bench.ParamTasks] == maxT {
				best = c // the last debugged count: the most debugged tasks
			}
		}
		return best
	}
	// Correctness: which policies lost or misdelivered nothing, with the
	// bound that many watched accesses give.
	var clean []string
	var kClean, nClean float64
	for _, pol := range policies {
		kl, n := w.modelCount(pol, bench.MetricLost)
		km, _ := w.modelCount(pol, bench.MetricMisdelivered)
		if kl+km == 0 && n > 0 {
			clean = append(clean, pol)
			if nClean == 0 || n < nClean {
				kClean, nClean = 0, n
			}
			continue
		}
		var parts []string
		for _, cp := range cpus {
			if c := w.find("SwitchModel", map[string]string{bench.ParamPolicy: pol, bench.ParamCPUs: cp, bench.ParamTasks: maxT}); c != nil {
				if v := runfile.MustMetric(c, bench.MetricLost); v > 0 {
					parts = append(parts, fmt.Sprintf("%s at %s CPUs", w.iv(runfile.IvOf(c, bench.MetricLost), pctUnit), cp))
				}
			}
		}
		cause := "**unexplained**"
		if pol == "lazy-global" {
			cause = "the 2009 review's flaw: with one global last_debugged_task on SMP, a genuine trap on one CPU after another CPU switched to a different debugged task is taken for a leftover and the registers are cleared"
		}
		w.p("- %s lost %s of watched accesses (%s); misdelivered %s; cause: %s.", pol, count(kl, n), strings.Join(parts, ", "), count(km, n), cause)
	}
	if len(clean) > 0 {
		w.p("- %s lost and misdelivered nothing over every CPU count: 0 of at least %s watched accesses each (95%% upper bound %s).", strings.Join(clean, ", "), present.Count(nClean), upperPct(kClean, nClean))
	}
	eager := at("eager")
	if eager != nil {
		var ex []string
		for _, pol := range policies {
			if c := at(pol); c != nil {
				if v, ok := c.Metric(bench.MetricExceptionsPerSwitch); ok {
					ex = append(ex, pol+" "+present.TrimFloat(v))
				}
			}
		}
		if len(ex) > 0 {
			w.p("- Debug exceptions per switch at %s CPUs (genuine traps and the false alarms lazy policies take): %s.", top, strings.Join(ex, ", "))
		}
	}
	w.gap()
	lp := at("lazy-percpu")
	if lp == nil || eager == nil {
		return
	}
	li, ei := runfile.IvOf(lp, bench.MetricWritesPerSwitch), runfile.IvOf(eager, bench.MetricWritesPerSwitch)
	kl, n := w.modelCount("lazy-percpu", bench.MetricLost)
	km, _ := w.modelCount("lazy-percpu", bench.MetricMisdelivered)
	answer := "not shown: " + resolveNote(li, ei)
	switch {
	case kl+km > 0:
		answer = "not safely: per-CPU lazy switching loses or misdelivers breakpoints (**unexplained**)"
		w.p("Does lazy switching pay? Not safely: per-CPU lazy switching loses or misdelivers breakpoints in this run (**unexplained**).")
	case li.Separated(ei) && li.Median < ei.Median:
		answer = fmt.Sprintf("per-CPU lazy lost nothing in %s watched accesses (95%% upper bound %s) and saves %s writes per switch at %s CPUs", present.Count(n), upperPct(0, n), present.TrimFloat(ei.Median-li.Median), top)
		w.p("Does lazy switching pay? In writes, yes: per-CPU lazy switching saves %s register writes per switch at %s CPUs (%s against eager's %s) without losing a breakpoint. In time it pays only where a debug exception (it takes more false alarms) costs less than the writes it saves: the real-kernel figures above give what breakpoints add per switch, and nothing here measures one exception.", present.TrimFloat(ei.Median-li.Median), top, w.iv(li, plainUnit), w.iv(ei, plainUnit))
	default:
		w.p("Does lazy switching pay? Not shown: %s.", resolveNote(li, ei))
	}
	w.verdict(verdict{
		question: "Lazy switching: correct on SMP, and fewer register writes?",
		answer:   answer,
		figure:   fmt.Sprintf("%s vs %s (eager) writes per switch, %s CPUs", w.iv(li, plainUnit), w.iv(ei, plainUnit), top),
		resolved: resolution(li, ei),
	})
}

// upperPct is the 95% Wilson upper bound of k events in n, in percent.
func upperPct(k, n float64) string {
	_, hi := stats.Wilson(k, n)
	return pct(hi, 1)
}

func mapStrings(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = f(s)
	}
	return out
}
