package kernels

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"bpbench/bench"
	"bpbench/conform"
	"bpbench/runfile"
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
		Params:  map[string]string{"target": target, "held": strconv.Itoa(held)},
		Batches: map[string][]float64{"p50-ns": p50, "p50/ref": rel}}
}

func cellWith(label string, cpus int, agrees bool, cost func(held int) float64, ref func(held int) float64) *Cell {
	run := &runfile.Run{Conformance: &conform.Report{Clean: true, Opens: 1000, Strategies: []conform.Agreement{{Strategy: "linux", Agreed: 1000}}}}
	if !agrees {
		run.Conformance.Strategies[0].Diverged = 3
	}
	for _, h := range []int{0, 64, 256, 1024} {
		run.Results = append(run.Results, tasksResult("task", h, cost(h), ref(h)))
	}
	return &Cell{Name: cellName(label, cpus), Label: label, CPUs: cpus, Accel: "tcg", Run: run, Kernel: Spec{Kind: "debian", Label: label}}
}

// TestReport checks the cross-kernel report on a made-up matrix: a
// divergence comes first, a failed cell says why, and the verdicts
// follow the ratios to the reference, not the machine's speed: the flat
// kernel's N = 1024 case ran while the machine was twice as slow (cost
// and reference both doubled) and is still flat.
func TestReport(t *testing.T) {
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
	m := &Matrix{Arch: "amd64", Accel: "tcg", AccelWhy: "test", Started: time.Now(), Cells: []*Cell{
		cellWith("old", 8, true, walk, one),
		cellWith("new", 8, false, flat, slowAt1024),
		{Name: "bad-cpus8", Label: "bad", CPUs: 8, Error: "the kernel panicked; console ends: boom"},
	}}
	rep := Report(m, nil)
	iDiv := strings.Index(rep, "diverged from the kernel")
	iCells := strings.Index(rep, "## Cells")
	if iDiv < 0 || iCells < 0 || iDiv > iCells {
		t.Errorf("the divergence is not reported before the cells:\n%s", rep)
	}
	if !strings.Contains(rep, "bad-cpus8** failed: the kernel panicked") {
		t.Errorf("the failed cell's error is missing:\n%s", rep)
	}
	for _, want := range []string{
		"**old**: at 8 CPUs, N = 1024 costs",
		"grows like the model's legacy",
		"**new**: at 8 CPUs, N = 1024 costs 1.00×",
		"flat like the model's linux",
		"TCG",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

func TestVerdictThresholds(t *testing.T) {
	for _, c := range []struct {
		iv   interval
		want string
	}{
		{interval{Median: 4, Lo: 3, Hi: 5, N: 16}, "legacy"},
		{interval{Median: 1.05, Lo: 0.9, Hi: 1.2, N: 16}, "flat like"},
		{interval{Median: 1.2, Lo: 1.0, Hi: 1.6, N: 16}, "flat at the median"},
		{interval{Median: 1.4, Lo: 1.1, Hi: 1.7, N: 16}, "not resolved"},
		{interval{}, "no ratio"},
	} {
		if got := verdict(taskPoint{ratio: c.iv}); !strings.Contains(got, c.want) {
			t.Errorf("verdict(%+v) = %q, want %q", c.iv, got, c.want)
		}
	}
}

// TestMedianInterval checks the order-statistic interval against known
// coverages: 16 values at 95% give [x(4), x(13)] (97.87%); 5 values
// cannot reach 95% and give [min, max] at 93.75%.
func TestMedianInterval(t *testing.T) {
	var vs []float64
	for i := 1; i <= 16; i++ {
		vs = append(vs, float64(i))
	}
	iv := medianInterval(vs)
	if iv.Lo != 4 || iv.Hi != 13 || iv.Median != 8.5 || iv.Coverage < 0.978 || iv.Coverage > 0.979 {
		t.Errorf("16 values: %+v", iv)
	}
	iv = medianInterval([]float64{5, 1, 4, 2, 3})
	if iv.Lo != 1 || iv.Hi != 5 || iv.Median != 3 || iv.Coverage != 0.9375 {
		t.Errorf("5 values: %+v", iv)
	}
	r := ratio(interval{Median: 10, Lo: 8, Hi: 12, N: 16, Coverage: 0.98}, interval{Median: 2, Lo: 1, Hi: 4, N: 16, Coverage: 0.98})
	if r.Median != 5 || r.Lo != 2 || r.Hi != 12 {
		t.Errorf("ratio: %+v", r)
	}
}
