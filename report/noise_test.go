package report

import (
	"strings"
	"testing"
	"time"

	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
)

// TestReportNoiseTicks: where the probe recorded the ticks a case spanned,
// the report judges load by them, as harness.Noise.Loaded does, and not by
// its estimate from the case's operations (which a case whose time went to
// a child or to setup undercounts).
func TestReportNoiseTicks(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	// One op of 40 µs estimates 0.008 ticks, but the case spanned 2 s on
	// 2 CPUs (400 ticks): a fifth of them to others is load.
	addNoisy(run, "KernelThread/breakpoints=4/parallelism=2/threads=10", 1, 40e3, harness.Noise{Ticks: 400, CPUs: 2, Others: 0.2, Busy: 1})
	// 8 ticks (40 ms on 2 CPUs) with one stray tick: not load, whatever
	// the operations estimate (here 800 ms).
	addNoisy(run, "Switch/backend=perf/breakpoints=4/threads-with=2", 1e7, 80, harness.Noise{Ticks: 8, CPUs: 2, Others: 0.125, Busy: 0.5})
	// 3 ticks: too short to tell.
	addNoisy(run, "Registers/backend=sim/policy=all", 1e7, 80, harness.Noise{Ticks: 3, CPUs: 2, Others: 0.34, Busy: 1})
	md := buildWant(t, run,
		"| KernelThread | 1 of 1 | 1 | 20.0% | 0% | 0 | 0 |",
		"1 case run too short for the tick counters to tell load from noise (15.0 ms or less each)",
	)
	if strings.Contains(md, "| Switch |") || strings.Contains(md, "| Registers |") {
		t.Errorf("a case with a stray tick is called loaded:\n%s", md)
	}
	for _, r := range run.Results {
		loaded, known := loadOf(r, 2)
		if r.Noise.Resolved() && (!known || loaded != r.Noise.Loaded()) {
			t.Errorf("%s: report says loaded=%v known=%v, harness says %v", r.Name, loaded, known, r.Noise.Loaded())
		}
	}
}

// TestReportNoise: load is called only where the clock-tick counters can
// tell it from their granularity.
func TestReportNoise(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	// 40 ms on 2 CPUs is 8 ticks: one stray tick is 12.5%.
	addNoisy(run, "Tasks/strategy=cas/tasks=16", 1e6, 40, harness.Noise{Others: 0.125, Busy: 0.625})
	// 80 ms: two ticks of 16 are 12.5%, still within the counters' blur.
	addNoisy(run, "Tasks/strategy=cas/tasks=64", 1e6, 80, harness.Noise{Others: 0.125, Busy: 0.625})
	// 800 ms with half the CPUs' time taken by others: loaded.
	addNoisy(run, "Update/backend=sim/strategy=cas/op=modify", 1e7, 80, harness.Noise{Others: 0.5, Busy: 1})
	// 10 ms on 2 CPUs is 2 ticks: nothing can be told.
	addNoisy(run, "Registers/backend=sim/policy=all", 1e6, 10, harness.Noise{Others: 0.5, Busy: 1})
	// A lock wait is load however short the case.
	addNoisy(run, "Update/backend=sim/strategy=cas/op=reregister", 1e3, 100, harness.Noise{LockWait: 3 * time.Millisecond})
	md := buildWant(t, run,
		"| Update | 2 of 2 | 2 | 50.0% | 0% | 3ms | 0 |",
		"1 case run too short for the tick counters to tell load from noise",
	)
	if strings.Contains(md, "| Tasks |") || strings.Contains(md, "| Registers |") {
		t.Errorf("a case with a tick or two of others is called loaded:\n%s", md)
	}
}

// addNoisy adds to run a case of iters operations of ns each, measured
// under noise n.
func addNoisy(run *runfile.Run, name string, iters int64, ns float64, n harness.Noise) {
	r := fixtures.CaseResult(name, ns, nil)
	r.Iterations, r.Noise = iters, &n
	run.Results = append(run.Results, r)
}
