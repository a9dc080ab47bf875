package cli

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"bpbench/bench"
)

// reportWriter accumulates the Markdown report. Every number it prints
// comes from the run; a section whose data is absent says so.
type reportWriter struct {
	strings.Builder
	dir string
	run *bench.Run
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
	w := &reportWriter{dir: dir, run: run, all: summarize(run)}
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
		{"commit", commitLine(m)}, {"suite", run.Mode},
		{"started", run.Started.Format(time.RFC3339)}, {"duration", run.Duration.Round(time.Millisecond).String()},
	} {
		w.p("| %s | %s |", kv[0], kv[1])
	}
	w.p("")
	w.p("Figures are medians with their 95%% interval in brackets, over the runs of a case (or over batches within one run). " +
		"Fewer than 6 values cannot reach 95%%: such an interval is printed as [min–max of N runs, coverage]. " +
		"A comparison is stated only where the two intervals do not overlap; otherwise the report says it is not resolved and about how many runs would resolve it.\n")
	w.sectionUpdate()
	w.sectionRace()
	w.sectionScaling()
	w.sectionTasks()
	w.sectionKernel()
	w.sectionRegisters()
	w.sectionExclusion()
	w.sectionThreads()
	w.sectionSwitch()
	w.sectionConformance()
	w.sectionNoise()
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

// commitLine is the run's commit and whether the tree was dirty.
func commitLine(m bench.Machine) string {
	switch {
	case m.Commit == "":
		return "unknown (not built from a git checkout)"
	case m.Dirty:
		return m.Commit + " (dirty tree: uncommitted changes were measured)"
	}
	return m.Commit + " (clean tree)"
}

// sectionConformance prints the allocation model checked in lockstep
// against the live kernel at the start of the run (Run.Conformance), and
// the kernel facts the model assumes.
func (w *reportWriter) sectionConformance() {
	w.p("## Does the model admit and refuse exactly what the kernel does?\n")
	r := w.run.Conformance
	if r == nil {
		w.absent("conformance")
		w.p("")
		return
	}
	w.p("**%s.**", r.Summary())
	if r.CPUs > 0 {
		w.p("\nOne random sequence of perf_event_open breakpoints (CPU-bound on each CPU, a thread on every CPU, a thread on one CPU; %d of the opens instruction breakpoints) on %d live threads, %d CPUs, %d slots a thread, seed %d, replayed op by op on every strategy (`bpbench conform` runs a longer one).\n", r.Inst, r.Threads, r.CPUs, r.Slots, r.Seed)
	}
	if len(r.Strategies) > 0 {
		w.p("| strategy | agreed | diverged | first divergence |\n|---|---|---|---|")
		for _, a := range r.Strategies {
			first := ""
			if len(a.Divergences) > 0 {
				d := a.Divergences[0]
				first = fmt.Sprintf("op %d `%s`: kernel %s, model %s", d.Op, d.Request, d.Kernel, d.Model)
			}
			w.p("| %s | %d | %d | %s |", a.Strategy, a.Agreed, a.Diverged, first)
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
			if f.Assumed == "" {
				holds = "(read)"
			}
			w.p("| %s: %s | %s | %s | %s |", f.Name, f.Question, v, holds, f.Detail)
		}
	}
	w.p("")
}

// --- intervals and verdicts ---

// unitFmt picks, from a median, the scale and suffix its interval is
// printed in, so that the bounds share the median's unit.
type unitFmt func(median float64) (scale float64, suffix string)

func nsUnit(med float64) (float64, string) {
	return scaleOf(med, []unitStep{{1e9, " s"}, {1e6, " ms"}, {1e3, " µs"}}, " ns")
}

// unitStep is a scale and the suffix of values printed in it.
type unitStep struct {
	scale  float64
	suffix string
}

// scaleOf picks the first of steps (largest first) that |med| reaches,
// else scale 1 with suffix base.
func scaleOf(med float64, steps []unitStep, base string) (float64, string) {
	a := math.Abs(med)
	for _, s := range steps {
		if a >= s.scale {
			return s.scale, s.suffix
		}
	}
	return 1, base
}

func plainUnit(float64) (float64, string) { return 1, "" }

func suffixUnit(s string) unitFmt { return func(float64) (float64, string) { return 1, s } }

func countUnit(med float64) (float64, string) {
	return scaleOf(med, []unitStep{{1e6, "M"}, {1e3, "k"}}, "")
}

// fmtIv prints an interval as "1.78 µs [1.74, 1.83]", marking one below
// Confidence with where it comes from ("[1.70–1.90 of 3 runs, 75%]").
func fmtIv(iv Interval, u unitFmt) string {
	sc, suf := u(iv.Median)
	f := func(v float64) string { return trimFloat(v / sc) }
	s := f(iv.Median) + suf
	switch {
	case iv.N <= 1:
		return s + " [1 value, no interval]"
	case iv.Resolved():
		return fmt.Sprintf("%s [%s, %s]", s, f(iv.Lo), f(iv.Hi))
	}
	return fmt.Sprintf("%s [%s–%s of %d %s, %.0f%%]", s, f(iv.Lo), f(iv.Hi), iv.N, iv.From, 100*iv.Coverage)
}

// resolveNote says that two intervals overlap and about how many values
// each would need to separate.
func resolveNote(a, b Interval) string {
	n := runsToResolve(a, b)
	if n == 0 {
		return fmt.Sprintf("not resolved: equal medians at %s", countOf(a, b))
	}
	if n > 1000 {
		return fmt.Sprintf("not resolved at %s: the intervals overlap and the medians differ by %.2g%%, too little for any practical number of runs to resolve", countOf(a, b), 100*math.Abs(a.Median-b.Median)/math.Max(math.Abs(b.Median), 1e-300))
	}
	return fmt.Sprintf("not resolved at %s: the intervals overlap; about %d runs would resolve it", countOf(a, b), n)
}

func countOf(a, b Interval) string {
	if a.N == b.N && a.From == b.From {
		return fmt.Sprintf("%d %s each", a.N, orRuns(a.From))
	}
	return fmt.Sprintf("%d and %d values", a.N, b.N)
}

func orRuns(from string) string {
	if from == "" {
		return "runs"
	}
	return from
}

// separated reports whether a and b rest on more than one value each and
// do not overlap: only then does the report state a verdict.
func separated(a, b Interval) bool { return a.N > 1 && b.N > 1 && a.Separated(b) }

// costVerdict compares the cost ours against theirs: "3.04× cheaper" (or
// "more expensive") when the intervals separate, else why not.
func costVerdict(theirs, ours Interval) string {
	if separated(theirs, ours) {
		return cheaper(theirs.Median, ours.Median)
	}
	return resolveNote(theirs, ours)
}

// ratioVerdict compares a to b as "a/b = R×" when they separate.
func ratioVerdict(a, b Interval) string {
	if separated(a, b) {
		return ratio(a.Median, b.Median)
	}
	return resolveNote(a, b)
}

// wideSpread is the relative interval width above which a case's spread
// counts as wide.
const wideSpread = 0.25

// spread is an interval's width relative to its median.
func spread(iv Interval) float64 {
	if iv.N < 2 || iv.Median == 0 {
		return 0
	}
	return (iv.Hi - iv.Lo) / math.Abs(iv.Median)
}

// sectionNoise lists the cases measured under load (bench.Result.Noise)
// and the cases whose run-to-run spread is wide, so that a reader knows
// which figures to distrust.
func (w *reportWriter) sectionNoise() {
	w.p("## Which figures were measured under noise?\n")
	type loaded struct {
		name       string
		reps, of   int
		load, stel float64
		others     float64
		wait       time.Duration
		pinLost    int
	}
	byName := map[string]*loaded{}
	var order []string
	recorded := false
	for _, r := range w.run.Results {
		l := byName[r.Name]
		if l == nil {
			l = &loaded{name: r.Name}
			byName[r.Name] = l
			order = append(order, r.Name)
		}
		l.of++
		if r.Noise == nil {
			continue
		}
		recorded = true
		if r.Noise.Loaded() {
			l.reps++
			l.load = math.Max(l.load, r.Noise.LoadAvg1)
			l.stel = math.Max(l.stel, r.Noise.Steal)
			l.others = math.Max(l.others, r.Noise.Others)
			l.wait += r.Noise.LockWait
			l.pinLost += r.Noise.PinLost
		}
	}
	if !recorded {
		w.p("_This run recorded no machine noise (results written before bench.Result.Noise); load is unknown._")
	} else {
		var lines []string
		for _, n := range order {
			l := byName[n]
			if l.reps == 0 {
				continue
			}
			s := fmt.Sprintf("- `%s`: %d of %d runs under load (other processes up to %s of the CPUs, load average up to %s, steal up to %s",
				l.name, l.reps, l.of, pct(l.others, 1), trimFloat(l.load), pct(l.stel, 1))
			if l.wait > 0 {
				s += ", waited " + l.wait.Round(time.Microsecond).String() + " for the debug-register lock"
			}
			if l.pinLost > 0 {
				s += fmt.Sprintf(", %d pinned threads found off their CPU", l.pinLost)
			}
			lines = append(lines, s+")")
		}
		if len(lines) == 0 {
			w.p("No case ran under load (other processes above 10%% of the CPUs, steal above 2%%, a wait for the debug-register lock, or a pinned thread off its CPU).")
		} else {
			w.p("Cases measured under load (other processes above 10%% of the CPUs, steal above 2%%, a wait for the debug-register lock, or a pinned thread off its CPU):\n")
			w.list(lines, 30)
		}
	}
	type wide struct {
		c  *caseSummary
		iv Interval
	}
	var ws []wide
	for _, c := range w.all {
		iv := ivOf(c, "ns/op")
		if spread(iv) > wideSpread {
			ws = append(ws, wide{c, iv})
		}
	}
	sort.SliceStable(ws, func(i, j int) bool { return spread(ws[i].iv) > spread(ws[j].iv) })
	if len(ws) == 0 {
		w.p("\nNo case's ns/op interval is wider than %s of its median.", pct(wideSpread, 1))
	} else {
		w.p("\nCases whose ns/op interval is wider than %s of its median (widest first):\n", pct(wideSpread, 1))
		var lines []string
		for _, x := range ws {
			lines = append(lines, fmt.Sprintf("- `%s`: %s (width %s of the median)", x.c.Name, fmtIv(x.iv, nsUnit), pct(spread(x.iv), 1)))
		}
		w.list(lines, 20)
	}
	w.p("")
}

// list prints at most max lines and says how many it left out.
func (w *reportWriter) list(lines []string, max int) {
	for i, l := range lines {
		if i == max {
			w.p("- … and %d more.", len(lines)-max)
			break
		}
		w.p("%s", l)
	}
}

// --- shared lookups ---

// find returns the case of family fam whose name parameters include all
// of want, preferring the first.
func (w *reportWriter) find(fam string, want map[string]string) *caseSummary {
	for _, c := range family(w.all, fam) {
		if hasParams(c, want) {
			return c
		}
	}
	return nil
}

func pct(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return trimFloat(100*a/b) + "%"
}
