package report

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"bpbench/bench"
	"bpbench/debuggers"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// sectionDebuggers answers "what do real debuggers make the kernel do?"
// from the debuggers experiment: per debugger, thread count and action,
// the ptrace requests counted with strace, what the kernel made of the
// debug-register writes (inferred), the writes the Writer's policies
// would make for the same register states (replayed), and the untraced
// time.
func (w *reportWriter) sectionDebuggers() {
	cases := w.open("What do real debuggers make the kernel do?\n", "Debugger")
	if cases == nil {
		for _, s := range w.run.Skipped {
			if s.Experiment == "debuggers" {
				w.missing[len(w.missing)-1] += fmt.Sprintf(" (%s: %s)", s.Name, s.Reason)
			}
		}
		return
	}
	w.p("Real debuggers attached to targets this project builds (C for GDB, Go for Delve) with T threads, of which one keeps writing the watched variables and the others are idle; each action repeated in one session under strace and one without. " +
		"**Counted**: the debugger's own ptrace requests as strace records them, between markers the debugger makes when it receives each action's first command. " +
		"**Inferred**: what the kernel made of each debug-register write (a slot reserved, a breakpoint modified in place or disabled but held), from the values written and the rules `conform` checks on this kernel; on x86 no write gives a slot back, only the thread's exit or exec does. " +
		"**Replayed**: each thread's sequence of register states the debugger wrote, run through the Writer's policies: the writes each would need for the same states. " +
		"Every change action ends with the continue that applies it (GDB writes the registers only when it resumes the threads); `hit` is that continue alone, and `clear` continues and interrupts. " +
		"Counts repeat exactly from one repetition to the next unless a range is shown; times are the untraced session's.")
	w.gap()
	dbgs := runfile.ParamValues(cases, "debugger")
	for _, dbg := range dbgs {
		mine := runfile.Subset(cases, "debugger", dbg)
		if line, v := w.debuggerHeadline(mine, dbg); line != "" {
			w.p("- %s", line)
			w.verdict(v)
		}
	}
	if note := gdbHitNote(runfile.Subset(cases, "debugger", debuggers.GDB)); note != "" {
		w.p("- %s", note)
	}
	w.gap()
	for _, dbg := range dbgs {
		w.debuggerTable(runfile.Subset(cases, "debugger", dbg), dbg)
	}
	for _, s := range w.run.Skipped {
		if s.Experiment == "debuggers" {
			w.p("- `%s` skipped: %s", s.Name, strings.TrimPrefix(s.Reason, "skipped: "))
		}
	}
	w.gap()
	for _, dbg := range dbgs {
		w.plotLink("debuggers-writes-"+dbg, "debug-register writes per action vs threads, "+dbg)
	}
	w.gap()
}

// debuggerLabel is a debugger's name with its version when recorded,
// shortened: "GDB 13.1" for "GNU gdb (Debian 13.1-3) 13.1".
func debuggerLabel(cases []*runfile.Case, dbg string) string {
	for _, c := range cases {
		if v := c.Params["debugger_version"]; v != "" {
			if f := strings.Fields(v); dbg == debuggers.GDB && len(f) > 1 {
				return "GDB " + f[len(f)-1]
			}
			return v
		}
	}
	return dbg
}

// debuggerCase is the case of one thread count and action.
func debuggerCase(cases []*runfile.Case, threads int, action string) *runfile.Case {
	for _, c := range cases {
		p := bench.NameParams(c.Name)
		if p[bench.ParamThreads] == strconv.Itoa(threads) && p["action"] == action {
			return c
		}
	}
	return nil
}

// debuggerThreads lists the thread counts measured, ascending.
func debuggerThreads(cases []*runfile.Case) []int {
	var out []int
	for _, v := range runfile.ParamValues(cases, bench.ParamThreads) {
		if n, err := strconv.Atoi(v); err == nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// countFig is a counted figure: its median, with the range of the
// repetitions where they differed.
func countFig(c *runfile.Case, unit string) string {
	if c == nil {
		return "–"
	}
	if _, ok := c.Metric(unit); !ok {
		return "–"
	}
	iv := runfile.IvOf(c, unit)
	if iv.N < 2 || iv.Lo == iv.Hi {
		return num(iv.Median)
	}
	return fmt.Sprintf("%s [%s–%s]", num(iv.Median), num(iv.Lo), num(iv.Hi))
}

// num prints a count: whole numbers as they are, others to three digits.
func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return present.TrimFloat(v)
}

// debuggerPolicies lists the replayed policies the cases carry, the
// built-ins first.
func debuggerPolicies(cases []*runfile.Case) []string {
	seen := map[string]bool{}
	for _, c := range cases {
		for unit := range c.Metrics {
			if p, ok := debuggers.PolicyOfMetric(unit); ok {
				seen[p] = true
			}
		}
	}
	var out []string
	for _, p := range []string{"changed", "all"} {
		if seen[p] {
			out = append(out, p)
			delete(seen, p)
		}
	}
	rest := make([]string, 0, len(seen))
	for p := range seen {
		rest = append(rest, p)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// debuggerHeadline says what a debugger writes per move at each thread
// count against write-changed, and what its first watchpoint reserves;
// the verdict row is the move at the middle thread count.
func (w *reportWriter) debuggerHeadline(cases []*runfile.Case, dbg string) (string, verdict) {
	var at, wrote, changed []string
	ts := debuggerThreads(cases)
	for _, t := range ts {
		c := debuggerCase(cases, t, debuggers.ActionMove)
		if c == nil {
			continue
		}
		wr, ok1 := c.Metric(debuggers.MetricDRWrites)
		ch, ok2 := c.Metric(debuggers.PolicyMetric("changed"))
		if !ok1 || !ok2 {
			continue
		}
		at, wrote, changed = append(at, strconv.Itoa(t)), append(wrote, num(wr)), append(changed, num(ch))
	}
	if len(at) == 0 {
		return "", verdict{}
	}
	name := debuggerLabel(cases, dbg)
	line := fmt.Sprintf("**%s**, per `move` at %s threads: %s debug-register writes; write-changed would make %s for the same register states",
		name, present.List(at), present.List(wrote), present.List(changed))
	last := ts[len(ts)-1]
	if c := debuggerCase(cases, last, debuggers.ActionSet); c != nil {
		if r, ok := c.Metric(debuggers.MetricFirstReserves); ok {
			if tt, err := strconv.Atoi(c.Params["target_threads"]); err == nil && tt > 0 {
				line += fmt.Sprintf(". Its first watchpoint reserves %s on every thread (%s on %d threads), held until the thread exits",
					present.Plural(int(r)/tt, "slot"), num(r), tt)
			}
		}
	}
	if c := debuggerCase(cases, last, debuggers.ActionHit); c != nil {
		wr, ok1 := c.Metric(debuggers.MetricDRWrites)
		ch, ok2 := c.Metric(debuggers.PolicyMetric("changed"))
		if ok1 && ok2 {
			line += fmt.Sprintf(". A `hit`, which changes no watchpoint, costs it %s writes at %d threads (write-changed: %s)", num(wr), last, num(ch))
		}
	}
	mid := len(wrote) / 2
	return line + ".", verdict{
		question: "What does a real debugger write per watchpoint change (" + name + ")",
		answer:   fmt.Sprintf("%s writes per `move` at %s threads; write-changed needs %s", wrote[mid], at[mid], changed[mid]),
		figure:   fmt.Sprintf("%s vs %s writes (counted with strace; replayed)", wrote[mid], changed[mid]),
		resolved: "counted",
	}
}

// debuggerTable prints one debugger's figures per thread count and action.
func (w *reportWriter) debuggerTable(cases []*runfile.Case, dbg string) {
	pols := debuggerPolicies(cases)
	w.p("### %s\n", debuggerLabel(cases, dbg))
	head := "| threads | action | ptrace/op | DR writes/op | DR reads/op | slots reserved (first time) |"
	sep := "|---:|---|---:|---:|---:|---:|"
	for _, pol := range pols {
		head += " " + policyLabel(pol) + " writes |"
		sep += "---:|"
	}
	w.p("%s time per action |\n%s---:|", head, sep)
	for _, t := range debuggerThreads(cases) {
		for _, a := range debuggers.Actions {
			c := debuggerCase(cases, t, a)
			if c == nil {
				continue
			}
			threads := strconv.Itoa(t)
			if tt := c.Params["target_threads"]; tt != "" && tt != threads {
				threads += " (" + tt + ")"
			}
			row := fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", threads, a,
				countFig(c, debuggers.MetricPtrace), countFig(c, debuggers.MetricDRWrites),
				countFig(c, debuggers.MetricDRReads), countFig(c, debuggers.MetricFirstReserves))
			for _, pol := range pols {
				row += " " + countFig(c, debuggers.PolicyMetric(pol)) + " |"
			}
			if _, ok := c.Metric(debuggers.MetricUsecs); ok {
				row += " " + w.iv(runfile.IvOf(c, debuggers.MetricUsecs), usUnit) + " |"
			} else {
				row += " – |"
			}
			w.p("%s", row)
		}
	}
	w.gap()
	if line := moveDetail(cases); line != "" {
		w.p("%s", line)
		w.gap()
	}
	if dbg == debuggers.Delve {
		w.p("Delve's thread counts are the worker threads asked for, with the Go target's total in parentheses (the runtime adds its own).")
		w.gap()
	}
}

// usUnit prints a microsecond figure with a readable unit.
func usUnit(med float64) (float64, string) {
	return scaleOf(med, []unitStep{{1e6, " s"}, {1e3, " ms"}}, " µs")
}

// policyLabel names a write policy as the report does elsewhere.
func policyLabel(p string) string {
	switch p {
	case "changed":
		return "write-changed"
	case "all":
		return "write-all"
	}
	return p
}

// moveDetail breaks down a move at the largest thread count: the ptrace
// requests by kind (counted) and the in-place modifications and disables
// they caused (inferred).
func moveDetail(cases []*runfile.Case) string {
	ts := debuggerThreads(cases)
	if len(ts) == 0 {
		return ""
	}
	t := ts[len(ts)-1]
	c := debuggerCase(cases, t, debuggers.ActionMove)
	if c == nil {
		return ""
	}
	total, ok := c.Metric(debuggers.MetricPtrace)
	if !ok {
		return ""
	}
	type kind struct {
		name string
		n    float64
	}
	var kinds []kind
	for unit, v := range c.Metrics {
		name, ok := strings.CutPrefix(unit, "ptrace-")
		if ok && v > 0 {
			kinds = append(kinds, kind{strings.TrimSuffix(name, "/op"), v})
		}
	}
	sort.Slice(kinds, func(i, j int) bool {
		if kinds[i].n != kinds[j].n {
			return kinds[i].n > kinds[j].n
		}
		return kinds[i].name < kinds[j].name
	})
	var parts []string
	for _, k := range kinds {
		parts = append(parts, num(k.n)+" "+k.name)
	}
	line := fmt.Sprintf("At %d threads a `move` is %s ptrace requests (%s)", t, num(total), strings.Join(parts, ", "))
	m, ok1 := c.Metric(debuggers.MetricModifies)
	d, ok2 := c.Metric(debuggers.MetricDisables)
	if ok1 && ok2 {
		line += fmt.Sprintf("; in the kernel they modify held breakpoints in place %s times (a DR7 write visits every held slot) and disable %s, which keep their slots", num(m), num(d))
	}
	return line + "."
}

// gdbHitNote explains GDB's writes on a hit that changes nothing, when the
// results show them (at least one per thread at every thread count): GDB
// removes its breakpoints when the target stops and inserts them again at
// the resume (breakpoint always-inserted off, its default), which
// re-programs every thread.
func gdbHitNote(cases []*runfile.Case) string {
	ts := debuggerThreads(cases)
	if len(ts) == 0 {
		return ""
	}
	for _, t := range ts {
		c := debuggerCase(cases, t, debuggers.ActionHit)
		if c == nil {
			return ""
		}
		if wr, ok := c.Metric(debuggers.MetricDRWrites); !ok || wr < float64(t) {
			return ""
		}
	}
	return "GDB's writes on a `hit` come from its removing its breakpoints when the target stops and inserting them again at the resume (`breakpoint always-inserted off`, its default): every thread is re-programmed to the same state. With `set breakpoint always-inserted on` a hit writes at most DR6 of the thread that hit (`go test ./debuggers -run TestGDBAlwaysInserted`)."
}
