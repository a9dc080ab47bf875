package report

import (
	"fmt"
	"strconv"
	"strings"

	"bpbench/internal/present"
	"bpbench/runfile"
)

// sectionSwitch answers issue 13 with both halves: the real kernel's
// context-switch cost with B breakpoints installed (Switch, anchored by
// perf bench sched pipe) and the switch-policy model (SwitchModel).
func (w *reportWriter) sectionSwitch() {
	real, model := runfile.Family(w.all, "Switch"), runfile.Family(w.all, "SwitchModel")
	w.p("## What do debug registers cost at a context switch, and does lazy switching pay?\n")
	if len(real)+len(model) == 0 {
		w.absent("Switch/SwitchModel")
		w.p("")
		return
	}
	w.switchReal(real)
	w.switchModel(model)
	w.plotLink("switch-cost", "context-switch cost vs breakpoints")
	w.plotLink("switch-model-writes", "register writes per switch per policy vs CPUs")
	w.plotLink("switch-model-lost", "breakpoints lost per policy vs CPUs")
	w.p("")
}

func (w *reportWriter) switchReal(cases []*runfile.Case) {
	if len(cases) == 0 {
		w.p("_No Switch results (real kernel) in this run._\n")
		return
	}
	w.p("**Real kernel** (two threads ping-pong through pipes on one CPU; usecs/op is one round trip, two context switches; B breakpoints on the threads that have them):\n")
	var anchor *runfile.Case
	backends := map[string]bool{}
	for _, c := range cases {
		be := runfile.NameParams(c.Name)["backend"]
		if be == "perfbench" {
			anchor = c
			continue
		}
		backends[be] = true
	}
	if anchor != nil {
		w.p("- anchor: `perf bench sched pipe` %s usecs/op.", fmtIv(runfile.IvOf(anchor, "usecs/op"), plainUnit))
	}
	for _, be := range present.OrderedBackends(backends) {
		bc := runfile.Subset(cases, "backend", be)
		for _, tw := range runfile.ParamValues(bc, "threads-with") {
			var parts []string
			var zero, top *runfile.Case
			topB := -1
			for _, b := range runfile.ParamValues(bc, "breakpoints") {
				c := w.find("Switch", map[string]string{"backend": be, "threads-with": tw, "breakpoints": b})
				if c == nil {
					continue
				}
				s := fmt.Sprintf("B=%s: %s", b, fmtIv(runfile.IvOf(c, "usecs/op"), plainUnit))
				if _, ok := c.Metric("slowdown"); ok && b != "0" {
					s += fmt.Sprintf(" (slowdown %s)", fmtIv(runfile.IvOf(c, "slowdown"), plainUnit))
				}
				parts = append(parts, s)
				n, _ := strconv.Atoi(b)
				if b == "0" {
					zero = c
				}
				if n > topB {
					top, topB = c, n
				}
			}
			w.p("- **%s**, breakpoints on %s: %s usecs/op.", be, present.Plural(atoiOr(tw, 0), "thread"), strings.Join(parts, "; "))
			if zero != nil && top != nil && top != zero {
				zi, ti := runfile.IvOf(zero, "usecs/op"), runfile.IvOf(top, "usecs/op")
				v := resolveNote(ti, zi)
				if ti.Separated(zi) {
					v = fmt.Sprintf("%s breakpoints make a round trip %s as expensive, +%s µs", strconv.Itoa(topB), present.Ratio(ti.Median, zi.Median), present.TrimFloat(ti.Median-zi.Median))
				}
				w.p("  - %d vs 0 breakpoints: %s.", topB, v)
			}
			if anchor != nil && zero != nil {
				ai, zi := runfile.IvOf(anchor, "usecs/op"), runfile.IvOf(zero, "usecs/op")
				w.p("  - against perf bench sched pipe at 0 breakpoints: Go/perf %s.", ratioVerdict(zi, ai))
			}
		}
	}
	w.p("")
}

func atoiOr(s string, d int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return d
}

// switchPolicyLabel says what a SwitchModel policy does.
func switchPolicyLabel(p string) string {
	switch p {
	case "eager":
		return "eager (write the next task's registers at every switch)"
	case "changed":
		return "changed (write only registers that differ)"
	case "lazy-percpu":
		return "lazy-percpu (leave registers installed; per-CPU last debugged task)"
	case "lazy-global":
		return "lazy-global (leave registers installed; one global last debugged task, 2009)"
	}
	return "policy=" + p
}

func (w *reportWriter) switchModel(cases []*runfile.Case) {
	if len(cases) == 0 {
		w.p("_No SwitchModel results (model) in this run._\n")
		return
	}
	// One row per policy and CPU count, at the most tasks the model ran.
	tasks := runfile.ParamValues(cases, "tasks")
	maxT := tasks[len(tasks)-1]
	w.p("**Model** (switch policies over simulated CPUs, %s tasks; debugged = tasks holding breakpoints):\n", maxT)
	w.p("| policy | cpus | debugged | writes/switch | exceptions/switch | lost/op | misdelivered/op |\n|---|---|---|---|---|---|---|")
	for _, pol := range runfile.ParamValues(cases, "policy") {
		for _, cpus := range runfile.ParamValues(cases, "cpus") {
			for _, d := range runfile.ParamValues(cases, "debugged") {
				c := w.find("SwitchModel", map[string]string{"policy": pol, "cpus": cpus, "tasks": maxT, "debugged": d})
				if c == nil {
					continue
				}
				cell := func(u string) string {
					if _, ok := c.Metric(u); !ok {
						return "n/a"
					}
					return fmtIv(runfile.IvOf(c, u), plainUnit)
				}
				w.p("| %s | %s | %s | %s | %s | %s | %s |", pol, cpus, d, cell("writes/switch"), cell("exceptions/switch"), cell("lost/op"), cell("misdelivered/op"))
			}
		}
	}
	w.p("")
	for _, pol := range runfile.ParamValues(cases, "policy") {
		w.p("- %s", switchPolicyLabel(pol))
	}
	// Verdicts at the most CPUs: writes saved against eager, and losses.
	cpus := runfile.ParamValues(cases, "cpus")
	top := cpus[len(cpus)-1]
	at := func(pol string) *runfile.Case {
		var best *runfile.Case
		for _, c := range cases {
			p := runfile.NameParams(c.Name)
			if p["policy"] == pol && p["cpus"] == top && p["tasks"] == maxT {
				best = c // the last debugged count: the most debugged tasks
			}
		}
		return best
	}
	eager := at("eager")
	w.p("")
	for _, pol := range runfile.ParamValues(cases, "policy") {
		c := at(pol)
		if c == nil {
			continue
		}
		if eager != nil && c != eager {
			ei, ci := runfile.IvOf(eager, "writes/switch"), runfile.IvOf(c, "writes/switch")
			v := resolveNote(ci, ei)
			if ci.Separated(ei) {
				v = fmt.Sprintf("%s eager's writes (%s against %s per switch)", present.Ratio(ci.Median, ei.Median), present.TrimFloat(ci.Median), present.TrimFloat(ei.Median))
			}
			w.p("- at %s CPUs, %s: %s.", top, pol, v)
		}
		for _, u := range []string{"lost/op", "misdelivered/op"} {
			v, ok := c.Metric(u)
			if !ok || v == 0 {
				continue
			}
			cause := "**unexplained**"
			if pol == "lazy-global" {
				cause = "the 2009 review's flaw: with one global last_debugged_task on SMP, a genuine trap on one CPU after another CPU switched to a different debugged task is taken for a leftover and the registers are cleared"
			}
			w.p("- %s at %s CPUs: %s %s; cause: %s.", pol, top, fmtIv(runfile.IvOf(c, u), plainUnit), u, cause)
		}
	}
	if lp := at("lazy-percpu"); lp != nil && eager != nil {
		li, ei := runfile.IvOf(lp, "writes/switch"), runfile.IvOf(eager, "writes/switch")
		lost := runfile.MustMetric(lp, "lost/op") + runfile.MustMetric(lp, "misdelivered/op")
		switch {
		case li.Separated(ei) && li.Median < ei.Median && lost == 0:
			w.p("\nDoes lazy switching pay? In writes, yes: per-CPU lazy switching saves %s register writes per switch at %s CPUs without losing a breakpoint. In time it pays only where a debug exception (it takes more false alarms) costs less than the writes it saves: the real-kernel figures above give what breakpoints add per switch, and nothing here measures one exception.", present.TrimFloat(ei.Median-li.Median), top)
		case lost > 0:
			w.p("\nDoes lazy switching pay? Not safely: per-CPU lazy switching loses or misdelivers breakpoints in this run (**unexplained**).")
		default:
			w.p("\nDoes lazy switching pay? Not shown: %s.", resolveNote(li, ei))
		}
	}
	w.p("")
}
