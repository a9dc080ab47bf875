package report

import (
	"fmt"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// sectionRegisters compares write-changed with write-all, and any
// registered policy with write-changed, per backend, from the Registers
// cases.
func (w *reportWriter) sectionRegisters(cases []*runfile.Case) {
	backends := backendsOf(cases)
	var rows []verdict
	head := false
	for _, be := range backends {
		all := w.find("Registers", map[string]string{bench.ParamBackend: be, bench.ParamPolicy: "all"})
		ch := w.find("Registers", map[string]string{bench.ParamBackend: be, bench.ParamPolicy: "changed"})
		if all == nil || ch == nil {
			continue
		}
		ai, ci := runfile.IvOf(all, bench.UnitNsPerOp), runfile.IvOf(ch, bench.UnitNsPerOp)
		writes := "n/a"
		wa, aok := all.Metric(bench.MetricWrites)
		wc, cok := ch.Metric(bench.MetricWrites)
		if aok && cok {
			writes = fmt.Sprintf("%s, %s", present.TrimFloat(wc), present.TrimFloat(wa))
		}
		if !head {
			w.p("| backend | write-changed | write-all | write-changed vs write-all | register writes per update (changed, all) |\n|---|---|---|---|---|")
			head = true
		}
		w.p("| %s | %s | %s | %s | %s |", be, w.iv(ci, nsUnit), w.iv(ai, nsUnit), costVerdict(ai, ci), writes)
		rows = append(rows, verdict{
			question: "Write only the changed registers, or all of them (" + be + ")",
			answer:   w.cheaperAnswer("write-changed", ai, ci),
			figure:   w.iv(ci, nsUnit) + " vs " + w.iv(ai, nsUnit) + " per update",
			resolved: resolution(ci, ai),
		})
	}
	w.otherPolicies(cases, backends)
	// The real backend answers the question; the model only counts writes.
	if len(rows) > 0 {
		w.verdict(rows[len(rows)-1])
		w.gap()
	} else {
		w.p("_No backend ran both policies; no comparison._")
	}
	w.plotLink("registers-writes", "register writes per update")
	w.plotLink("registers-cost", "update cost by policy")
	w.gap()
}

// otherPolicies compares every policy beyond the two built-ins (one a
// user registered with hwregs.RegisterPolicy and named in --policies)
// with write-changed on each backend: its cost, its writes, and whether
// the difference is resolved. A policy whose plans missed the registers
// asked for failed its case instead (the Writer checks every plan).
func (w *reportWriter) otherPolicies(cases []*runfile.Case, backends []string) {
	var others []string
	for _, p := range runfile.ParamValues(cases, bench.ParamPolicy) {
		if p != "all" && p != "changed" {
			others = append(others, p)
		}
	}
	if len(others) == 0 {
		return
	}
	w.gap()
	w.p("Policies of one's own, against write-changed (their plans reached the registers asked for on every change, or the case would have failed):\n")
	w.p("| backend | policy | cost per update | write-changed | policy vs write-changed | register writes per update (policy, changed) |\n|---|---|---|---|---|---|")
	for _, be := range backends {
		ch := w.find("Registers", map[string]string{bench.ParamBackend: be, bench.ParamPolicy: "changed"})
		for _, p := range others {
			c := w.find("Registers", map[string]string{bench.ParamBackend: be, bench.ParamPolicy: p})
			if c == nil {
				continue
			}
			pi := runfile.IvOf(c, bench.UnitNsPerOp)
			ref, vs, writes := "n/a", "n/a", present.TrimFloat(runfile.MustMetric(c, bench.MetricWrites))
			if ch != nil {
				ci := runfile.IvOf(ch, bench.UnitNsPerOp)
				ref, vs = w.iv(ci, nsUnit), costVerdict(ci, pi)
				writes += ", " + present.TrimFloat(runfile.MustMetric(ch, bench.MetricWrites))
			}
			w.p("| %s | %s | %s | %s | %s | %s |", be, p, w.iv(pi, nsUnit), ref, vs, writes)
		}
	}
}
