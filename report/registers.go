package report

import (
	"fmt"

	"bpbench/internal/present"
	"bpbench/runfile"
)

func (w *reportWriter) sectionRegisters() {
	w.p("## Should updates write only the changed debug registers?\n")
	cases := runfile.Family(w.all, "Registers")
	if len(cases) == 0 {
		w.absent("Registers")
		return
	}
	backends := map[string]bool{}
	for _, c := range cases {
		backends[runfile.NameParams(c.Name)["backend"]] = true
	}
	for _, be := range present.OrderedBackends(backends) {
		all := w.find("Registers", map[string]string{"backend": be, "policy": "all"})
		ch := w.find("Registers", map[string]string{"backend": be, "policy": "changed"})
		if all == nil || ch == nil {
			continue
		}
		ai, ci := runfile.IvOf(all, "ns/op"), runfile.IvOf(ch, "ns/op")
		line := fmt.Sprintf("- **%s**: write-changed costs %s per update against %s for write-all (%s)",
			be, fmtIv(ci, nsUnit), fmtIv(ai, nsUnit), costVerdict(ai, ci))
		wa, aok := all.Metric("writes/op")
		wc, cok := ch.Metric("writes/op")
		if aok && cok {
			line += fmt.Sprintf(", with %s register writes per update against %s", present.TrimFloat(wc), present.TrimFloat(wa))
		}
		w.p("%s.", line)
	}
	w.plotLink("registers-writes", "register writes per update")
	w.plotLink("registers-cost", "update cost by policy")
	w.p("")
}
