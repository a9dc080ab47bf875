package report

import (
	"fmt"

	"bpbench/internal/present"
	"bpbench/runfile"
)

func (w *reportWriter) sectionRegisters() {
	w.section("Should updates write only the changed debug registers?\n")
	cases := runfile.Family(w.all, "Registers")
	if len(cases) == 0 {
		w.absent("Registers")
		return
	}
	backends := map[string]bool{}
	for _, c := range cases {
		backends[runfile.NameParams(c.Name)["backend"]] = true
	}
	var rows []verdict
	head := false
	for _, be := range present.OrderedBackends(backends) {
		all := w.find("Registers", map[string]string{"backend": be, "policy": "all"})
		ch := w.find("Registers", map[string]string{"backend": be, "policy": "changed"})
		if all == nil || ch == nil {
			continue
		}
		ai, ci := runfile.IvOf(all, "ns/op"), runfile.IvOf(ch, "ns/op")
		writes := "n/a"
		wa, aok := all.Metric("writes/op")
		wc, cok := ch.Metric("writes/op")
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
