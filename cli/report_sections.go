package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// tally is a count of events (slots lost, spurious refusals) out of a
// number of operations, pooled over every run of the cases it covers.
type tally struct {
	k, n  float64
	cases int
}

func (t tally) String() string {
	lo, hi := Wilson(t.k, t.n)
	return fmt.Sprintf("%.0f of %.0f (%s [%s, %s])", t.k, t.n, pct(t.k, t.n), pct(lo, 1), pct(hi, 1))
}

// losses pools the slots lost by Race cases matching want over every
// competitor count and rate.
func (w *reportWriter) losses(want map[string]string) tally {
	var t tally
	for _, c := range family(w.all, "Race") {
		if !hasParams(c, want) {
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
	cases := family(w.all, "Update")
	if len(cases) == 0 {
		w.absent("Update")
		return
	}
	backends := map[string]bool{}
	for _, c := range cases {
		backends[nameParams(c.Name)["backend"]] = true
	}
	for _, be := range orderedBackends(backends) {
		for _, st := range paramValues(subset(cases, "backend", be), "strategy") {
			want := map[string]string{"backend": be}
			label := be
			if st != "" {
				want["strategy"], label = st, be+" (strategy "+st+")"
			}
			get := func(op string) *caseSummary {
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
			mi := ivOf(mod, "ns/op")
			line := fmt.Sprintf("- **%s**: modify in place costs %s per update", label, fmtIv(mi, nsUnit))
			against := func(c *caseSummary, what string) string {
				iv := ivOf(c, "ns/op")
				if separated(iv, mi) {
					return fmt.Sprintf("it is %s than %s (%s)", cheaper(iv.Median, mi.Median), what, fmtIv(iv, nsUnit))
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
			for _, c := range []*caseSummary{mod, de, rr} {
				if c != nil {
					w.floorNote(c)
				}
			}
			if de != nil && rr != nil {
				di, ri := ivOf(de, "ns/op"), ivOf(rr, "ns/op")
				switch {
				case separated(di, ri) && di.Median > ri.Median:
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
func (w *reportWriter) floorNote(c *caseSummary) {
	if _, ok := c.Metric("x-floor"); !ok {
		return
	}
	iv := ivOf(c, "x-floor")
	op := nameParams(c.Name)["op"]
	s := fmt.Sprintf("  - %s costs %s its raw-syscall floor (%s)", op, fmtIv(iv, suffixUnit("×")), fmtNs(mustMetric(c, "floor-ns/op")))
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

// achievedRate is a race case's competitor attempt rate as achieved
// (rate-achieved/s, or competitor-attempts/s in older results).
func achievedRate(c *caseSummary) (Interval, bool) {
	for _, u := range []string{"rate-achieved/s", "competitor-attempts/s"} {
		if _, ok := c.Metric(u); ok {
			return ivOf(c, u), true
		}
	}
	return Interval{}, false
}

func (w *reportWriter) sectionRace() {
	w.p("## How often does re-registering lose the slot to a competitor?\n")
	cases := family(w.all, "Race")
	if len(cases) == 0 {
		w.absent("Race")
		return
	}
	w.p("Slots lost are pooled over every competitor count and rate; brackets are the 95%% Wilson interval of the loss rate.\n")
	backends := map[string]bool{}
	for _, c := range cases {
		backends[nameParams(c.Name)["backend"]] = true
	}
	places := paramValues(cases, "place")
	for _, be := range orderedBackends(backends) {
		for _, pl := range places {
			want := map[string]string{"backend": be}
			label := be
			if pl != "" {
				want["place"] = pl
				label += ", " + placeLabel(pl)
			}
			lm, lr := w.losses(mergeParams(want, "mode", "modify")), w.losses(mergeParams(want, "mode", "reregister"))
			if lm.cases+lr.cases == 0 {
				continue
			}
			var parts []string
			if lm.cases > 0 {
				parts = append(parts, "modify in place lost "+lm.String())
			}
			if lr.cases > 0 {
				parts = append(parts, "re-register lost "+lr.String())
			}
			w.p("- **%s**: %s, over %d cases.", label, strings.Join(parts, "; "), lm.cases+lr.cases)
		}
	}
	// The worst case per backend, mode and place: where the window matters most.
	type key struct{ be, mode, place string }
	worst := map[key]*caseSummary{}
	var keys []key
	for _, c := range cases {
		p := nameParams(c.Name)
		k := key{p["backend"], p["mode"], p["place"]}
		// Cases without steals show no window worth citing.
		if s, _ := c.Metric("steals/op"); s > 0 {
			b := worst[k]
			if b == nil {
				keys = append(keys, k)
			}
			if b == nil || s > mustMetric(b, "steals/op") {
				worst[k] = c
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].be+keys[i].mode+keys[i].place < keys[j].be+keys[j].mode+keys[j].place
	})
	for _, k := range keys {
		c := worst[k]
		si := stealsIv(c)
		line := fmt.Sprintf("- worst %s/%s case `%s`: %s steals/op", k.be, k.mode, c.Name, fmtIv(si, plainUnit))
		if ch, ok := c.Metric("changes"); ok {
			line += fmt.Sprintf(" over %.0f changes", ch)
		}
		if r, ok := achievedRate(c); ok {
			line += fmt.Sprintf(", competitor achieved %s attempts/s", fmtIv(r, countUnit))
		}
		if pr, ok := c.Metric("steals-predicted/op"); ok {
			if pr >= si.Lo && pr <= si.Hi {
				line += fmt.Sprintf(", as predicted (%s)", trimFloat(pr))
			} else {
				line += fmt.Sprintf(", predicted %s: outside the interval, %s", trimFloat(pr), raceGapCause(c, si, pr))
			}
		}
		if _, ok := c.Metric("window-ns/p50"); ok {
			line += ", race window p50 " + fmtIv(ivOf(c, "window-ns/p50"), nsUnit)
		}
		if v, ok := c.Metric("window-ns/p99"); ok {
			line += ", p99 " + fmtNs(v)
		}
		// The window is the model's release -> reserve time; unarmed adds
		// the register writes around it (results before it was measured
		// lack the metric).
		if _, ok := c.Metric("unarmed-ns/p50"); ok {
			line += ", unarmed p50 " + fmtIv(ivOf(c, "unarmed-ns/p50"), nsUnit)
			if p99, ok := c.Metric("unarmed-ns/p99"); ok {
				line += ", p99 " + fmtNs(p99)
			}
		}
		w.p("%s.", line)
	}
	w.spurious("Race", "race")
	for _, be := range orderedBackends(backends) {
		for _, pl := range places {
			w.plotLink(raceStealsStem(be, pl), "steals vs achieved competitor rate, backend="+be+placeAlt(pl))
		}
	}
	w.plotLink("race-window-cdf", "race window CDF")
	w.p("")
}

func placeAlt(pl string) string {
	if pl == "" {
		return ""
	}
	return ", place=" + pl
}

// spurious reports the refusals a lock-free strategy made with a slot
// free (alloc.SpuriousRefusals), pooled per strategy over fam's runs:
// they are not lost slots but retries the caller must make.
func (w *reportWriter) spurious(fam, what string) {
	type agg struct {
		k, n      float64
		runs      int
		worst     float64
		worstOps  int64
		worstName string
	}
	by := map[string]*agg{}
	for _, r := range w.run.Results {
		if f, _, _ := strings.Cut(r.Name, "/"); f != fam {
			continue
		}
		k, ok := r.Metrics["spurious-refusals"]
		if !ok {
			v, ok2 := r.Metrics["spurious/op"]
			if !ok2 {
				continue
			}
			k = v * float64(r.Iterations)
		}
		st := nameParams(r.Name)["strategy"]
		a := by[st]
		if a == nil {
			a = &agg{}
			by[st] = a
		}
		a.k += k
		a.n += float64(r.Iterations)
		a.runs++
		if k > a.worst {
			a.worst, a.worstOps, a.worstName = k, r.Iterations, r.Name
		}
	}
	for _, st := range sortedKeys(by) {
		a := by[st]
		if a.k == 0 {
			w.p("- %s: no spurious refusals in %d %s runs (%.0f operations).", st, a.runs, what, a.n)
			continue
		}
		w.p("- %s refused %.0f reservations spuriously (a slot was free; the caller retries) over %d %s runs of %.0f operations; worst run: %.0f in %d operations (`%s`).",
			st, a.k, a.runs, what, a.n, a.worst, a.worstOps, a.worstName)
	}
}

func (w *reportWriter) sectionScaling() {
	w.p("## Which allocation strategy scales with concurrent reservers?\n")
	cases := family(w.all, "Scaling")
	if len(cases) == 0 {
		w.absent("Scaling")
		return
	}
	ncpu := w.run.Machine.NumCPU
	for _, mix := range paramValues(cases, "mix") {
		if mix != "" {
			w.p("### mix=%s\n", mix)
		}
		w.scalingTable(subset(cases, "mix", mix), ncpu)
	}
	w.spurious("Scaling", "scaling")
	for _, mix := range paramValues(cases, "mix") {
		w.plotLink(scalingStem(mix), "throughput vs goroutines"+strings.TrimSuffix(" mix="+mix, " mix="))
	}
	w.p("")
}

// goroutinesLabel names a goroutine count, marking counts above the
// machine's CPUs as time-sliced.
func goroutinesLabel(g, ncpu int) string {
	s := plural(g, "goroutine")
	if ncpu > 0 && g > ncpu {
		s += fmt.Sprintf(" (time-sliced on %d vCPUs)", ncpu)
	}
	return s
}

func (w *reportWriter) scalingTable(cases []*caseSummary, ncpu int) {
	maxG := 0
	for _, c := range cases {
		g, _ := strconv.Atoi(nameParams(c.Name)["goroutines"])
		maxG = max(maxG, g)
	}
	type row struct {
		strategy string
		one, top Interval
	}
	var rows []row
	for _, st := range paramValues(cases, "strategy") {
		r := row{strategy: st}
		for _, c := range cases {
			p := nameParams(c.Name)
			if p["strategy"] != st {
				continue
			}
			switch p["goroutines"] {
			case "1":
				r.one = tputIv(c)
			case strconv.Itoa(maxG):
				r.top = tputIv(c)
			}
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].top.Median > rows[j].top.Median })
	w.p("| strategy | ops/s at 1 goroutine | ops/s at %s | scaling |\n|---|---|---|---|", goroutinesLabel(maxG, ncpu))
	for _, r := range rows {
		w.p("| %s | %s | %s | %s |", r.strategy, fmtIv(r.one, countUnit), fmtIv(r.top, countUnit), ratio(r.top.Median, r.one.Median))
	}
	falls := false
	for _, r := range rows {
		falls = falls || (separated(r.top, r.one) && r.top.Median < r.one.Median)
	}
	if falls && ncpu > 0 && maxG > ncpu {
		w.p("\nScaling below 1×: no gain is possible beyond %d goroutines, where the %d vCPUs are time-sliced; that throughput falls rather than stays flat is contention on the allocator's shared state and preemption inside its critical sections, which this run does not measure apart.", ncpu, ncpu)
	} else if falls {
		w.p("\nScaling below 1× with no more goroutines than vCPUs: **unexplained**.")
	}
	if len(rows) > 1 && rows[len(rows)-1].top.Median > 0 {
		a, b, z := rows[0], rows[1], rows[len(rows)-1]
		at := "At " + goroutinesLabel(maxG, ncpu)
		if separated(a.top, b.top) {
			w.p("\n%s %s is fastest, %s the throughput of the next, %s, and %s that of %s.", at, a.strategy, ratio(a.top.Median, b.top.Median), b.strategy, ratio(a.top.Median, z.top.Median), z.strategy)
		} else {
			w.p("\n%s %s has the highest median, but its lead over %s is %s.", at, a.strategy, b.strategy, resolveNote(a.top, b.top))
			if separated(a.top, z.top) {
				w.p("It is %s the throughput of %s, the slowest.", ratio(a.top.Median, z.top.Median), z.strategy)
			}
		}
	}
	w.p("")
}

// cpusLabel says which CPU count a Tasks case ran at: the host's or a
// simulated one.
func cpusLabel(cpus string, host int) string {
	switch {
	case cpus == "":
		return "at the host's CPU count"
	case cpus == strconv.Itoa(host):
		return fmt.Sprintf("at %s CPUs (the host's count)", cpus)
	}
	return fmt.Sprintf("at %s simulated CPUs", cpus)
}

func (w *reportWriter) sectionTasks() {
	w.p("## Does reservation cost grow with the number of live tasks, and with CPUs?\n")
	cases := family(w.all, "Tasks")
	if len(cases) == 0 {
		w.absent("Tasks")
		return
	}
	for _, cpus := range paramValues(cases, "cpus") {
		// Compare at the largest task count that legacy and others share.
		byTasks := map[int]map[string]*caseSummary{}
		for _, c := range cases {
			p := nameParams(c.Name)
			n, err := strconv.Atoi(p["tasks"])
			if err != nil || p["cpus"] != cpus {
				continue
			}
			if byTasks[n] == nil {
				byTasks[n] = map[string]*caseSummary{}
			}
			byTasks[n][p["strategy"]] = c
		}
		var counts []int
		for n := range byTasks {
			counts = append(counts, n)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(counts)))
		where := cpusLabel(cpus, w.run.Machine.NumCPU)
		if len(paramValues(cases, "cpus")) > 1 {
			w.p("**%s%s:**\n", strings.ToUpper(where[:1]), where[1:])
		}
		said := false
		for _, n := range counts {
			leg := byTasks[n]["legacy"]
			if leg == nil || len(byTasks[n]) < 2 {
				continue
			}
			li := ivOf(leg, "ns/op")
			for _, st := range sortedKeys(byTasks[n]) {
				if st == "legacy" {
					continue
				}
				oi := ivOf(byTasks[n][st], "ns/op")
				v := resolveNote(li, oi)
				if separated(li, oi) {
					v = ratio(li.Median, oi.Median) + " slower"
				}
				w.p("- %s, at %d tasks legacy costs %s per reservation against %s for %s: %s.", where, n, fmtIv(li, nsUnit), fmtIv(oi, nsUnit), st, v)
			}
			said = true
			break
		}
		if !said {
			w.p("- _No task count with both the legacy strategy and another one; no comparison._")
		}
		if len(counts) > 1 {
			lo, hi := counts[len(counts)-1], counts[0]
			for _, st := range sortedKeys(byTasks[hi]) {
				a, b := byTasks[lo][st], byTasks[hi][st]
				if a == nil || b == nil {
					continue
				}
				ai, bi := ivOf(a, "ns/op"), ivOf(b, "ns/op")
				v := resolveNote(bi, ai)
				if separated(ai, bi) {
					v = ratio(bi.Median, ai.Median)
					if bi.Median < ai.Median {
						v += "; cheaper with more live tasks: **unexplained**"
					}
				}
				w.p("- %s: %s with %d live tasks, %s with %d (%s).", st, fmtIv(ai, nsUnit), lo, fmtIv(bi, nsUnit), hi, v)
			}
		}
		w.p("")
	}
	for _, cpus := range paramValues(cases, "cpus") {
		w.plotLink(tasksStem(cpus), "cost vs live tasks"+strings.TrimSuffix(", cpus="+cpus, ", cpus="))
	}
	w.plotLink("tasks-cpus", "cost vs CPUs")
	w.p("")
}

// kernelEnableCaveat explains the one kernel case where Go and perf bench
// differ by an order of magnitude (README, Known limitations).
const kernelEnableCaveat = "the Go child runtime keeps threads on the other vCPU that carry the inherited events, so toggles need cross-CPU work that perf bench's single thread avoids. The thread benchmark, which is what Elver's series measured, agrees."

func (w *reportWriter) sectionKernel() {
	w.p("## Does the Go harness measure what perf bench breakpoint measures?\n")
	cases := append(family(w.all, "KernelThread"), family(w.all, "KernelEnable")...)
	if len(cases) == 0 {
		w.absent("KernelThread/KernelEnable")
		return
	}
	w.p("| case | Go usecs/op | perf usecs/op | Go/perf | Go slowdown | perf slowdown |\n|---|---|---|---|---|---|")
	caveat := ""
	for _, c := range cases {
		cell := func(unit string) (Interval, string) {
			if _, ok := c.Metric(unit); !ok {
				return Interval{}, "n/a"
			}
			iv := ivOf(c, unit)
			return iv, fmtIv(iv, plainUnit)
		}
		g, gs := cell("usecs/op")
		pf, ps := cell("perf-usecs/op")
		r := "n/a"
		if g.N > 0 && pf.N > 0 {
			r = ratioVerdict(g, pf)
			if !separated(g, pf) {
				r = "~ (" + r + ")"
			}
		}
		_, sd := cell("slowdown")
		_, psd := cell("perf-slowdown")
		w.p("| `%s` | %s | %s | %s | %s | %s |", c.Name, gs, ps, r, sd, psd)
		if hasParams(c, map[string]string{"passive": "0", "active": "0"}) && c.Family() == "KernelEnable" && pf.Median > 0 && g.Median/pf.Median > 3 {
			caveat = fmt.Sprintf("`%s` in Go is %s perf bench: %s", c.Name, ratio(g.Median, pf.Median), kernelEnableCaveat)
		}
	}
	if caveat != "" {
		w.p("\nCause of the outlier: %s", caveat)
	}
	w.plotLink("kernel-vs-perf", "Go vs perf bench")
	w.p("")
}

func (w *reportWriter) sectionRegisters() {
	w.p("## Should updates write only the changed debug registers?\n")
	cases := family(w.all, "Registers")
	if len(cases) == 0 {
		w.absent("Registers")
		return
	}
	backends := map[string]bool{}
	for _, c := range cases {
		backends[nameParams(c.Name)["backend"]] = true
	}
	for _, be := range orderedBackends(backends) {
		all := w.find("Registers", map[string]string{"backend": be, "policy": "all"})
		ch := w.find("Registers", map[string]string{"backend": be, "policy": "changed"})
		if all == nil || ch == nil {
			continue
		}
		ai, ci := ivOf(all, "ns/op"), ivOf(ch, "ns/op")
		line := fmt.Sprintf("- **%s**: write-changed costs %s per update against %s for write-all (%s)",
			be, fmtIv(ci, nsUnit), fmtIv(ai, nsUnit), costVerdict(ai, ci))
		wa, aok := all.Metric("writes/op")
		wc, cok := ch.Metric("writes/op")
		if aok && cok {
			line += fmt.Sprintf(", with %s register writes per update against %s", trimFloat(wc), trimFloat(wa))
		}
		w.p("%s.", line)
	}
	w.plotLink("registers-writes", "register writes per update")
	w.plotLink("registers-cost", "update cost by policy")
	w.p("")
}

func (w *reportWriter) sectionExclusion() {
	w.p("## What does exclusive-breakpoint support cost?\n")
	cases := family(w.all, "Exclusion")
	if len(cases) == 0 {
		w.absent("Exclusion")
		return
	}
	w.p("mode=on checks every reservation against a global list of breakpoints under one lock (powerpc's ptrace/perf exclusion, removed in 2023); mode=off is the same allocator without it.\n")
	for _, t := range paramValues(cases, "tasks") {
		on := w.find("Exclusion", map[string]string{"mode": "on", "tasks": t})
		off := w.find("Exclusion", map[string]string{"mode": "off", "tasks": t})
		if on == nil || off == nil {
			continue
		}
		oi, fi := ivOf(on, "ns/op"), ivOf(off, "ns/op")
		w.p("- %s tasks: exclusion on %s, off %s per reservation (on/off: %s).", t, fmtIv(oi, nsUnit), fmtIv(fi, nsUnit), ratioVerdict(oi, fi))
	}
	w.plotLink("exclusion-cost", "exclusion on vs off")
	w.p("")
}

// blindUnits returns the blind-window metric a BlindWindow case reports,
// preferring the window from the request (what a debugger user sees) to
// the older first-to-last-armed one, and whether it is from the request.
func blindUnit(c *caseSummary, q string) (string, bool) {
	if _, ok := c.Metric("blind-request-ns/" + q); ok {
		return "blind-request-ns/" + q, true
	}
	return "blind-ns/" + q, false
}

func (w *reportWriter) sectionThreads() {
	if len(family(w.all, "Apply"))+len(family(w.all, "BlindWindow")) == 0 {
		return // issue 6 experiments; not every run has them
	}
	w.p("## Should a multi-threaded debugger apply registers eagerly or lazily?\n")
	w.p("Eager stops every thread, writes its registers and resumes it; lazy records the change and writes a thread's registers just before it next resumes (rr, GDB). " +
		"Apply times a set, a modify and a clear of one watchpoint on every thread (three changes); its cost and writes are per change per thread. " +
		"BlindWindow measures how long the watchpoint is not armed on every thread, and the tracee's writes on threads not yet armed, which no trap reports.\n")
	if cs := family(w.all, "Apply"); len(cs) > 0 {
		nsU := unitIn(cs, "ns/change-thread", "ns/thread")
		wrU := unitIn(cs, "writes/change-thread", "writes/thread")
		w.p("| Apply threads | eager | lazy |\n|---|---|---|")
		for _, t := range paramValues(cs, "threads") {
			var cells [2]string
			for i, pol := range []string{"eager", "lazy"} {
				c := w.find("Apply", map[string]string{"policy": pol, "threads": t})
				if c == nil {
					cells[i] = "n/a"
					continue
				}
				var parts []string
				if _, ok := c.Metric(nsU); ok {
					parts = append(parts, fmtIv(ivOf(c, nsU), nsUnit)+" per change per thread")
				}
				if v, ok := c.Metric(wrU); ok {
					parts = append(parts, trimFloat(v)+" register writes per change per thread")
				}
				cells[i] = strings.Join(parts, ", ")
			}
			w.p("| %s | %s | %s |", t, cells[0], cells[1])
		}
		w.threadVerdict("Apply", nsU, "per change per thread")
		w.p("")
	}
	if cs := family(w.all, "BlindWindow"); len(cs) > 0 {
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
		for _, t := range paramValues(cs, "threads") {
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
					s := fmtIv(ivOf(c, u), nsUnit) + " blind"
					if u != "blind-ns/p50" {
						if v, ok := c.Metric("blind-ns/p50"); ok {
							s += " (" + fmtNs(v) + ")"
						}
					}
					parts = append(parts, s)
				}
				if v, ok := c.Metric("missed/op"); ok {
					parts = append(parts, trimFloat(v)+" missed writes per set")
					if b, _ := c.Metric(u); b == 0 && v > 0 && u == "blind-ns/p50" {
						zeroWindowMissed = append(zeroWindowMissed, pol+" at "+plural(atoiOr(t, 0), "thread"))
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
	ts := paramValues(family(w.all, fam), "threads")
	for i := len(ts) - 1; i >= 0; i-- {
		e := w.find(fam, map[string]string{"policy": "eager", "threads": ts[i]})
		l := w.find(fam, map[string]string{"policy": "lazy", "threads": ts[i]})
		if e == nil || l == nil {
			continue
		}
		if _, ok := e.Metric(unit); !ok {
			return
		}
		ei, li := ivOf(e, unit), ivOf(l, unit)
		v := resolveNote(li, ei)
		if separated(ei, li) {
			v = "lazy/eager = " + ratio(li.Median, ei.Median)
		}
		w.p("\nAt %s threads, %s: eager %s, lazy %s: %s.", ts[i], what, fmtIv(ei, nsUnit), fmtIv(li, nsUnit), v)
		return
	}
}

// raceGapCause says why a race case's measured steal rate is outside what
// its own window and competitor rate predict, where the cause is known from
// how the case runs (see bench/race_predict.go), and marks it unexplained
// otherwise.
func raceGapCause(c *caseSummary, measured Interval, predicted float64) string {
	p := nameParams(c.Name)
	switch {
	case p["place"] == "same" && measured.Hi < predicted:
		return "because holder and competitor share one CPU: the competitor runs only when the scheduler preempts the holder, so its attempts almost never land inside the window, while the prediction assumes they arrive independently of it"
	case p["strategy"] == "mutex" && measured.Hi < predicted:
		return "because the holder releases and re-reserves under one mutex and gets it straight back: the competitor's attempts queue behind the lock instead of landing in the window"
	case p["rate"] == "max" && measured.Lo > predicted:
		cause := "because an unlimited competitor that wins keeps re-taking the slot, and while it is preempted holding it the holder makes no changes at all, so the competitor's on-CPU share understates its presence in the windows that remain"
		if p["backend"] == "perf" {
			cause += "; on perf its CPU-bound opens also take the write side of bp_cpuinfo_sem, which holds back the holder's re-open"
		}
		return cause
	}
	return "**unexplained**"
}
