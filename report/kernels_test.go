package report

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"bpbench/bench"
	"bpbench/conform"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
	"bpbench/stats"
)

// tasksResult is a kernel-tasks result whose 16 sub-sample p50s are
// cost*(1 + small spread) and whose reference is ref.
func tasksResult(target string, held int, cost, ref float64) bench.Result {
	var p50, rel []float64
	for i := 0; i < 16; i++ {
		v := cost * (1 + float64(i-8)/200)
		p50 = append(p50, v)
		rel = append(rel, v/ref)
	}
	return bench.Result{Experiment: "kernel-tasks", Name: "KernelTasks/target=" + target + "/held=" + strconv.Itoa(held),
		Params:  map[string]string{bench.ParamTarget: target, bench.ParamHeld: strconv.Itoa(held)},
		Batches: map[string][]float64{bench.MetricP50: p50, bench.MetricP50OverRef: rel}}
}

// kernelCell is a cell of arch whose conform agreed (or not) with the
// model configured with the given pools, and whose kernel-tasks costs
// follow cost and ref.
func kernelCell(label, arch string, cpus int, agrees bool, pools conform.Pools, cost func(held int) float64, ref func(held int) float64) *runfile.Cell {
	cfg := pools.Config(cpus)
	r := &conform.Report{Clean: true, Opens: 1000, Inst: 300, InstRefused: 40, CPUs: cpus, Slots: cfg.Slots, InstSlots: cfg.InstSlots, Arch: arch,
		Strategies: []conform.Agreement{{Strategy: "linux", Agreed: 1000}}}
	if arch != "amd64" {
		r.Facts = []conform.Fact{{Name: "ptrace-dr-write-reserves", Skipped: "x86 only: the probe writes DR0 and DR7 through PTRACE_POKEUSER, which " + arch + " does not have"}}
	}
	if !agrees {
		r.Strategies[0].Diverged = 3
	}
	run := &runfile.Run{Conformance: r}
	for _, h := range []int{0, 64, 256, 1024} {
		run.Results = append(run.Results, tasksResult("task", h, cost(h), ref(h)))
	}
	name := label + "-cpus" + strconv.Itoa(cpus)
	return &runfile.Cell{Name: name, Label: label, Arch: arch, CPUs: cpus, Accel: "tcg", AccelWhy: "test", Run: run,
		Kernel: runfile.KernelSpec{Kind: "debian", Label: label, Arch: arch}}
}

var (
	x86Pools   = conform.Pools{Data: 4, Inst: 4, Shared: true}
	arm64Pools = conform.Pools{Data: 4, Inst: 6}
)

// TestKernelsReport checks the cross-kernel report on a made-up matrix:
// a divergence comes first, a failed cell says why, the verdicts follow
// the ratios to the reference, not the machine's speed (the flat kernel's
// N = 1024 case ran while the machine was twice as slow: cost and
// reference both doubled, and it is still flat), and the architectures
// stand side by side with the pools each was probed to have.
func TestKernelsReport(t *testing.T) {
	one := func(int) float64 { return 1000 }
	walk := func(h int) float64 { return 20_000 + 60*float64(h) }
	flat := func(h int) float64 {
		if h == 1024 {
			return 40_000
		}
		return 20_000
	}
	slowAt1024 := func(h int) float64 {
		if h == 1024 {
			return 2000
		}
		return 1000
	}
	m := &runfile.Matrix{Arch: "amd64,arm64", Accel: "tcg", AccelWhy: "test", Started: time.Now(), Cells: []*runfile.Cell{
		kernelCell("old", "amd64", 8, true, x86Pools, walk, one),
		kernelCell("new", "amd64", 8, false, x86Pools, flat, slowAt1024),
		kernelCell("new-arm64", "arm64", 8, true, arm64Pools, flat, slowAt1024),
		{Name: "bad-cpus8", Label: "bad", Arch: "amd64", CPUs: 8, Error: "the kernel panicked; console ends: boom"},
	}}
	rep := BuildKernels(m, t.TempDir())
	iDiv := strings.Index(rep, "diverged from the kernel")
	iCells := strings.Index(rep, "## Cells")
	iAnswers := strings.Index(rep, "## Answers")
	if iDiv < 0 || iCells < 0 || iDiv > iAnswers || iAnswers > iCells {
		t.Errorf("the divergence is not reported first, then the answers, then the cells:\n%s", rep)
	}
	fixtures.WantAll(t, rep,
		"bad-cpus8** failed: the kernel panicked",
		"**old**: at 8 CPUs, N = 1024 costs",
		"grows like the model's legacy",
		"**new**: at 8 CPUs, N = 1024 costs 1.00×",
		"flat like the model's linux",
		"**new-arm64**: at 8 CPUs, N = 1024 costs 1.00×",
		"TCG",
		// The architectures side by side, with their probed pools.
		"| amd64 | 2 | 4 shared by instruction and data breakpoints | Slots 4, InstSlots 0 |",
		"| arm64 | 1 | 6 instruction + 4 data, separate | Slots 4, InstSlots 6 | 1000 | 300 (40) | 0 |",
		"amd64: 4 shared by instruction and data breakpoints; arm64: 6 instruction + 4 data, separate",
		"Not probed on arm64: x86 only",
		"| [new-arm64-cpus8](new-arm64-cpus8/report.md) | arm64 |",
		// The answers say the model diverged on one kernel.
		"| Does the model, configured with each kernel's probed pools, admit and refuse what the kernel does? | no: linux on new-cpus8 (3) diverged |",
	)
}

func TestKernelsVerdictThresholds(t *testing.T) {
	for _, c := range []struct {
		iv       stats.Interval
		want     string
		resolved bool
	}{
		{stats.Interval{Median: 4, Lo: 3, Hi: 5, N: 16}, "legacy", true},
		{stats.Interval{Median: 1.05, Lo: 0.9, Hi: 1.2, N: 16}, "flat like", true},
		{stats.Interval{Median: 1.2, Lo: 1.0, Hi: 1.6, N: 16}, "flat at the median", false},
		{stats.Interval{Median: 1.4, Lo: 1.1, Hi: 1.7, N: 16}, "not resolved", false},
		{stats.Interval{}, "no ratio", false},
	} {
		got, ok := tasksVerdict(runfile.TaskPoint{Ratio: c.iv})
		if !strings.Contains(got, c.want) || ok != c.resolved {
			t.Errorf("tasksVerdict(%+v) = %q, %v; want %q, %v", c.iv, got, ok, c.want, c.resolved)
		}
	}
}

// TestReportKernelTasksSection: a run with kernel-tasks results says, for
// its own kernel, whether the cost grows with the held task breakpoints,
// and answers it in the table.
func TestReportKernelTasksSection(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{Kernel: "6.1.0-test", NumCPU: 2}}
	for _, held := range []int{0, 64, 4096} {
		cost := 10000.0
		if held == 4096 {
			cost = 40000 // a pre-2022 walk
		}
		var p50, rel []float64
		for i := 0; i < 16; i++ {
			p50 = append(p50, cost*(1+0.01*float64(i%3)))
			rel = append(rel, cost/10000*(1+0.01*float64(i%3)))
		}
		run.Results = append(run.Results, bench.Result{Experiment: "kernel-tasks", Name: fmt.Sprintf("KernelTasks/target=task/held=%d", held),
			Params:  map[string]string{bench.ParamTarget: "task", bench.ParamHeld: fmt.Sprint(held)},
			NsPerOp: cost, Metrics: map[string]float64{bench.MetricP50: cost},
			Batches: map[string][]float64{bench.MetricP50: p50, bench.MetricP50OverRef: rel}})
	}
	md := Build(run, t.TempDir())
	fixtures.WantAll(t, md,
		"## Does this kernel's reservation cost grow with live task breakpoints?",
		"At N = 4096 this kernel's task reservation costs 4",
		"grows like the model's legacy (the pre-2022 list walk)",
		"| Does the real kernel's reservation cost grow with live task breakpoints? (6.1.0-test) |")
}
