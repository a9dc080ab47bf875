package report

import "bpbench/runfile"

func (w *reportWriter) sectionExclusion() {
	w.p("## What does exclusive-breakpoint support cost?\n")
	cases := runfile.Family(w.all, "Exclusion")
	if len(cases) == 0 {
		w.absent("Exclusion")
		return
	}
	w.p("mode=on checks every reservation against a global list of breakpoints under one lock (powerpc's ptrace/perf exclusion, removed in 2023); mode=off is the same allocator without it.\n")
	for _, t := range runfile.ParamValues(cases, "tasks") {
		on := w.find("Exclusion", map[string]string{"mode": "on", "tasks": t})
		off := w.find("Exclusion", map[string]string{"mode": "off", "tasks": t})
		if on == nil || off == nil {
			continue
		}
		oi, fi := runfile.IvOf(on, "ns/op"), runfile.IvOf(off, "ns/op")
		w.p("- %s tasks: exclusion on %s, off %s per reservation (on/off: %s).", t, fmtIv(oi, nsUnit), fmtIv(fi, nsUnit), ratioVerdict(oi, fi))
	}
	w.plotLink("exclusion-cost", "exclusion on vs off")
	w.p("")
}
