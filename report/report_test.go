package report

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"bpbench/bench"
	"bpbench/conform"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
	"bpbench/stats"
)

// buildWant builds run's report, fails t unless it holds every want, and
// returns it.
func buildWant(t *testing.T, run *runfile.Run, wants ...string) string {
	t.Helper()
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md, wants...)
	return md
}

func TestReportNotesAbsentSections(t *testing.T) {
	run := &runfile.Run{Results: []bench.Result{{Name: "Registers/backend=sim/policy=all", NsPerOp: 10}}}
	md := buildWant(t, run,
		"_Not in this run: Update, Race, Scaling, Tasks, Exclusion, Apply/BlindWindow, Switch/SwitchModel, Debugger, the model checked against the kernel, KernelThread/KernelEnable, KernelTasks._",
		"_This run recorded no machine noise; load is unknown._",
	)
	if strings.Contains(md, "## Is modifying") {
		t.Errorf("a section without data prints its header:\n%s", md)
	}
}

func TestIntervalFormat(t *testing.T) {
	ten := stats.MedianInterval([]float64{1740, 1760, 1780, 1790, 1800, 1830, 1780, 1775, 1785, 1795}, "runs")
	five := stats.MedianInterval([]float64{1700, 1780, 1900, 1750, 1800}, "runs")
	three := stats.MedianInterval([]float64{1700, 1780, 1900}, "runs")
	batches := stats.MedianInterval([]float64{1, 1.1, 0.9}, "batches")
	for _, c := range []struct {
		std  ivStyle
		iv   stats.Interval
		u    unitFmt
		want string
	}{
		{ivStyle{n: 10, from: "runs"}, ten, nsUnit, "1.78 µs [1.76, 1.80]"},
		{ivStyle{n: 5, from: "runs"}, five, nsUnit, "1.78 µs [1.70, 1.90]"},
		{ivStyle{n: 5, from: "runs"}, three, nsUnit, "1.78 µs [1.70, 1.90; 3 runs, 75%]"},
		{ivStyle{n: 5, from: "runs"}, ten, nsUnit, "1.78 µs [1.76, 1.80; 10 runs]"},
		{ivStyle{from: "batches"}, batches, suffixUnit("×"), "1.00× [0.9, 1.10; 3 batches, 75%]"},
		{ivStyle{from: "batches"}, stats.MedianInterval([]float64{5}, "runs"), plainUnit, "5.00 (1 value)"},
	} {
		if got := c.std.format(c.iv, c.u); got != c.want {
			t.Errorf("format(%+v) in %+v = %q, want %q", c.iv, c.std, got, c.want)
		}
	}
	if s := standardStyle([]stats.Interval{five, five, three}); s != (ivStyle{n: 5, from: "runs"}) {
		t.Errorf("standard of mostly 5 runs = %+v", s)
	}
	if s := standardStyle([]stats.Interval{batches}); s != (ivStyle{from: "batches"}) {
		t.Errorf("standard of a run of batches = %+v", s)
	}
}

func TestCountZeroHasUpperBound(t *testing.T) {
	if got := count(0, 279080); got != "0 of 279,080 (95% upper bound 0.00138%)" {
		t.Errorf("count(0, 279080) = %q", got)
	}
	if got := count(0, 842685620); strings.Contains(got, "e-") {
		t.Errorf("a tiny bound printed with an exponent: %q", got)
	}
	if got := count(449, 155748); got != "0.288% [0.263%, 0.316%] (449 of 155,748)" {
		t.Errorf("count(449, 155748) = %q", got)
	}
}

// updateRun has ptrace's modify and re-register, each run six times with
// the given ns/op.
func updateRun(mod, rr []float64) *runfile.Run {
	run := &runfile.Run{}
	run.Results = append(run.Results, fixtures.Reps("Update/backend=ptrace/op=modify", mod, nil)...)
	run.Results = append(run.Results, fixtures.Reps("Update/backend=ptrace/op=reregister", rr, nil)...)
	return run
}

func TestReportVerdictOnlyWhereIntervalsSeparate(t *testing.T) {
	t.Run("separated", func(t *testing.T) {
		buildWant(t, updateRun([]float64{1000, 1010, 990, 1005, 995, 1000}, []float64{3000, 3010, 2990, 3005, 2995, 3000}),
			"| ptrace | 1.00 µs [0.99, 1.01] | n/a | 3.00 µs [2.99, 3.01] | 3.00× cheaper |",
			"| Modify a held breakpoint in place, or re-register it: cost (ptrace) | modify in place, 3.00× cheaper | 1.00 µs [0.99, 1.01] vs 3.00 µs [2.99, 3.01] | yes |",
		)
	})
	t.Run("overlapping", func(t *testing.T) {
		md := Build(updateRun([]float64{1000, 1200, 800, 1100, 900, 1000}, []float64{1050, 1250, 850, 1150, 950, 1050}), t.TempDir())
		if strings.Contains(md, "× cheaper") || strings.Contains(md, "more expensive") {
			t.Errorf("a verdict on overlapping intervals:\n%s", md)
		}
		fixtures.WantAll(t, md, "not resolved: the intervals overlap; about ", "| no difference shown |", "| no: the intervals overlap; about ")
	})
	t.Run("single runs", func(t *testing.T) {
		md := Build(updateRun([]float64{1000}, []float64{3000}), t.TempDir())
		if strings.Contains(md, "× cheaper") || strings.Contains(md, "intervals overlap") {
			t.Errorf("a verdict, or an overlap, on single values without intervals:\n%s", md)
		}
		fixtures.WantAll(t, md, "1 value against 1 value: a single value has no interval to compare")
	})
}

// TestReportAnswersFirst: the verdict table opens the report, before the
// machine and the detail, with a row from each section that has data.
func TestReportAnswersFirst(t *testing.T) {
	run := updateRun([]float64{1000, 1010, 990, 1005, 995, 1000}, []float64{3000, 3010, 2990, 3005, 2995, 3000})
	run.Results = append(run.Results, fixtures.SwitchRun().Results...)
	md := Build(run, t.TempDir())
	answers, machine, detail := strings.Index(md, "## Answers"), strings.Index(md, "## Machine"), strings.Index(md, "## Is modifying")
	if answers < 0 || !(answers < machine && machine < detail) {
		t.Fatalf("want answers, then machine, then detail; at %d, %d, %d:\n%s", answers, machine, detail, md)
	}
	table := md[answers:machine]
	fixtures.WantAll(t, table,
		"| Modify a held breakpoint in place, or re-register it: cost (ptrace) |",
		"| Debug registers at a context switch, real kernel (perf) | 4 breakpoints on 2 threads make a round trip 2.11× as long |",
		"| Lazy switching: correct on SMP, and fewer register writes? | per-CPU lazy lost nothing in ",
	)
	if strings.Count(md, "Each case ran 6 times") != 1 || strings.Contains(md, "of 6 runs") {
		t.Errorf("the standard interval is not named exactly once, or figures repeat it:\n%s", md)
	}
}

// TestReportBrokenStrategy: a strategy that disagreed with the kernel is
// named at the top with its first divergence, and its figures are marked.
func TestReportBrokenStrategy(t *testing.T) {
	run := &runfile.Run{Failed: []runfile.Failure{{Experiment: "conform", Name: "Conform/strategy=big-mutex",
		Error: "strategy big-mutex disagreed with the kernel on 3 of 187 opens; first at op 70, cpu 0: kernel ENOSPC, big-mutex admitted; its figures below are from a strategy that broke the admission rules"}}}
	for _, st := range []string{"big-mutex", "linux"} {
		run.Results = append(run.Results, fixtures.Reps("Update/backend=sim/strategy="+st+"/op=modify", []float64{60, 61, 62}, nil)...)
		run.Results = append(run.Results, fixtures.Reps("Update/backend=sim/strategy="+st+"/op=reregister", []float64{200, 201, 202}, nil)...)
	}
	run.Conformance = &conform.Report{Clean: true, Opens: 187, Admitted: 117, Refused: 70, CPUs: 2, Slots: 4, Threads: 3,
		Strategies: []conform.Agreement{
			{Strategy: "big-mutex", Agreed: 184, Diverged: 3, Divergences: []conform.Divergence{{Op: 70, Request: "cpu 0", Kernel: "ENOSPC", Model: "admitted"}}},
			{Strategy: "linux", Agreed: 187},
		}}
	md := Build(run, t.TempDir())
	if !strings.HasPrefix(md, "# bpbench report\n\n**1 case failed.**\n\n- Strategy **big-mutex broke the admission rules**: strategy big-mutex disagreed with the kernel on 3 of 187 opens; first at op 70") {
		t.Errorf("the report does not open with the broken strategy:\n%s", md)
	}
	fixtures.WantAll(t, md, "| sim (big-mutex †) |", "| sim (linux) |", "marked † below",
		"| Does the model (each strategy) admit and refuse what the kernel does? | no: big-mutex † (3 of 187 opens) diverged |",
		"| big-mutex † | 184 | 3 | op 70 `cpu 0`: kernel ENOSPC, model admitted |",
		"(model, 1 strategy that kept the rules; 1 † left out)")
	if strings.Count(md, "first at op 70") != 1 {
		t.Errorf("the failure is repeated:\n%s", md)
	}
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
	buildWant(t, run,
		"- ptrace, time per update over its raw-syscall floor (the op's bare syscalls, timed alone): modify 0.99× [0.966, 1.01] of a 1.00 µs floor.",
		"- Below 1 only by noise (ptrace modify): the interval contains 1",
		"- Anomaly, **unexplained** (perf modify): cheaper than its own floor",
	)
}

func TestReportRaceSpuriousAndPrediction(t *testing.T) {
	run := &runfile.Run{}
	add := func(mode, rate, place string, steals, lo, hi, pred float64, spurious float64) {
		name := fmt.Sprintf("Race/backend=sim/strategy=cas/mode=%s/competitors=1/rate=%s/place=%s", mode, rate, place)
		r := fixtures.CaseResult(name, 100, map[string]float64{"steals/op": steals, "steals-lo/op": lo, "steals-hi/op": hi,
			"steals-predicted/op": pred, "spurious-refusals": spurious, "rate-achieved/s": 1e6, "changes": 20000})
		r.Iterations = 20000
		run.Results = append(run.Results, r)
	}
	add("modify", "max", "same", 0, 0, 0.0002, 0, 0)
	add("reregister", "max", "same", 0.3, 0.29, 0.31, 0.5, 28993)
	add("reregister", "10000", "other", 0.01, 0.009, 0.011, 0.0105, 0)
	md := buildWant(t, run,
		"| sim | competitor on the holder's CPU (time-sliced) | 0 of 20,000 (95% upper bound 0.0192%) |",
		"No prediction is given for the other 1 re-register case, whose competitor ran on the holder's CPU or without a pace: a competitor on the holder's CPU",
		"| sim | cas | 1 of 1 | 1 | 0.952× |",
		"The model holds in most paced cases on the other CPU for every strategy and backend.",
		"- cas refused 28,993 reservations spuriously (a slot was free; the caller retries) over 3 race runs of 60,000 operations; worst: 28,993 in 20,000 operations",
	)
	if strings.Contains(md, "0.5:") || strings.Contains(md, "predicted 0.5") {
		t.Errorf("a prediction is quoted where the model does not apply:\n%s", md)
	}
}

// TestReportKernelSingleValue: a perf bench side of one value has no
// interval; the report must not call that an overlap, nor explain an
// outlier it has not shown.
func TestReportKernelSingleValue(t *testing.T) {
	r := fixtures.CaseResult("KernelEnable/passive=0/active=0", 28400, map[string]float64{"usecs/op": 28.4, "perf-usecs/op": 0.689})
	r.Batches = map[string][]float64{"usecs/op": {19.6, 28.4, 29.3}}
	md := Build(&runfile.Run{Results: []bench.Result{r}}, t.TempDir())
	if strings.Contains(md, "intervals overlap") || strings.Contains(md, "Cause of the outlier") {
		t.Errorf("one perf bench value is reported as an overlap, or an unshown gap explained:\n%s", md)
	}
	fixtures.WantAll(t, md, "| 28.4 [19.6, 29.3; 3 batches, 75%] | 0.689 (1 value) | not resolved: 3 batches against 1 value: a single value has no interval to compare")

	sep := &runfile.Run{Results: fixtures.Reps("KernelEnable/passive=0/active=0", []float64{1, 1, 1}, func(i int) map[string]float64 {
		return map[string]float64{"usecs/op": 62 + float64(i), "perf-usecs/op": 2.45 + 0.01*float64(i)}
	})}
	md = buildWant(t, sep, "Cause of the outlier: `KernelEnable/passive=0/active=0` in Go is 25.6× perf bench: the Go child runtime keeps threads on the other vCPU")
}

func TestReportBlindWindow(t *testing.T) {
	run := &runfile.Run{Results: []bench.Result{
		fixtures.CaseResult("BlindWindow/policy=lazy/threads=1", 100, map[string]float64{"blind-request-ns/p50": 2500, "blind-ns/p50": 0, "missed/op": 4.29}),
	}}
	buildWant(t, run, "| 1 | n/a | 2.50 µs (1 value) (0 ns), 4.29 missed |", "from the request to the last thread armed")
}

func TestReportTasksAtEachCPUCount(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	// Strategy names are anyone's: the report names the slowest by what
	// it measured.
	for _, cpus := range []int{2, 256} {
		for _, st := range []string{"walker", "flat"} {
			for _, n := range []int{16, 4096} {
				ns := 50.0 * float64(cpus)
				if st == "walker" {
					ns *= float64(n)
				}
				run.Results = append(run.Results, fixtures.Reps(fmt.Sprintf("Tasks/strategy=%s/tasks=%d/cpus=%d", st, n, cpus), []float64{ns, ns * 1.01, ns * 0.99}, nil)...)
			}
		}
	}
	md := buildWant(t, run,
		"**Per reservation at 2 CPUs (the host's count):**",
		"**Per reservation at 256 simulated CPUs:**",
		"| walker | 1.60 µs [1.58, 1.62] | 410 µs [406, 414] | 256× |",
		"| Cost against live tasks, 2 CPUs (the host's count) | at 4096 tasks the slowest, walker, is 4096× the fastest, flat; it costs 1.60 µs at 16 tasks | 410 µs [406, 414] vs 100 ns [99.0, 101] | yes |",
		"| Cost against CPUs | flat, walker cost over twice as much at 256 CPUs as at 2; the most, flat, 128× |",
	)
	if strings.Contains(md, "(the host's count), at") {
		t.Errorf("a line repeats the CPU count its header gives:\n%s", md)
	}
}

func TestReportSwitch(t *testing.T) {
	md := buildWant(t, fixtures.SwitchRun(),
		"## What do debug registers cost at a context switch, and does lazy switching pay?",
		"Anchor: `perf bench sched pipe` takes 4.53 [4.50, 4.55] µs per round trip",
		"| perf | 2 | 4.72 [4.70, 4.75] | 6.03 [6.00, 6.05] (1.28×) |",
		"| lazy-global | 8 | 0.403 [0.4, 0.405] | 0.403 [0.4, 0.405] | 0.403 [0.4, 0.405] |",
		"- changed, eager, lazy-percpu lost and misdelivered nothing over every CPU count: 0 of at least 18,000,000 watched accesses each (95% upper bound 0.0000213%).",
		"- lazy-global lost ",
		"cause: the 2009 review's flaw",
		"Does lazy switching pay? In writes, yes: per-CPU lazy switching saves 3.50 register writes per switch at 64 CPUs",
	)
	if n := strings.Count(md, "0 [0, 0]"); n > 0 {
		t.Errorf("%d all-zero intervals printed instead of one line with the bound:\n%s", n, md)
	}
}

// TestReportReferenceRun builds the report of the committed reference
// run and checks that it answers first, says each standard once and
// prints no noise digits.
func TestReportReferenceRun(t *testing.T) {
	run := fixtures.ReferenceRun(t)
	md := buildWant(t, run,
		"| commit | "+run.Machine.Commit+" (clean tree) |",
		"| Modify a held breakpoint in place, or re-register it: cost (ptrace) | modify in place",
		"| Is the slot stolen in the window? (competitor on the other CPU) | re-register loses it; modify in place never did",
		"| Does the model (each strategy) admit and refuse what the kernel does? |",
		"reservations spuriously",
		"**Per reservation at 256 simulated CPUs:**",
		"## What do debug registers cost at a context switch, and does lazy switching pay?",
		"**Predicted steal rate.**",
	)
	answers := md[strings.Index(md, "## Answers"):strings.Index(md, "## Machine")]
	if rows := strings.Count(answers, "\n| ") - 1; rows < 12 || rows > 24 {
		t.Errorf("the answers table has %d rows, want one screen of one per question", rows)
	}
	if regexp.MustCompile(`\d(\.\d+)?e-\d+%`).MatchString(md) {
		t.Error("a percentage printed with an exponent")
	}
	for _, bad := range []string{"of 5 runs, 94%", "[0, 0]", "the host's count), at"} {
		if strings.Contains(md, bad) {
			t.Errorf("report holds %q", bad)
		}
	}
	if m := regexp.MustCompile(`\b1 (runs|values|batches|cases|strategys)\b`).FindString(md); m != "" {
		t.Errorf("report holds %q", m)
	}
	// No case holds a hard-coded strategy's name outside a table or the
	// figures themselves.
	if strings.Contains(md, "legacy costs") {
		t.Error("the report names a strategy by hard-coded role")
	}
}
