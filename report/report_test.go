package report

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
	"bpbench/stats"
)

func TestReportNotesAbsentSections(t *testing.T) {
	run := &runfile.Run{Results: []bench.Result{{Name: "Registers/backend=sim/policy=all", NsPerOp: 10}}}
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md,
		"_No Update results in this run; section omitted._",
		"_No conformance results in this run; section omitted._",
		"_This run recorded no machine noise",
	)
}

func TestFmtIv(t *testing.T) {
	six := stats.MedianInterval([]float64{1740, 1760, 1780, 1790, 1800, 1830, 1780, 1775, 1785, 1795}, "runs")
	for _, c := range []struct {
		iv   stats.Interval
		u    unitFmt
		want string
	}{
		{six, nsUnit, "1.78 µs [1.76, 1.80]"},
		{stats.MedianInterval([]float64{1700, 1780, 1900}, "runs"), nsUnit, "1.78 µs [1.70–1.90 of 3 runs, 75%]"},
		{stats.MedianInterval([]float64{5}, "runs"), plainUnit, "5.00 [1 value, no interval]"},
		{stats.MedianInterval([]float64{1, 1.1, 0.9}, "runs"), suffixUnit("×"), "1.00× [0.9–1.10 of 3 runs, 75%]"},
	} {
		if got := fmtIv(c.iv, c.u); got != c.want {
			t.Errorf("fmtIv(%+v) = %q, want %q", c.iv, got, c.want)
		}
	}
}

// updateRun has ptrace's three ops, each run six times with the given
// ns/op of modify and re-register.
func updateRun(mod, rr []float64) *runfile.Run {
	run := &runfile.Run{}
	run.Results = append(run.Results, fixtures.Reps("Update/backend=ptrace/op=modify", mod, nil)...)
	run.Results = append(run.Results, fixtures.Reps("Update/backend=ptrace/op=reregister", rr, nil)...)
	return run
}

func TestReportVerdictOnlyWhereIntervalsSeparate(t *testing.T) {
	t.Run("separated", func(t *testing.T) {
		md := Build(updateRun([]float64{1000, 1010, 990, 1005, 995, 1000}, []float64{3000, 3010, 2990, 3005, 2995, 3000}), t.TempDir())
		if !strings.Contains(md, "it is 3.00× cheaper than re-register (3.00 µs [2.99, 3.01])") {
			t.Errorf("no verdict for separated intervals:\n%s", md)
		}
	})
	t.Run("overlapping", func(t *testing.T) {
		md := Build(updateRun([]float64{1000, 1200, 800, 1100, 900, 1000}, []float64{1050, 1250, 850, 1150, 950, 1050}), t.TempDir())
		if strings.Contains(md, "cheaper than re-register") || strings.Contains(md, "more expensive than re-register") {
			t.Errorf("a verdict on overlapping intervals:\n%s", md)
		}
		if !strings.Contains(md, "not resolved at 6 runs each: the intervals overlap; about ") || !strings.Contains(md, " runs would resolve it") {
			t.Errorf("no 'not resolved ... about N runs' note:\n%s", md)
		}
	})
	t.Run("single runs", func(t *testing.T) {
		md := Build(updateRun([]float64{1000}, []float64{3000}), t.TempDir())
		if strings.Contains(md, "cheaper than re-register") {
			t.Errorf("a verdict on single values without intervals:\n%s", md)
		}
	})
}

func TestReportFloorAnomalies(t *testing.T) {
	floor := func(xs ...float64) func(int) map[string]float64 {
		return func(i int) map[string]float64 {
			return map[string]float64{"x-floor": xs[i], "floor-ns/op": 1000}
		}
	}
	run := &runfile.Run{}
	run.Results = append(run.Results, fixtures.Reps("Update/backend=ptrace/op=modify", []float64{966, 990, 1010}, floor(0.966, 0.99, 1.01))...)
	run.Results = append(run.Results, fixtures.Reps("Update/backend=perf/op=modify", []float64{900, 910, 920}, floor(0.9, 0.91, 0.92))...)
	md := Build(run, t.TempDir())
	if !strings.Contains(md, "modify costs 0.99× [0.966–1.01 of 3 runs, 75%] its raw-syscall floor (1.00 µs); below 1 only by noise: the interval contains 1") {
		t.Errorf("ptrace's x-floor below 1 is not explained as noise:\n%s", md)
	}
	if !strings.Contains(md, "anomaly, **unexplained**: cheaper than its own floor") {
		t.Errorf("perf's x-floor whose interval lies below 1 is not marked unexplained:\n%s", md)
	}
}

func TestReportRaceSpuriousAndPrediction(t *testing.T) {
	run := &runfile.Run{}
	for _, mode := range []string{"modify", "reregister"} {
		name := "Race/backend=sim/strategy=cas/mode=" + mode + "/competitors=1/rate=max/place=same"
		r := fixtures.CaseResult(name, 100, map[string]float64{"steals/op": 0, "spurious-refusals": 0, "rate-achieved/s": 1e6, "changes": 20000})
		if mode == "reregister" {
			r.Metrics = map[string]float64{"steals/op": 0.3, "steals-lo/op": 0.29, "steals-hi/op": 0.31, "steals-predicted/op": 0.5,
				"spurious-refusals": 28993, "rate-achieved/s": 1e6, "changes": 20000}
		}
		r.Iterations = 20000
		run.Results = append(run.Results, r)
	}
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md,
		"- **sim, competitor on the holder's CPU (time-sliced)**: modify in place lost 0 of 20000",
		"0.3 [0.29, 0.31] steals/op over 20000 changes, competitor achieved 1.00M [1 value, no interval] attempts/s, predicted 0.5: outside the interval, because holder and competitor share one CPU",
		"- cas refused 28993 reservations spuriously (a slot was free; the caller retries) over 2 race runs of 40000 operations; worst run: 28993 in 20000 operations",
	)
}

func TestReportKernelEnableCaveat(t *testing.T) {
	run := &runfile.Run{Results: fixtures.Reps("KernelEnable/passive=0/active=0", []float64{1, 1, 1}, func(i int) map[string]float64 {
		return map[string]float64{"usecs/op": 62 + float64(i), "perf-usecs/op": 2.45}
	})}
	md := Build(run, t.TempDir())
	if !strings.Contains(md, "Cause of the outlier: `KernelEnable/passive=0/active=0` in Go is 25.7× perf bench: the Go child runtime keeps threads on the other vCPU") {
		t.Errorf("no cause for the KernelEnable gap:\n%s", md)
	}
}

func TestReportBlindWindow(t *testing.T) {
	old := &runfile.Run{Results: []bench.Result{
		fixtures.CaseResult("BlindWindow/policy=lazy/threads=1", 100, map[string]float64{"blind-ns/p50": 0, "missed/op": 4.29}),
		fixtures.CaseResult("BlindWindow/policy=eager/threads=1", 100, map[string]float64{"blind-ns/p50": 0, "missed/op": 0}),
	}}
	md := Build(old, t.TempDir())
	if !strings.Contains(md, "Cause of the 0 ns windows with missed writes (lazy at 1 thread)") {
		t.Errorf("0 ns window with missed writes not explained:\n%s", md)
	}
	nw := &runfile.Run{Results: []bench.Result{
		fixtures.CaseResult("BlindWindow/policy=lazy/threads=1", 100, map[string]float64{"blind-request-ns/p50": 2500, "blind-ns/p50": 0, "missed/op": 4.29}),
	}}
	md = Build(nw, t.TempDir())
	if !strings.Contains(md, "2.50 µs [1 value, no interval] blind (0 ns)") || !strings.Contains(md, "from the request to the last thread armed") || strings.Contains(md, "Cause of the 0 ns") {
		t.Errorf("the window from the request is not preferred:\n%s", md)
	}
}

func TestReportTasksAtEachCPUCount(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	for _, cpus := range []int{2, 256} {
		for _, st := range []string{"legacy", "cas"} {
			for _, n := range []int{16, 4096} {
				ns := 50.0 * float64(cpus)
				if st == "legacy" {
					ns *= float64(n)
				}
				run.Results = append(run.Results, fixtures.Reps(fmt.Sprintf("Tasks/strategy=%s/tasks=%d/cpus=%d", st, n, cpus), []float64{ns, ns * 1.01, ns * 0.99}, nil)...)
			}
		}
	}
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md,
		"**At 2 CPUs (the host's count):**",
		"**At 256 simulated CPUs:**",
		"- at 2 CPUs (the host's count), at 4096 tasks legacy costs 410 µs",
		"- at 256 simulated CPUs, at 4096 tasks legacy costs 52.4 ms",
	)
}

func TestReportNoise(t *testing.T) {
	run := &runfile.Run{}
	for i, ns := range []float64{100, 300, 110} {
		r := fixtures.CaseResult("Update/backend=sim/strategy=cas/op=modify", ns, nil)
		r.Noise = &harness.Noise{LoadAvg1: 1, RunnableMax: 1}
		if i == 1 {
			r.Noise = &harness.Noise{LoadAvg1: 5.5, RunnableMax: 64, Others: 0.5, LockWait: 3 * time.Millisecond}
		}
		run.Results = append(run.Results, r)
	}
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md,
		"- `Update/backend=sim/strategy=cas/op=modify`: 1 of 3 runs under load (other processes up to 50.0% of the CPUs, load average up to 5.50, steal up to 0%, waited 3ms for the debug-register lock)",
		"- `Update/backend=sim/strategy=cas/op=modify`: 110 ns [100–300 of 3 runs, 75%] (width 182% of the median)",
	)
}

func TestReportSwitch(t *testing.T) {
	md := Build(fixtures.SwitchRun(), t.TempDir())
	fixtures.WantAll(t, md,
		"## What do debug registers cost at a context switch, and does lazy switching pay?",
		"- anchor: `perf bench sched pipe` 4.53 [4.50, 4.55] usecs/op.",
		"- **perf**, breakpoints on 2 threads: B=0: 4.72 [4.70, 4.75]; B=1: 6.03 [6.00, 6.05] (slowdown",
		"  - 4 vs 0 breakpoints: 4 breakpoints make a round trip 2.10× as expensive, +5.20 µs.",
		"| lazy-global | 64 | 8 | 0.403 [0.4, 0.405] | 0 [0, 0] | 0.064 [0.064, 0.064] | 0 [0, 0] |",
		"- at 64 CPUs, lazy-percpu: 0.126× eager's writes (0.502 against 4.00 per switch).",
		"- lazy-global at 64 CPUs: 0.064 [0.064, 0.064] lost/op; cause: the 2009 review's flaw",
		"Does lazy switching pay? In writes, yes: per-CPU lazy switching saves 3.50 register writes per switch at 64 CPUs without losing a breakpoint",
	)
}

// TestReportReferenceRun builds the report of the reference run and checks
// the corrections issue 11 asks of it.
func TestReportReferenceRun(t *testing.T) {
	run := fixtures.ReferenceRun(t)
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md,
		"| commit | "+run.Machine.Commit+" (clean tree) |",
		"- **ptrace**: modify in place costs ",
		"Cause of the outlier: `KernelEnable/passive=0/active=0` in Go is ",
		"reservations spuriously",
		"register writes per change per thread",
		"blind window from the request to the last thread armed",
		"**model agreed with the kernel on ",
		"**At 256 simulated CPUs:**",
		"## What do debug registers cost at a context switch, and does lazy switching pay?",
	)
}
