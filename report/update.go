package report

import (
	"fmt"

	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// tally is a count of events (slots lost, spurious refusals) out of a
// number of operations, pooled over every run of the cases it covers.
type tally struct {
	k, n  float64
	cases int
}

func (t tally) String() string {
	lo, hi := stats.Wilson(t.k, t.n)
	return fmt.Sprintf("%.0f of %.0f (%s [%s, %s])", t.k, t.n, pct(t.k, t.n), pct(lo, 1), pct(hi, 1))
}

// losses pools the slots lost by Race cases matching want over every
// competitor count and rate.
func (w *reportWriter) losses(want map[string]string) tally {
	var t tally
	for _, c := range runfile.Family(w.all, "Race") {
		if !runfile.HasParams(c, want) {
			continue
		}
		s, ok := c.Metric("steals/op")
		if !ok {
			continue
		}
		t.k += s * float64(c.Iterations)
		t.n += float64(c.Iterations)
		t.cases++
	}
	return t
}

func (w *reportWriter) sectionUpdate() {
	w.p("## Is modifying a breakpoint in place cheaper and safer than re-registering it?\n")
	cases := runfile.Family(w.all, "Update")
	if len(cases) == 0 {
		w.absent("Update")
		return
	}
	backends := map[string]bool{}
	for _, c := range cases {
		backends[runfile.NameParams(c.Name)["backend"]] = true
	}
	for _, be := range present.OrderedBackends(backends) {
		for _, st := range runfile.ParamValues(runfile.Subset(cases, "backend", be), "strategy") {
			want := map[string]string{"backend": be}
			label := be
			if st != "" {
				want["strategy"], label = st, be+" (strategy "+st+")"
			}
			get := func(op string) *runfile.Case {
				q := map[string]string{"op": op}
				for k, v := range want {
					q[k] = v
				}
				return w.find("Update", q)
			}
			mod, de, rr := get("modify"), get("disable-enable"), get("reregister")
			if mod == nil {
				continue
			}
			mi := runfile.IvOf(mod, "ns/op")
			line := fmt.Sprintf("- **%s**: modify in place costs %s per update", label, fmtIv(mi, nsUnit))
			against := func(c *runfile.Case, what string) string {
				iv := runfile.IvOf(c, "ns/op")
				if iv.Separated(mi) {
					return fmt.Sprintf("it is %s than %s (%s)", present.Cheaper(iv.Median, mi.Median), what, fmtIv(iv, nsUnit))
				}
				return fmt.Sprintf("against %s (%s) it is %s", what, fmtIv(iv, nsUnit), resolveNote(iv, mi))
			}
			if rr != nil {
				line += "; " + against(rr, "re-register")
			}
			if de != nil {
				line += "; " + against(de, "disable-modify-enable")
			}
			lm, lr := w.losses(mergeParams(want, "mode", "modify")), w.losses(mergeParams(want, "mode", "reregister"))
			if lm.cases > 0 && lr.cases > 0 {
				line += fmt.Sprintf("; under competition modify lost %s slots against %s for re-register", lm, lr)
			}
			w.p("%s.", line)
			for _, c := range []*runfile.Case{mod, de, rr} {
				if c != nil {
					w.floorNote(c)
				}
			}
			if de != nil && rr != nil {
				di, ri := runfile.IvOf(de, "ns/op"), runfile.IvOf(rr, "ns/op")
				switch {
				case di.Separated(ri) && di.Median > ri.Median:
					w.p("  - Anomaly, **unexplained**: disable-modify-enable (%s) costs more than re-register (%s), though it reserves nothing.", fmtIv(di, nsUnit), fmtIv(ri, nsUnit))
				case di.Median > ri.Median:
					w.p("  - disable-modify-enable's median is above re-register's, but the difference is noise: %s.", resolveNote(di, ri))
				}
			}
		}
	}
	w.plotLink("update-cost", "update cost per backend")
	w.p("")
}

// floorNote prints an update's ratio to its raw-syscall floor where the
// case measured one, and explains a ratio below 1: noise when its
// interval contains 1, otherwise an unexplained anomaly.
func (w *reportWriter) floorNote(c *runfile.Case) {
	if _, ok := c.Metric("x-floor"); !ok {
		return
	}
	iv := runfile.IvOf(c, "x-floor")
	op := runfile.NameParams(c.Name)["op"]
	s := fmt.Sprintf("  - %s costs %s its raw-syscall floor (%s)", op, fmtIv(iv, suffixUnit("×")), present.FmtNs(runfile.MustMetric(c, "floor-ns/op")))
	switch {
	case iv.Median >= 1:
	case iv.N < 2:
		s += "; below 1 in a single value: whether that is noise cannot be told at this count (run with --count 6 or more)"
	case iv.Lo <= 1 && iv.Hi >= 1:
		s += "; below 1 only by noise: the interval contains 1 (the floor and the case are timed apart, on a shared machine)"
	default:
		s += "; anomaly, **unexplained**: cheaper than its own floor, outside the noise"
	}
	w.p("%s.", s)
}

func mergeParams(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}
