// Package dbgreport renders the debuggers experiment's results: the
// report section "What do real debuggers make the kernel do?" and its plot
// of debug-register writes per action against threads. It reads only
// []bench.Result (and the run's skips), so that the report and charts
// packages can call it as they call their own sections.
package dbgreport

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"bpbench/bench"
	"bpbench/debuggers"
	"bpbench/runfile"
)

// Experiment is the experiment name the results carry.
const Experiment = "debuggers"

// Title is the section's heading text.
const Title = "What do real debuggers make the kernel do?"

// cell is one debugger, thread count and action: the results of every run
// of that case.
type cell struct {
	debugger string
	threads  int
	action   string
	runs     []bench.Result
}

// collect groups the debuggers results by debugger, thread count and
// action.
func collect(results []bench.Result) map[string]map[int]map[string]*cell {
	out := map[string]map[int]map[string]*cell{}
	for _, r := range results {
		if r.Experiment != Experiment {
			continue
		}
		dbg, action := r.Params["debugger"], r.Params["action"]
		threads, err := strconv.Atoi(r.Params["threads"])
		if dbg == "" || action == "" || err != nil {
			continue
		}
		if out[dbg] == nil {
			out[dbg] = map[int]map[string]*cell{}
		}
		if out[dbg][threads] == nil {
			out[dbg][threads] = map[string]*cell{}
		}
		c := out[dbg][threads][action]
		if c == nil {
			c = &cell{debugger: dbg, threads: threads, action: action}
			out[dbg][threads][action] = c
		}
		c.runs = append(c.runs, r)
	}
	return out
}

// iv is a median with its order-statistic interval.
type iv struct {
	med, lo, hi float64
	n           int
	coverage    float64
	ok          bool
}

// figure returns unit's median and interval: over the runs' values when
// the case ran more than once, otherwise over the batches (one per
// repetition of the action) of its only run.
func (c *cell) figure(unit string) iv {
	var vs []float64
	if len(c.runs) > 1 {
		for _, r := range c.runs {
			if v, ok := r.Metrics[unit]; ok {
				vs = append(vs, v)
			}
		}
	} else if len(c.runs) == 1 {
		vs = c.runs[0].Batches[unit]
		if len(vs) == 0 {
			if v, ok := c.runs[0].Metrics[unit]; ok {
				vs = []float64{v}
			}
		}
	}
	return medianInterval(vs)
}

// medianInterval is the median of vs and the narrowest order-statistic
// interval [x(k), x(n+1-k)] covering it with probability at least 95%, or
// [min, max] with its coverage when n is too small for that.
func medianInterval(vs []float64) iv {
	n := len(vs)
	if n == 0 {
		return iv{}
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	out := iv{med: debuggers.Median(s), n: n, ok: true}
	best, tail := 1, binomHalf(n, 0)
	out.coverage = 1 - 2*tail
	for k := 2; k <= (n+1)/2; k++ {
		tail += binomHalf(n, k-1)
		if 1-2*tail < 0.95 {
			break
		}
		best, out.coverage = k, 1-2*tail
	}
	out.lo, out.hi = s[best-1], s[n-best]
	return out
}

// binomHalf is P(Binomial(n, 1/2) = k).
func binomHalf(n, k int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Exp(lg(n) - lg(k) - lg(n-k) - float64(n)*math.Ln2)
}

// count formats a count figure: its median, and its range when the
// repetitions differed.
func (v iv) count() string {
	if !v.ok {
		return "–"
	}
	if v.lo == v.hi {
		return trim(v.med)
	}
	return fmt.Sprintf("%s [%s–%s]", trim(v.med), trim(v.lo), trim(v.hi))
}

// time formats a microsecond figure as milliseconds with its interval.
func (v iv) time() string {
	if !v.ok {
		return "–"
	}
	ms := func(u float64) string { return strconv.FormatFloat(u/1e3, 'f', msDigits(u/1e3), 64) }
	return fmt.Sprintf("%s [%s–%s]", ms(v.med), ms(v.lo), ms(v.hi))
}

func msDigits(ms float64) int {
	switch {
	case ms >= 100:
		return 0
	case ms >= 10:
		return 1
	default:
		return 2
	}
}

func trim(v float64) string {
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// debuggerOrder is the presentation order; others follow sorted.
var debuggerOrder = []string{debuggers.GDB, debuggers.Delve, debuggers.RR}

func debuggerNames[V any](m map[string]V) []string {
	var out []string
	for _, d := range debuggerOrder {
		if _, ok := m[d]; ok {
			out = append(out, d)
		}
	}
	var rest []string
	for d := range m {
		if !slices.Contains(debuggerOrder, d) {
			rest = append(rest, d)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func sortedThreads(m map[int]map[string]*cell) []int {
	out := make([]int, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	sort.Ints(out)
	return out
}

// policies returns the replayed policies present in cells, the built-ins
// first.
func policies(cells map[int]map[string]*cell) []string {
	seen := map[string]bool{}
	for _, byAction := range cells {
		for _, c := range byAction {
			for _, r := range c.runs {
				for unit := range r.Metrics {
					if p, ok := debuggers.PolicyOfMetric(unit); ok {
						seen[p] = true
					}
				}
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
	var rest []string
	for p := range seen {
		rest = append(rest, p)
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func policyLabel(p string) string {
	switch p {
	case "changed":
		return "write-changed"
	case "all":
		return "write-all"
	}
	return p
}

// label is a debugger's display name with its version when recorded.
func label(cells map[int]map[string]*cell, dbg string) string {
	for _, byAction := range cells {
		for _, c := range byAction {
			for _, r := range c.runs {
				if v := r.Params["debugger_version"]; v != "" {
					return v
				}
			}
		}
	}
	return dbg
}

// shortLabel is label shortened for legends: "GDB 13.1" for "GNU gdb
// (Debian 13.1-3) 13.1".
func shortLabel(cells map[int]map[string]*cell, dbg string) string {
	l := label(cells, dbg)
	if dbg == debuggers.GDB {
		if f := strings.Fields(l); len(f) > 1 {
			return "GDB " + f[len(f)-1]
		}
	}
	return l
}

// Section renders the report section from a run's results and skips. It
// says so when the run has no debuggers results.
func Section(results []bench.Result, skipped []runfile.Skip) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("## %s\n", Title)
	all := collect(results)
	var skips []runfile.Skip
	for _, s := range skipped {
		if s.Experiment == Experiment {
			skips = append(skips, s)
		}
	}
	if len(all) == 0 {
		p("No debuggers results in this run (`bpbench run --experiments debuggers`).")
		for _, s := range skips {
			p("- %s skipped: %s", s.Name, s.Reason)
		}
		p("")
		return b.String()
	}
	p("Real debuggers attached to targets this project builds (C for GDB, Go for Delve) with T threads, of which one")
	p("keeps writing the watched variables and the others are idle, each action repeated in one session under")
	p("strace and one without. **Counted**: the debugger's own ptrace requests as strace records them, between")
	p("markers the debugger itself makes when it receives each action's first command. **Inferred**: what the")
	p("kernel made of each debug-register write (a slot reserved, a breakpoint modified in place or disabled")
	p("but held), from the values written and the rules `conform` checks on this kernel; no write releases a")
	p("slot, on x86 only the thread's exit or exec does. **Replayed**: each thread's sequence of register states")
	p("the debugger wrote, run through the Writer's policies: the writes each would need for the same states.")
	p("Every change action ends with the continue that applies it (GDB writes the registers only when it resumes")
	p("the threads); `hit` is that continue alone, and `clear` continues and interrupts. Slots are reserved only")
	p("the first time an action runs on the fresh target (the table's column); afterwards no action reserves one,")
	p("since the slots stay held. Counts are medians over the repetitions, with their range where they differed;")
	p("times are the untraced session's, in ms, median [interval] over the repetitions.\n")

	for _, dbg := range debuggerNames(all) {
		cells := all[dbg]
		if line := headline(cells, dbg); line != "" {
			p("- %s", line)
		}
	}
	if note := gdbHitNote(all[debuggers.GDB]); note != "" {
		p("- %s", note)
	}
	p("")
	for _, dbg := range debuggerNames(all) {
		cells := all[dbg]
		pols := policies(cells)
		p("### %s\n", label(cells, dbg))
		head := "| threads | action | ptrace/op | DR writes/op | DR reads/op | slots reserved (first time) |"
		sep := "|---:|---|---:|---:|---:|---:|"
		for _, pol := range pols {
			head += " " + policyLabel(pol) + " writes |"
			sep += "---:|"
		}
		head += " ms/op |"
		sep += "---:|"
		p("%s\n%s", head, sep)
		for _, t := range sortedThreads(cells) {
			for _, a := range debuggers.Actions {
				c := cells[t][a]
				if c == nil {
					continue
				}
				threads := strconv.Itoa(t)
				if tt := c.runs[0].Params["target_threads"]; tt != "" && tt != threads {
					threads += " (" + tt + ")"
				}
				row := fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", threads, a,
					c.figure(debuggers.MetricPtrace).count(), c.figure(debuggers.MetricDRWrites).count(),
					c.figure(debuggers.MetricDRReads).count(), c.figure(debuggers.MetricFirstReserves).count())
				for _, pol := range pols {
					row += " " + c.figure(debuggers.PolicyMetric(pol)).count() + " |"
				}
				row += " " + c.figure(debuggers.MetricUsecs).time() + " |"
				p("%s", row)
			}
		}
		p("")
		if line := moveDetail(cells); line != "" {
			p("%s\n", line)
		}
		if dbg == debuggers.Delve {
			p("Delve's thread counts are the worker threads asked for, with the Go target's total in parentheses (the runtime adds its own).\n")
		}
	}
	for _, s := range skips {
		p("- %s: %s", s.Name, strings.TrimPrefix(s.Reason, "skipped: "))
	}
	if len(skips) > 0 {
		p("")
	}
	return b.String()
}

// headline says, for one debugger, what it writes per move at each thread
// count against what write-changed would for the same states, and what its
// first watchpoint reserves per thread.
func headline(cells map[int]map[string]*cell, dbg string) string {
	var at, wrote, changed []string
	for _, t := range sortedThreads(cells) {
		c := cells[t][debuggers.ActionMove]
		if c == nil {
			continue
		}
		w, ch := c.figure(debuggers.MetricDRWrites), c.figure(debuggers.PolicyMetric("changed"))
		if !w.ok || !ch.ok {
			continue
		}
		at = append(at, strconv.Itoa(t))
		wrote = append(wrote, trim(w.med))
		changed = append(changed, trim(ch.med))
	}
	if len(at) == 0 {
		return ""
	}
	line := fmt.Sprintf("**%s**, per `move` at %s threads: %s debug-register writes; write-changed would make %s for the same register states",
		shortLabel(cells, dbg), list(at), list(wrote), list(changed))
	ts := sortedThreads(cells)
	if c := cells[ts[len(ts)-1]][debuggers.ActionSet]; c != nil {
		if r := c.figure(debuggers.MetricFirstReserves); r.ok {
			if tt, err := strconv.Atoi(c.runs[0].Params["target_threads"]); err == nil && tt > 0 {
				line += fmt.Sprintf(". Its first watchpoint reserves %s slot(s) on every thread (%s on %d threads), held until the thread exits", trim(r.med/float64(tt)), trim(r.med), tt)
			}
		}
	}
	if c := cells[ts[len(ts)-1]][debuggers.ActionHit]; c != nil {
		w, ch := c.figure(debuggers.MetricDRWrites), c.figure(debuggers.PolicyMetric("changed"))
		if w.ok && ch.ok {
			line += fmt.Sprintf(". A `hit`, which changes no watchpoint, costs it %s writes at %d threads (write-changed: %s)", trim(w.med), ts[len(ts)-1], trim(ch.med))
		}
	}
	return line + "."
}

// moveDetail breaks down a move at the largest thread count: the ptrace
// requests by kind (counted) and the in-place modifications and disables
// they caused (inferred).
func moveDetail(cells map[int]map[string]*cell) string {
	ts := sortedThreads(cells)
	t := ts[len(ts)-1]
	c := cells[t][debuggers.ActionMove]
	if c == nil {
		return ""
	}
	total := c.figure(debuggers.MetricPtrace)
	if !total.ok {
		return ""
	}
	type kind struct {
		name string
		n    float64
	}
	var kinds []kind
	for unit := range c.runs[0].Metrics {
		name, ok := strings.CutPrefix(unit, "ptrace-")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, "/op")
		if v := c.figure(unit); v.ok && v.med > 0 {
			kinds = append(kinds, kind{name, v.med})
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
		parts = append(parts, trim(k.n)+" "+k.name)
	}
	line := fmt.Sprintf("At %d threads a `move` is %s ptrace requests (%s)", t, trim(total.med), strings.Join(parts, ", "))
	if m, d := c.figure(debuggers.MetricModifies), c.figure(debuggers.MetricDisables); m.ok && d.ok {
		line += fmt.Sprintf("; in the kernel they modify held breakpoints in place %s times (a DR7 write visits every held slot) and disable %s, which keep their slots", trim(m.med), trim(d.med))
	}
	return line + "."
}

// gdbHitNote explains GDB's writes on a hit that changes nothing, when
// the results show them (at least one per thread at every thread count):
// GDB removes its breakpoints when the target stops and inserts them again
// when it resumes (breakpoint always-inserted off, its default), which
// re-programs every thread. TestGDBAlwaysInserted in package debuggers
// checks that with the setting on, a hit writes at most DR6.
func gdbHitNote(cells map[int]map[string]*cell) string {
	if len(cells) == 0 {
		return ""
	}
	for t, byAction := range cells {
		c := byAction[debuggers.ActionHit]
		if c == nil {
			return ""
		}
		if w := c.figure(debuggers.MetricDRWrites); !w.ok || w.med < float64(t) {
			return ""
		}
	}
	return "GDB's writes on a `hit` come from its removing its breakpoints when the target stops and inserting them again at the resume (`breakpoint always-inserted off`, its default): every thread is re-programmed to the same state. With `set breakpoint always-inserted on` a hit writes at most DR6 of the thread that hit (`go test ./debuggers -run TestGDBAlwaysInserted`)."
}

// list joins "a", "b" and "c" as "a, b and c".
func list(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}
