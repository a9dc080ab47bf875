package bench

import (
	"context"
	"strings"
	"testing"

	"bpbench/hwregs"
	"bpbench/internal/testenv"
)

// BenchmarkApply measures one process-wide watchpoint set, modified and
// cleared on every thread of an N-thread tracee; b.N is the number of
// set+modify+clear cycles.
func BenchmarkApply(b *testing.B) { runCases(b, "Apply", casesOf(b, "apply", Options{})) }

// BenchmarkBlindWindow measures how long a watchpoint being armed leaves
// some threads unwatched and how many writes it misses; b.N is the number
// of times the watchpoint is set.
func BenchmarkBlindWindow(b *testing.B) {
	runCases(b, "BlindWindow", casesOf(b, "blindwindow", Options{}))
}

// checkNamed checks that every key=value of res.Name is a Param and that
// the metrics are present.
func checkNamed(t *testing.T, res Result, exp, name string, metrics []string) {
	t.Helper()
	if res.Experiment != exp || res.Name != name {
		t.Fatalf("result %q/%q, want %q/%q", res.Experiment, res.Name, exp, name)
	}
	for _, kv := range strings.Split(res.Name, "/")[1:] {
		k, v, _ := strings.Cut(kv, "=")
		if got := res.Params[k]; got != v {
			t.Errorf("%s: Params[%q] = %q, want %q", res.Name, k, got, v)
		}
	}
	for _, k := range []string{"kernel", "pinned_cpu", "backend", "slots", "seed"} {
		if res.Params[k] == "" {
			t.Errorf("%s: Params[%q] missing", res.Name, k)
		}
	}
	for _, k := range metrics {
		if _, ok := res.Metrics[k]; !ok {
			t.Errorf("%s: metric %q missing (have %v)", res.Name, k, res.Metrics)
		}
	}
}

// runApplyModes runs one case of exp (named prefix/...) under each apply
// mode, on a tracee of the given threads for n cycles under the
// debug-register lock, checks each result's name, params and metrics, and
// returns the results.
func runApplyModes(t *testing.T, run func(context.Context, applySpec, Options, int64, Timer) (Result, error), exp, prefix string, threads int, n int64, metrics []string) []Result {
	t.Helper()
	testenv.LockDebugRegs(t)
	var out []Result
	for _, pol := range hwregs.ApplyModes {
		s := applySpec{policy: pol, threads: threads}
		res, err := run(context.Background(), s, Options{}, n, NopTimer)
		testenv.SkipIfUnsupported(t, err)
		if err != nil {
			t.Fatal(err)
		}
		checkNamed(t, res, exp, s.name(prefix), metrics)
		out = append(out, res)
	}
	return out
}

// TestApplyCounts runs the apply case on a small tracee: every cycle
// writes DR0 and DR7 on each thread to set, DR0 to modify, and DR0 and DR7
// to clear (the address is zeroed too), under either policy.
func TestApplyCounts(t *testing.T) {
	const threads, n = 6, 4
	metrics := []string{MetricNsPerChangeThread, "apply-ns/change-thread", MetricWritesPerCycle, "writes/cycle-thread", MetricWritesPerChangeThread,
		"set-ns/p50", "modify-ns/p50", "clear-ns/p50", "change-ns/p50", "resume-ns/p50", MetricP50, MetricP99}
	for _, res := range runApplyModes(t, runApply, "apply", "Apply", threads, n, metrics) {
		if res.Iterations != n {
			t.Errorf("%s: %d iterations, want %d", res.Name, res.Iterations, n)
		}
		if got := res.Metrics[MetricWritesPerCycle]; got != 5*threads {
			t.Errorf("%s: writes/cycle = %g, want %d", res.Name, got, 5*threads)
		}
		if got := res.Metrics["writes/cycle-thread"]; got != 5 {
			t.Errorf("%s: writes/cycle-thread = %g, want 5", res.Name, got)
		}
		if len(res.Batches[UnitNsPerOp]) != n {
			t.Errorf("%s: batches %v, want one per cycle", res.Name, res.Batches)
		}
		if res.Latency == nil || res.Latency.Count != 3*n {
			t.Errorf("%s: latency %+v, want %d samples", res.Name, res.Latency, 3*n)
		}
	}
}

// TestBlindWindowCounts runs the blindwindow case on a small running
// tracee: the watchpoint traps (traps/op > 0), misses are counted, and the
// lazy blind window is not shorter than its request-to-armed time allows.
func TestBlindWindowCounts(t *testing.T) {
	const threads, n = 4, 3
	metrics := []string{MetricBlindP50, MetricBlindP99, "blind-request-ns/p50", "blind-request-ns/p99", MetricMissed, "missed/thread", MetricTraps}
	for _, res := range runApplyModes(t, runBlind, "blindwindow", "BlindWindow", threads, n, metrics) {
		m := res.Metrics
		if m[MetricTraps] <= 0 {
			t.Errorf("%s: no traps while armed: %v", res.Name, m)
		}
		// At most one write per thread per repetition is miscounted at
		// the edges (see runBlind).
		if m[MetricMissed] < -2*threads {
			t.Errorf("%s: missed/op = %g, beyond the counting error", res.Name, m[MetricMissed])
		}
		if m["blind-request-ns/p50"] < m[MetricBlindP50] || res.Window == nil || res.Window.Count != n {
			t.Errorf("%s: from request %g < from first armed %g, or window %+v", res.Name, m["blind-request-ns/p50"], m[MetricBlindP50], res.Window)
		}
		t.Logf("%s: %v", res.Name, m)
	}
}

// TestApplyCasesNamed checks both experiments list every policy and thread
// count of their sweep, with distinct names.
func TestApplyCasesNamed(t *testing.T) {
	for _, exp := range []string{"apply", "blindwindow"} {
		for _, full := range []bool{false, true} {
			cs := casesOf(t, exp, Options{Full: full})
			if want := 2 * len(applyThreads(full)); len(cs) != want {
				t.Errorf("%s full=%v: %d cases, want %d", exp, full, len(cs), want)
			}
			seen := map[string]bool{}
			for _, c := range cs {
				if seen[c.Name] {
					t.Errorf("duplicate case %s", c.Name)
				}
				seen[c.Name] = true
			}
		}
		if _, err := lookup(t, exp).Cases(Options{PinCPU: 4096}); err == nil || !strings.Contains(err.Error(), "PinCPU") {
			t.Errorf("%s with PinCPU = 4096: %v, want an error naming PinCPU", exp, err)
		}
	}
}
