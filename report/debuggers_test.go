package report

import (
	"strconv"
	"strings"
	"testing"

	"bpbench/bench"
	"bpbench/debuggers"
	"bpbench/internal/fixtures"
	"bpbench/internal/present"
)

// dbgMetric returns a result's metric by debugger, threads and action.
func dbgMetric(t *testing.T, rs []bench.Result, dbg string, threads int, action, unit string) string {
	t.Helper()
	name := debuggers.CaseName(dbg, threads, action)
	for _, r := range rs {
		if r.Name == name {
			v, ok := r.Metrics[unit]
			if !ok {
				t.Fatalf("%s has no %s", name, unit)
			}
			return num(v)
		}
	}
	t.Fatalf("no result %s", name)
	return ""
}

// TestReportDebuggers checks the section against the run it renders: a
// table per debugger with a row per thread count and action holding its
// figures, the headline per move with the debugger's and write-changed's
// writes (and its row in the answers), and rr's reason.
func TestReportDebuggers(t *testing.T) {
	run := fixtures.DebuggersRun(t)
	md := Build(run, t.TempDir())
	s := md[strings.Index(md, "## What do real debuggers make the kernel do?"):]
	for _, dbg := range []string{debuggers.GDB, debuggers.Delve} {
		var at, wrote, changed []string
		for _, th := range []string{"1", "8", "64"} {
			n := map[string]int{"1": 1, "8": 8, "64": 64}[th]
			at = append(at, th)
			wrote = append(wrote, dbgMetric(t, run.Results, dbg, n, debuggers.ActionMove, debuggers.MetricDRWrites))
			changed = append(changed, dbgMetric(t, run.Results, dbg, n, debuggers.ActionMove, debuggers.PolicyMetric("changed")))
		}
		first := "pokeuser"
		if dbg == debuggers.Delve {
			first = "peekuser"
		}
		detail := "At 64 threads a `move` is " + dbgMetric(t, run.Results, dbg, 64, debuggers.ActionMove, debuggers.MetricPtrace) + " ptrace requests (" +
			dbgMetric(t, run.Results, dbg, 64, debuggers.ActionMove, debuggers.PtraceMetric(first)) + " " + first
		if !strings.Contains(s, detail) {
			t.Errorf("%s: no breakdown of a move starting %q", dbg, detail)
		}
		want := "per `move` at " + present.List(at) + " threads: " + present.List(wrote) + " debug-register writes; write-changed would make " + present.List(changed)
		if !strings.Contains(s, want) {
			t.Errorf("%s: headline lacks %q", dbg, want)
		}
		answer := wrote[1] + " writes per `move` at 8 threads; write-changed needs " + changed[1]
		if !strings.Contains(md[:strings.Index(md, "## Machine")], answer) {
			t.Errorf("%s: the answers lack %q", dbg, answer)
		}
		for _, th := range []int{1, 8, 64} {
			for _, a := range debuggers.Actions {
				ptrace := dbgMetric(t, run.Results, dbg, th, a, debuggers.MetricPtrace)
				writes := dbgMetric(t, run.Results, dbg, th, a, debuggers.MetricDRWrites)
				found := false
				for _, line := range strings.Split(s, "\n") {
					cells := strings.Split(line, " | ")
					if len(cells) > 4 && (cells[0] == "| "+strconv.Itoa(th) || strings.HasPrefix(cells[0], "| "+strconv.Itoa(th)+" (")) && cells[1] == a &&
						strings.HasPrefix(cells[2], ptrace) && strings.HasPrefix(cells[3], writes) {
						found = true
					}
				}
				if !found {
					t.Errorf("no row for %s, %d threads, %s with %s ptrace and %s writes", dbg, th, a, ptrace, writes)
				}
			}
		}
	}
	for _, want := range []string{"### GDB 13.1", "### Delve", "always-inserted", "performance counter"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q", want)
		}
	}
}
