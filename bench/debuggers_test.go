package bench

import (
	"context"
	"regexp"
	"testing"

	"bpbench/debuggers"
	"bpbench/internal/testenv"
)

// BenchmarkDebuggers runs the real debuggers' sessions; b.N sets the
// repetitions of the actions.
func BenchmarkDebuggers(b *testing.B) { runCases(b, "Debugger", casesOf(b, "debuggers", Options{})) }

// TestDebuggersCases checks the case list: five actions per debugger and
// thread count, named key=value, and rr recorded as one case.
func TestDebuggersCases(t *testing.T) {
	for _, full := range []bool{false, true} {
		cs := casesOf(t, "debuggers", Options{Full: full})
		threads := debuggersThreads(full)
		if want := 2*len(threads)*len(debuggers.Actions) + 1; len(cs) != want {
			t.Errorf("full=%v: %d cases, want %d", full, len(cs), want)
		}
		re := regexp.MustCompile(`^Debugger/debugger=(gdb|dlv|rr)/threads=\d+/action=(set|hit|move|fill|clear)$`)
		seen := map[string]bool{}
		for _, c := range cs {
			if !re.MatchString(c.Name) || seen[c.Name] || c.Estimate <= 0 {
				t.Errorf("case %q (estimate %v): bad or repeated name", c.Name, c.Estimate)
			}
			seen[c.Name] = true
		}
		if !seen[debuggers.CaseName(debuggers.RR, 1, debuggers.ActionSet)] {
			t.Error("no rr case")
		}
	}
}

// TestDebuggersGroup runs GDB's group of five cases on two threads: the
// five results come from one pair of sessions, carry every metric the
// report reads with one batch per repetition, and the next run of a case
// runs the next pair.
func TestDebuggersGroup(t *testing.T) {
	g := &debuggersGroup{debugger: debuggers.GDB, threads: 2, reps: 2}
	ctx := context.Background()
	for _, a := range debuggers.Actions {
		res, err := g.result(ctx, a, 0)
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		if res.Name != debuggers.CaseName(debuggers.GDB, 2, a) || res.Params["action"] != a || res.Params["target_threads"] != "2" {
			t.Errorf("%s: result %q with params %v", a, res.Name, res.Params)
		}
		for _, unit := range []string{debuggers.MetricPtrace, debuggers.MetricDRWrites, debuggers.MetricDRReads, debuggers.MetricReserves,
			debuggers.MetricFirstReserves, debuggers.MetricUsecs, debuggers.PolicyMetric("changed"), debuggers.PolicyMetric("all")} {
			if _, ok := res.Metrics[unit]; !ok {
				t.Errorf("%s: no %s", a, unit)
			}
		}
		if n := len(res.Batches[debuggers.MetricDRWrites]); n != 2 {
			t.Errorf("%s: %d batches of %s, want one per repetition (2)", a, n, debuggers.MetricDRWrites)
		}
		if res.NsPerOp <= 0 || len(res.Batches["ns/op"]) != 2 {
			t.Errorf("%s: ns/op %v, batches %v", a, res.NsPerOp, res.Batches["ns/op"])
		}
		// GDB programs at least DR7 on both threads in every change.
		if a != debuggers.ActionHit && res.Metrics[debuggers.MetricDRWrites] < 2 {
			t.Errorf("%s: %v DR writes on 2 threads", a, res.Metrics[debuggers.MetricDRWrites])
		}
	}
	if len(g.runs) != 1 {
		t.Fatalf("five cases ran %d pairs of sessions, want 1", len(g.runs))
	}
	if _, err := g.result(ctx, debuggers.ActionSet, 0); err != nil {
		t.Fatal(err)
	}
	if len(g.runs) != 2 {
		t.Errorf("a second run of set ran %d pairs in all, want 2", len(g.runs))
	}
}
