package report

import (
	"fmt"
	"strings"
)

// sectionConformance prints the allocation model checked in lockstep
// against the live kernel at the start of the run (Run.Conformance), and
// the kernel facts the model assumes.
func (w *reportWriter) sectionConformance() {
	w.section("Does the model admit and refuse exactly what the kernel does?\n")
	r := w.run.Conformance
	if r == nil {
		w.absent("the model checked against the kernel")
		return
	}
	w.p("**%s.**", r.Summary())
	var diverged []string
	for _, a := range r.Strategies {
		if a.Diverged > 0 {
			diverged = append(diverged, fmt.Sprintf("%s (%d of %d opens)", w.strat(a.Strategy), a.Diverged, a.Agreed+a.Diverged))
		}
	}
	v := verdict{
		question: "Does the model (each strategy) admit and refuse what the kernel does?",
		answer:   "yes, every strategy, op for op",
		figure:   fmt.Sprintf("%d opens (%d admitted, %d refused)", r.Opens, r.Admitted, r.Refused),
		resolved: "exact: every op compared",
	}
	switch {
	case !r.Clean:
		v.answer, v.figure, v.resolved = "not checked", r.Note, "no: the machine was not clean"
	case len(diverged) > 0:
		v.answer = "no: " + strings.Join(diverged, ", ") + " diverged"
	}
	w.verdict(v)
	if r.CPUs > 0 {
		w.p("\nOne random sequence of perf_event_open breakpoints (CPU-bound on each CPU, a thread on every CPU, a thread on one CPU; %d of the opens instruction breakpoints, %d of them refused) on %d live threads, %d CPUs, seed %d, replayed op by op on every strategy configured with the pools the kernel was probed to give a thread: %s (`bpbench conform` runs a longer sequence).\n", r.Inst, r.InstRefused, r.Threads, r.CPUs, r.Seed, r.Pools())
	}
	if len(r.Strategies) > 0 && len(diverged) == 0 {
		var names []string
		for _, a := range r.Strategies {
			names = append(names, a.Strategy)
		}
		w.p("Every strategy (%s) answered every open as the kernel did.", strings.Join(names, ", "))
	} else if len(r.Strategies) > 0 {
		w.p("| strategy | agreed | diverged | first divergence |\n|---|---|---|---|")
		for _, a := range r.Strategies {
			first := ""
			if len(a.Divergences) > 0 {
				d := a.Divergences[0]
				first = fmt.Sprintf("op %d `%s`: kernel %s, model %s", d.Op, d.Request, d.Kernel, d.Model)
			}
			w.p("| %s | %d | %d | %s |", w.strat(a.Strategy), a.Agreed, a.Diverged, first)
		}
	}
	if len(r.Facts) > 0 {
		w.p("\nKernel facts the model assumes, probed on this kernel:\n")
		w.p("| fact | answer | holds | how |\n|---|---|---|---|")
		for _, f := range r.Facts {
			v, holds := f.Value, "yes"
			if f.Error != "" {
				v = "not probed: " + f.Error
			}
			if !f.Holds() {
				holds = "**no**"
			}
			switch {
			case f.Skipped != "":
				v, holds = "skipped: "+f.Skipped, "n/a"
			case f.Assumed == "":
				holds = "(read)"
			}
			w.p("| %s: %s | %s | %s | %s |", f.Name, f.Question, v, holds, f.Detail)
		}
	}
	w.gap()
}
