package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"bpbench/bench"
)

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	run, err := loadRunArg(pos, "report", "bpbench report DIR")
	if err != nil {
		return err
	}
	md := buildReport(run, pos[0])
	if err := writeFileAtomic(filepath.Join(pos[0], reportFile), []byte(md)); err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	return nil
}

// reportWriter accumulates the Markdown report. Every number it prints
// comes from the run; a section whose data is absent says so.
type reportWriter struct {
	strings.Builder
	dir string
	all []*caseSummary
}

func (w *reportWriter) p(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }

// plotLink links a chart if it was drawn into DIR/plots.
func (w *reportWriter) plotLink(stem, alt string) {
	rel := filepath.Join(plotsDir, stem+".png")
	if _, err := os.Stat(filepath.Join(w.dir, rel)); err == nil {
		w.p("\n![%s](%s)", alt, filepath.ToSlash(rel))
	}
}

func (w *reportWriter) absent(what string) {
	w.p("_No %s results in this run; section omitted._", what)
}

// buildReport renders the report for run, whose plots are under dir/plots.
func buildReport(run *bench.Run, dir string) string {
	w := &reportWriter{dir: dir, all: summarize(run)}
	m := run.Machine
	w.p("# bpbench report\n")
	w.p("| | |\n|---|---|")
	slots := "unknown"
	if m.Slots > 0 {
		slots = strconv.Itoa(m.Slots)
	}
	for _, kv := range [][2]string{
		{"host", m.Host}, {"cpu", m.CPUModel}, {"cpus / GOMAXPROCS", fmt.Sprintf("%d / %d", m.NumCPU, m.GOMAXPROCS)},
		{"kernel", m.Kernel}, {"goos/goarch", m.GOOS + "/" + m.GOARCH}, {"go", m.GoVersion},
		{"breakpoint slots per thread", slots}, {"tracer pinned to CPU", strconv.Itoa(m.PinnedCPU)},
		{"commit", m.Commit}, {"suite", run.Mode},
		{"started", run.Started.Format(time.RFC3339)}, {"duration", run.Duration.Round(time.Millisecond).String()},
	} {
		w.p("| %s | %s |", kv[0], kv[1])
	}
	w.p("")
	w.sectionUpdate()
	w.sectionRace()
	w.sectionScaling()
	w.sectionTasks()
	w.sectionKernel()
	w.sectionRegisters()
	w.sectionExclusion()
	w.sectionThreads()
	if len(run.Skipped) > 0 {
		w.p("\n## Skipped\n")
		for _, s := range run.Skipped {
			w.p("- `%s`: %s", s.Name, s.Reason)
		}
	}
	if len(run.Failed) > 0 {
		w.p("\n## Failed\n")
		for _, f := range run.Failed {
			w.p("- `%s`: %s", f.Name, f.Error)
		}
	}
	return w.String()
}

// find returns the case of family fam whose name parameters include all
// of want, preferring the first.
func (w *reportWriter) find(fam string, want map[string]string) *caseSummary {
	for _, c := range family(w.all, fam) {
		p := nameParams(c.Name)
		ok := true
		for k, v := range want {
			if p[k] != v {
				ok = false
				break
			}
		}
		if ok {
			return c
		}
	}
	return nil
}

// losses sums the slots lost by Race cases of one backend, strategy ("":
// any) and mode over every competitor count and rate.
func (w *reportWriter) losses(backend, strategy, mode string) (lost, of float64, n int) {
	for _, c := range family(w.all, "Race") {
		p := nameParams(c.Name)
		if p["backend"] != backend || p["mode"] != mode || (strategy != "" && p["strategy"] != strategy) {
			continue
		}
		s, ok := c.Metric("steals/op")
		if !ok {
			continue
		}
		lost += s * float64(c.Iterations)
		of += float64(c.Iterations)
		n++
	}
	return lost, of, n
}

func (w *reportWriter) sectionUpdate() {
	w.p("## Is modifying a breakpoint in place cheaper and safer than re-registering it?\n")
	if len(family(w.all, "Update")) == 0 {
		w.absent("Update")
		return
	}
	for _, be := range []string{"ptrace", "perf", "sim"} {
		strategies := map[string]bool{}
		for _, c := range family(w.all, "Update") {
			if p := nameParams(c.Name); p["backend"] == be {
				strategies[p["strategy"]] = true
			}
		}
		for _, st := range sortedKeys(strategies) {
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
			line := fmt.Sprintf("- **%s**: modify in place costs %s per update", label, fmtNs(mod.NsPerOp))
			if rr != nil {
				line += fmt.Sprintf("; it is %s than re-register (%s)", cheaper(rr.NsPerOp, mod.NsPerOp), fmtNs(rr.NsPerOp))
			}
			if de != nil {
				line += fmt.Sprintf(" and %s than disable-modify-enable (%s)", cheaper(de.NsPerOp, mod.NsPerOp), fmtNs(de.NsPerOp))
			}
			if lm, om, nm := w.losses(be, st, "modify"); nm > 0 {
				lr, or, nr := w.losses(be, st, "reregister")
				if nr > 0 {
					line += fmt.Sprintf(", and under competition lost %.0f of %.0f slots against %.0f of %.0f for re-register", lm, om, lr, or)
				}
			}
			w.p("%s.", line)
		}
	}
	w.plotLink("update-cost", "update cost per backend")
	w.p("")
}

func (w *reportWriter) sectionRace() {
	w.p("## How often does re-registering lose the slot to a competitor?\n")
	cases := family(w.all, "Race")
	if len(cases) == 0 {
		w.absent("Race")
		return
	}
	backends := map[string]bool{}
	for _, c := range cases {
		backends[nameParams(c.Name)["backend"]] = true
	}
	for _, be := range sortedKeys(backends) {
		lm, om, nm := w.losses(be, "", "modify")
		lr, or, nr := w.losses(be, "", "reregister")
		if nm+nr == 0 {
			continue
		}
		line := fmt.Sprintf("- **%s**:", be)
		if nm > 0 {
			line += fmt.Sprintf(" modify in place lost %.0f of %.0f slots (%s)", lm, om, pct(lm, om))
		}
		if nr > 0 {
			if nm > 0 {
				line += ";"
			}
			line += fmt.Sprintf(" re-register lost %.0f of %.0f (%s)", lr, or, pct(lr, or))
		}
		w.p("%s, over %d cases of competitor counts and rates.", line, nm+nr)
	}
	// The worst case per backend and mode: where the window matters most.
	type key struct{ be, mode string }
	worst := map[key]*caseSummary{}
	for _, c := range cases {
		p := nameParams(c.Name)
		k := key{p["backend"], p["mode"]}
		// Cases without steals show no window worth citing.
		if s, _ := c.Metric("steals/op"); s > 0 {
			if b := worst[k]; b == nil || s > mustMetric(b, "steals/op") {
				worst[k] = c
			}
		}
	}
	var ks []key
	for k := range worst {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].be+ks[i].mode < ks[j].be+ks[j].mode })
	for _, k := range ks {
		c := worst[k]
		line := fmt.Sprintf("- worst %s/%s case `%s`: %s steals/op", k.be, k.mode, c.Name, trimFloat(mustMetric(c, "steals/op")))
		if v, ok := c.Metric("window-ns/p50"); ok {
			line += ", race window p50 " + fmtNs(v)
		}
		if v, ok := c.Metric("window-ns/p99"); ok {
			line += ", p99 " + fmtNs(v)
		}
		// The window is the model's release -> reserve time; unarmed adds
		// the register writes around it (results before it was measured
		// lack the metric).
		if p50, ok := c.Metric("unarmed-ns/p50"); ok {
			line += ", unarmed p50 " + fmtNs(p50)
			if p99, ok := c.Metric("unarmed-ns/p99"); ok {
				line += ", p99 " + fmtNs(p99)
			}
		}
		w.p("%s.", line)
	}
	for _, be := range orderedBackends(backends) {
		w.plotLink(raceStealsStem(be), "steals vs competitor rate, backend="+be)
	}
	w.plotLink("race-window-cdf", "race window CDF")
	w.p("")
}

func mustMetric(c *caseSummary, unit string) float64 {
	v, _ := c.Metric(unit)
	return v
}

func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return trimFloat(100*a/b) + "%"
}

func (w *reportWriter) sectionScaling() {
	w.p("## Which allocation strategy scales with concurrent reservers?\n")
	cases := family(w.all, "Scaling")
	if len(cases) == 0 {
		w.absent("Scaling")
		return
	}
	maxG := 0
	for _, c := range cases {
		g, _ := strconv.Atoi(nameParams(c.Name)["goroutines"])
		maxG = max(maxG, g)
	}
	type row struct {
		strategy string
		one, top float64
	}
	var rows []row
	tput := func(c *caseSummary) float64 {
		if v, ok := c.Metric("ops/s"); ok {
			return v
		}
		if c.NsPerOp > 0 {
			return 1e9 / c.NsPerOp
		}
		return 0
	}
	strategies := map[string]bool{}
	for _, c := range cases {
		strategies[nameParams(c.Name)["strategy"]] = true
	}
	for _, st := range sortedKeys(strategies) {
		r := row{strategy: st}
		if c := w.find("Scaling", map[string]string{"strategy": st, "goroutines": "1"}); c != nil {
			r.one = tput(c)
		}
		if c := w.find("Scaling", map[string]string{"strategy": st, "goroutines": strconv.Itoa(maxG)}); c != nil {
			r.top = tput(c)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].top > rows[j].top })
	w.p("| strategy | ops/s at 1 goroutine | ops/s at %d goroutines | scaling |\n|---|---|---|---|", maxG)
	for _, r := range rows {
		w.p("| %s | %s | %s | %s |", r.strategy, fmtCount(r.one), fmtCount(r.top), ratio(r.top, r.one))
	}
	if len(rows) > 1 && rows[len(rows)-1].top > 0 {
		w.p("\nAt %d goroutines %s is fastest, %s the throughput of %s.", maxG, rows[0].strategy,
			ratio(rows[0].top, rows[len(rows)-1].top), rows[len(rows)-1].strategy)
	}
	w.plotLink("scaling-throughput", "throughput vs goroutines")
	w.p("")
}

func fmtCount(v float64) string {
	switch {
	case v == 0:
		return "n/a"
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e3:
		return trimFloat(v/1e3) + "k"
	}
	return trimFloat(v)
}

func (w *reportWriter) sectionTasks() {
	w.p("## Does reservation cost grow with the number of live tasks?\n")
	cases := family(w.all, "Tasks")
	if len(cases) == 0 {
		w.absent("Tasks")
		return
	}
	// Compare at the largest task count that legacy and others share.
	byTasks := map[int]map[string]*caseSummary{}
	for _, c := range cases {
		p := nameParams(c.Name)
		n, err := strconv.Atoi(p["tasks"])
		if err != nil {
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
	said := false
	for _, n := range counts {
		leg := byTasks[n]["legacy"]
		if leg == nil || len(byTasks[n]) < 2 {
			continue
		}
		for _, st := range sortedKeys(byTasks[n]) {
			if st == "legacy" {
				continue
			}
			o := byTasks[n][st]
			w.p("- at %d tasks, legacy costs %s per reservation against %s for %s: %s slower.", n, fmtNs(leg.NsPerOp), fmtNs(o.NsPerOp), st, ratio(leg.NsPerOp, o.NsPerOp))
		}
		said = true
		break
	}
	if !said {
		w.p("_No task count with both the legacy strategy and another one; no comparison._")
	}
	if len(counts) > 1 {
		lo, hi := counts[len(counts)-1], counts[0]
		for _, st := range sortedKeys(byTasks[hi]) {
			if a, b := byTasks[lo][st], byTasks[hi][st]; a != nil && b != nil {
				w.p("- %s: %s with %d live tasks, %s with %d (%s).", st, fmtNs(a.NsPerOp), lo, fmtNs(b.NsPerOp), hi, ratio(b.NsPerOp, a.NsPerOp))
			}
		}
	}
	w.plotLink("tasks-cost", "cost vs live tasks")
	w.p("")
}

func (w *reportWriter) sectionKernel() {
	w.p("## Does the Go harness measure what perf bench breakpoint measures?\n")
	cases := append(family(w.all, "KernelThread"), family(w.all, "KernelEnable")...)
	if len(cases) == 0 {
		w.absent("KernelThread/KernelEnable")
		return
	}
	w.p("| case | Go usecs/op | perf usecs/op | Go/perf | Go slowdown | perf slowdown |\n|---|---|---|---|---|---|")
	for _, c := range cases {
		g, gok := c.Metric("usecs/op")
		pf, pok := c.Metric("perf-usecs/op")
		cell := func(v float64, ok bool) string {
			if !ok {
				return "n/a"
			}
			return trimFloat(v)
		}
		r := "n/a"
		if gok && pok {
			r = ratio(g, pf)
		}
		sd, sok := c.Metric("slowdown")
		psd, psok := c.Metric("perf-slowdown")
		w.p("| `%s` | %s | %s | %s | %s | %s |", c.Name, cell(g, gok), cell(pf, pok), r, cell(sd, sok), cell(psd, psok))
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
	for _, be := range sortedKeys(backends) {
		all := w.find("Registers", map[string]string{"backend": be, "policy": "all"})
		ch := w.find("Registers", map[string]string{"backend": be, "policy": "changed"})
		if all == nil || ch == nil {
			continue
		}
		line := fmt.Sprintf("- **%s**: write-changed costs %s per update against %s for write-all (%s)",
			be, fmtNs(ch.NsPerOp), fmtNs(all.NsPerOp), cheaper(all.NsPerOp, ch.NsPerOp))
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
	tasks := map[string]bool{}
	for _, c := range cases {
		tasks[nameParams(c.Name)["tasks"]] = true
	}
	ts := sortedCategories(tasks)
	for _, t := range ts {
		on := w.find("Exclusion", map[string]string{"mode": "on", "tasks": t})
		off := w.find("Exclusion", map[string]string{"mode": "off", "tasks": t})
		if on == nil || off == nil {
			continue
		}
		w.p("- %s tasks: exclusion on %s, off %s per reservation (on/off = %s).", t, fmtNs(on.NsPerOp), fmtNs(off.NsPerOp), ratio(on.NsPerOp, off.NsPerOp))
	}
	w.plotLink("exclusion-cost", "exclusion on vs off")
	w.p("")
}

func (w *reportWriter) sectionThreads() {
	if len(family(w.all, "Apply"))+len(family(w.all, "BlindWindow")) == 0 {
		return // issue 6 experiments; not every run has them
	}
	w.p("## Should a multi-threaded debugger apply registers eagerly or lazily?\n")
	w.p("Eager stops every thread, writes its registers and resumes it; lazy records the change and writes a thread's registers just before it next resumes (rr, GDB). Apply times a set, a modify and a clear of one watchpoint on every thread; BlindWindow measures the time from the first to the last thread armed and the tracee's writes on threads not yet armed, which no trap reports.\n")
	type row struct{ metric, label string }
	fams := []struct {
		fam  string
		rows []row
	}{
		{"Apply", []row{{"ns/thread", "per thread"}, {"writes/thread", "writes/thread"}}},
		{"BlindWindow", []row{{"blind-ns/p50", "blind window p50"}, {"missed/op", "missed writes per set"}}},
	}
	for _, f := range fams {
		threads := map[string]bool{}
		for _, c := range family(w.all, f.fam) {
			threads[nameParams(c.Name)["threads"]] = true
		}
		if len(threads) == 0 {
			continue
		}
		w.p("| %s threads | eager | lazy |", f.fam)
		w.p("|---|---|---|")
		for _, t := range sortedCategories(threads) {
			var cells [2]string
			for i, pol := range []string{"eager", "lazy"} {
				c := w.find(f.fam, map[string]string{"policy": pol, "threads": t})
				if c == nil {
					cells[i] = "n/a"
					continue
				}
				var parts []string
				for _, r := range f.rows {
					if v, ok := c.Metric(r.metric); ok {
						val := trimFloat(v)
						if strings.HasSuffix(r.metric, "ns/p50") || r.metric == "ns/thread" {
							val = fmtNs(v)
						}
						parts = append(parts, fmt.Sprintf("%s %s", val, r.label))
					}
				}
				cells[i] = strings.Join(parts, ", ")
			}
			w.p("| %s | %s | %s |", t, cells[0], cells[1])
		}
		w.p("")
	}
	w.plotLink("apply-cost", "apply cost per thread vs threads")
	w.plotLink("apply-writes", "apply writes vs threads")
	w.plotLink("blindwindow", "blind window vs threads")
	w.plotLink("blindwindow-missed", "missed accesses vs threads")
	w.p("")
}
