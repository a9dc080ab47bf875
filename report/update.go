package report

import (
	"fmt"
	"strings"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// updateRow is one backend's (and, on the simulator, one strategy's)
// three ways of changing a held breakpoint.
type updateRow struct {
	backend, strategy string
	mod, de, rr       *runfile.Case
}

func (r updateRow) label(w *reportWriter) string {
	if r.strategy == "" {
		return r.backend
	}
	return r.backend + " (" + w.strat(r.strategy) + ")"
}

func (w *reportWriter) updateRows() []updateRow {
	cases := runfile.Family(w.all, "Update")
	var rows []updateRow
	for _, be := range backendsOf(cases) {
		for _, st := range runfile.ParamValues(runfile.Subset(cases, bench.ParamBackend, be), "strategy") {
			want := map[string]string{bench.ParamBackend: be}
			if st != "" {
				want[bench.ParamStrategy] = st
			}
			get := func(op string) *runfile.Case { return w.find("Update", mergeParams(want, bench.ParamOp, op)) }
			r := updateRow{be, st, get("modify"), get("disable-enable"), get("reregister")}
			if r.mod != nil {
				rows = append(rows, r)
			}
		}
	}
	return rows
}

func (w *reportWriter) sectionUpdate() {
	w.section("Is modifying a breakpoint in place cheaper than re-registering it?\n")
	rows := w.updateRows()
	if len(rows) == 0 {
		w.absent("Update")
		return
	}
	w.p("Time per update; the last column compares modify in place with re-register. Slots lost in the window are in the next section.\n")
	w.p("| backend | modify in place | disable, modify, enable | re-register | modify vs re-register |\n|---|---|---|---|---|")
	cell := func(c *runfile.Case) string {
		if c == nil {
			return "n/a"
		}
		return w.iv(runfile.IvOf(c, bench.UnitNsPerOp), nsUnit)
	}
	for _, r := range rows {
		v := "n/a"
		if r.rr != nil {
			v = costVerdict(runfile.IvOf(r.rr, bench.UnitNsPerOp), runfile.IvOf(r.mod, bench.UnitNsPerOp))
		}
		w.p("| %s | %s | %s | %s | %s |", r.label(w), cell(r.mod), cell(r.de), cell(r.rr), v)
	}
	w.gap()
	for _, r := range rows {
		if r.de == nil || r.rr == nil {
			continue
		}
		di, ri := runfile.IvOf(r.de, bench.UnitNsPerOp), runfile.IvOf(r.rr, bench.UnitNsPerOp)
		if di.Separated(ri) && di.Median > ri.Median {
			w.p("- Anomaly, **unexplained**: on %s disable-modify-enable costs more than re-register, though it reserves nothing.", r.label(w))
		}
	}
	w.floorNotes(rows)
	w.updateVerdicts(rows)
	w.plotLink("update-cost", "update cost per backend")
	w.gap()
}

// floorNotes prints each op's ratio to its raw-syscall floor where the
// case measured one, one line per backend, and says once why a ratio
// below 1 is noise, cannot be told, or is unexplained.
func (w *reportWriter) floorNotes(rows []updateRow) {
	var single, noise, anomaly []string
	for _, r := range rows {
		var parts []string
		for _, c := range []*runfile.Case{r.mod, r.de, r.rr} {
			if c == nil {
				continue
			}
			if _, ok := c.Metric(bench.MetricXFloor); !ok {
				continue
			}
			iv := runfile.IvOf(c, bench.MetricXFloor)
			op := bench.NameParams(c.Name)[bench.ParamOp]
			parts = append(parts, fmt.Sprintf("%s %s of a %s floor", op, w.iv(iv, suffixUnit("×")), present.FmtNs(runfile.MustMetric(c, bench.MetricFloorNs))))
			where := r.label(w) + " " + op
			switch {
			case iv.Median >= 1:
			case iv.N < 2:
				single = append(single, where)
			case iv.Lo <= 1 && iv.Hi >= 1:
				noise = append(noise, where)
			default:
				anomaly = append(anomaly, where)
			}
		}
		if len(parts) > 0 {
			w.p("- %s, time per update over its raw-syscall floor (the op's bare syscalls, timed alone): %s.", r.label(w), strings.Join(parts, "; "))
		}
	}
	if len(single) > 0 {
		w.p("- Below 1 in a single value (%s): whether that is noise cannot be told at this count (run with --count 6 or more).", strings.Join(single, ", "))
	}
	if len(noise) > 0 {
		w.p("- Below 1 only by noise (%s): the interval contains 1; the floor and the case are timed apart, on a shared machine.", strings.Join(noise, ", "))
	}
	if len(anomaly) > 0 {
		w.p("- Anomaly, **unexplained** (%s): cheaper than its own floor, outside the noise.", strings.Join(anomaly, ", "))
	}
}

// updateVerdicts adds a row per real backend and one for the model's
// strategies together.
func (w *reportWriter) updateVerdicts(rows []updateRow) {
	const q = "Modify a held breakpoint in place, or re-register it: cost"
	var sim []updateRow
	broken := 0
	for _, r := range rows {
		if r.rr == nil {
			continue
		}
		if _, ok := w.broken[r.strategy]; ok && r.strategy != "" {
			broken++ // its figures are in the table, marked; not in the answer
			continue
		}
		if r.strategy != "" {
			sim = append(sim, r)
			continue
		}
		mi, ri := runfile.IvOf(r.mod, bench.UnitNsPerOp), runfile.IvOf(r.rr, bench.UnitNsPerOp)
		w.verdict(verdict{
			question: q + " (" + r.backend + ")",
			answer:   w.cheaperAnswer("modify in place", ri, mi),
			figure:   w.iv(mi, nsUnit) + " vs " + w.iv(ri, nsUnit),
			resolved: resolution(mi, ri),
		})
	}
	if len(sim) == 0 {
		return
	}
	var mods, rrs []float64
	res := map[string]string{}
	var order []string
	lo, hi := 0.0, 0.0
	for i, r := range sim {
		mi, ri := runfile.IvOf(r.mod, bench.UnitNsPerOp), runfile.IvOf(r.rr, bench.UnitNsPerOp)
		mods, rrs = append(mods, mi.Median), append(rrs, ri.Median)
		res[r.strategy], order = resolution(mi, ri), append(order, r.strategy)
		x := ri.Median / mi.Median
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	answer := fmt.Sprintf("modify in place, %s–%s× cheaper", present.TrimFloat(lo), present.TrimFloat(hi))
	if allResolved(res, order) != "yes" {
		answer = "modify in place has the lower median in " + countBelow(mods, rrs) + " strategies"
	}
	which := present.Plural(len(sim), "strategy")
	if broken > 0 {
		which += fmt.Sprintf(" that kept the rules; %d † left out", broken)
	}
	w.verdict(verdict{
		question: q + " (model, " + which + ")",
		answer:   answer,
		figure:   fmt.Sprintf("medians %s vs %s", spanNs(mods), spanNs(rrs)),
		resolved: allResolved(res, order),
	})
}

// cheaperAnswer says which of two costs is cheaper, by how much, when
// their intervals separate.
func (w *reportWriter) cheaperAnswer(what string, theirs, ours stats.Interval) string {
	if !theirs.Separated(ours) {
		return "no difference shown"
	}
	if ours.Median <= theirs.Median {
		return what + ", " + present.Cheaper(theirs.Median, ours.Median)
	}
	return what + " is " + present.Cheaper(theirs.Median, ours.Median)
}

func countBelow(a, b []float64) string {
	n := 0
	for i := range a {
		if a[i] < b[i] {
			n++
		}
	}
	return fmt.Sprintf("%d of %d", n, len(a))
}

// spanNs prints the range of some medians in nanoseconds: "65.5–66.1 ns".
func spanNs(vs []float64) string {
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	if present.FmtNs(lo) == present.FmtNs(hi) {
		return present.FmtNs(lo)
	}
	return present.FmtNs(lo) + "–" + present.FmtNs(hi)
}
