package charts

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"bpbench/bench"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
)

func barsOf(t *testing.T, ch *chart) []*bars {
	t.Helper()
	var out []*bars
	for _, it := range ch.legend {
		for _, th := range it.thumbs {
			if b, ok := th.(*bars); ok {
				out = append(out, b)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("chart has no bars")
	}
	return out
}

func legendHas(ch *chart, label string) bool {
	for _, it := range ch.legend {
		if it.label == label {
			return true
		}
	}
	return false
}

func legendLabels(ch *chart) []string {
	var out []string
	for _, it := range ch.legend {
		out = append(out, it.label)
	}
	return out
}

func xLabels(ch *chart) []string {
	var out []string
	for _, tk := range ch.X.Tick.Marker.Ticks(ch.X.Min, ch.X.Max) {
		out = append(out, tk.Label)
	}
	return out
}

func yLabels(ch *chart) []plot.Tick {
	var out []plot.Tick
	for _, tk := range ch.Y.Tick.Marker.Ticks(ch.Y.Min, ch.Y.Max) {
		if tk.Label != "" {
			out = append(out, tk)
		}
	}
	return out
}

func data(run *runfile.Run) *plotData { return newPlotData(run) }

// optionalStems are the charts the old fixture has no data for: CPU
// counts and context switches came later.
var optionalStems = []string{"tasks-cpus", "switch-cost", "switch-model-writes", "switch-model-lost"}

// TestPlotReferenceRun draws every chart of the reference run (the
// current full suite on a VM) without error.
func TestPlotReferenceRun(t *testing.T) {
	d := data(fixtures.ReferenceRun(t))
	for _, cs := range specs {
		chs, why := cs.build(d)
		if len(chs) == 0 {
			if !slices.Contains(optionalStems, cs.stem) {
				t.Errorf("%s: omitted for the reference run: %s", cs.stem, why)
			}
			continue
		}
		for _, ch := range chs {
			if _, err := ch.render(chartW, chartH, "png"); err != nil {
				t.Errorf("%s: %v", cs.stem, err)
			}
		}
	}
}

func TestPlotUpdateWhiskers(t *testing.T) {
	t.Run("repetitions", func(t *testing.T) {
		run := &runfile.Run{Results: fixtures.Reps("Update/backend=sim/strategy=cas/op=modify", []float64{120, 100, 180}, nil)}
		ch, why := plotUpdate(data(run))
		if ch == nil {
			t.Fatal(why)
		}
		b := barsOf(t, ch)[0]
		iv := b.series.ivs[0]
		if b.series.vals[0] != 120 || iv.Lo != 100 || iv.Hi != 180 {
			t.Errorf("dot %v whiskers %v..%v, want the median 120 of 3 runs with min..max 100..180", b.series.vals[0], iv.Lo, iv.Hi)
		}
		if !b.dots || ch.Y.Scale != (plot.LogScale{}) {
			t.Errorf("update cost on a %T axis drawn as dots=%v; want dots on a log axis (no bars from an arbitrary baseline)", ch.Y.Scale, b.dots)
		}
		if !legendHas(ch, "whiskers: min–max of 3 runs covers 75% (fewer than 6 values cannot reach 95%)") {
			t.Errorf("legend %q does not say what the whiskers cover", legendLabels(ch))
		}
	})
	t.Run("batches", func(t *testing.T) {
		r := fixtures.CaseResult("Update/backend=ptrace/op=reregister", 5000, nil)
		r.Batches = map[string][]float64{"ns/op": {4900, 5000, 5100, 4800, 5200, 5050, 4950, 5010}}
		ch, _ := plotUpdate(data(&runfile.Run{Results: []bench.Result{r}}))
		iv := barsOf(t, ch)[0].series.ivs[0]
		if iv.N != 8 || iv.From != "batches" || !iv.Resolved() {
			t.Errorf("whisker %+v, want the 95%% interval over 8 batches", iv)
		}
		if !legendHas(ch, "whiskers: 95% interval of the median") {
			t.Errorf("legend %q", legendLabels(ch))
		}
	})
	t.Run("single value", func(t *testing.T) {
		r := fixtures.CaseResult("Update/backend=ptrace/op=reregister", 5000, nil)
		r.Latency = &bench.Histogram{Count: 100, P50: 90, P99: 400}
		ch, _ := plotUpdate(data(&runfile.Run{Results: []bench.Result{r}}))
		for _, it := range ch.legend {
			if strings.HasPrefix(it.label, "whiskers") {
				t.Errorf("a case run once without batches has no interval, yet the legend says %q", it.label)
			}
		}
	})
}

func TestPlotRaceStealsNominal(t *testing.T) {
	run := &runfile.Run{}
	add := func(be, st, mode string, k int, rate string, steals float64) {
		name := fmt.Sprintf("Race/backend=%s/strategy=%s/mode=%s/competitors=%d/rate=%s", be, st, mode, k, rate)
		run.Results = append(run.Results, fixtures.CaseResult(name, 1000, map[string]float64{"steals/op": steals}))
	}
	for _, st := range []string{"cas", "mutex"} {
		for _, mode := range []string{"modify", "reregister"} {
			add("sim", st, mode, 0, "0", 0)
			for _, k := range []int{1, 2} {
				// Out of order, to check the axis sorts them.
				for i, rate := range []string{"max", "100000", "1000"} {
					v := 0.0
					if mode == "reregister" {
						v = float64(k) * float64(3-i) / 10
					}
					add("sim", st, mode, k, rate, v)
				}
			}
		}
	}
	add("perf", "kernel", "modify", 0, "0", 0)
	add("perf", "kernel", "modify", 1, "max", 0)
	add("perf", "kernel", "reregister", 0, "0", 0)
	add("perf", "kernel", "reregister", 1, "max", 0.9)

	chs, why := plotRaceSteals(data(run))
	if len(chs) != 2 {
		t.Fatalf("%d charts (%s), want one per backend", len(chs), why)
	}
	sim, perf := chs[0], chs[1]
	if sim.stem != "race-steals-sim" || perf.stem != "race-steals-perf" {
		t.Errorf("stems %q, %q", sim.stem, perf.stem)
	}
	// Without achieved rates the axis falls back to the nominal ones.
	if got, want := xLabels(sim), []string{"none", "1k/s", "100k/s", "max"}; !slices.Equal(got, want) {
		t.Errorf("sim x categories %v, want %v", got, want)
	}
	if !strings.Contains(sim.X.Label.Text, "nominal") {
		t.Errorf("x label %q does not say the rates are nominal", sim.X.Label.Text)
	}
	want := []string{"modify in place (every strategy, dots)", "re-register, strategy=cas", "re-register, strategy=mutex", "1 competitor", "2 competitors",
		"whiskers: 95% Wilson interval from the counts"}
	if got := legendLabels(sim); !slices.Equal(got, want) {
		t.Errorf("sim legend %q, want %q", got, want)
	}
	if sim.Y.Scale != (plot.LinearScale{}) && sim.Y.Scale != nil {
		t.Errorf("steals axis is %T, want linear: 0.1..0.6 spans no decade", sim.Y.Scale)
	}
	if len(sim.lines) != 1+2*2 {
		t.Fatalf("sim chart draws %d series, want modify dots + 2 strategies x 2 counts", len(sim.lines))
	}
	if mod := sim.lines[0]; len(mod.xs) != 14 || slices.Max(mod.ys) != 0 {
		t.Errorf("modify dots %v/%v, want 14 cases with 0 steals", mod.xs, mod.ys)
	}
	// Every re-register line starts from the no-competitor baseline and
	// rises with the rate; 2 competitors steal twice as much as 1.
	for i, l := range sim.lines[1:] {
		k := float64(i%2 + 1)
		if want := []float64{0, 0.1 * k, 0.2 * k, 0.3 * k}; !slices.EqualFunc(l.ys, want, func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }) {
			t.Errorf("re-register line %d: %v, want %v", i, l.ys, want)
		}
	}
	if !legendHas(perf, "modify in place") || !legendHas(perf, "re-register") || len(perf.lines) != 2 {
		t.Errorf("perf chart: legend %v, %d lines; want modify and re-register, one each", legendLabels(perf), len(perf.lines))
	}
}

func TestPlotRaceStealsAchieved(t *testing.T) {
	run := &runfile.Run{}
	for _, place := range []string{"same", "other"} {
		for _, mode := range []string{"modify", "reregister"} {
			name := fmt.Sprintf("Race/backend=sim/strategy=cas/mode=%s/competitors=0/rate=0/place=%s", mode, place)
			run.Results = append(run.Results, fixtures.CaseResult(name, 100, map[string]float64{"steals/op": 0}))
			for i, rate := range []string{"1000", "100000", "max"} {
				name := fmt.Sprintf("Race/backend=sim/strategy=cas/mode=%s/competitors=1/rate=%s/place=%s", mode, rate, place)
				s := 0.0
				if mode == "reregister" {
					s = []float64{1e-5, 1e-3, 0.4}[i]
				}
				run.Results = append(run.Results, fixtures.CaseResult(name, 100, map[string]float64{
					"steals/op": s, "steals-lo/op": s / 2, "steals-hi/op": s*2 + 1e-6,
					"rate-achieved/s": []float64{900, 80000, 2e6}[i],
				}))
			}
		}
	}
	chs, why := plotRaceSteals(data(run))
	if len(chs) != 2 {
		t.Fatalf("%d charts (%s), want one per place", len(chs), why)
	}
	if chs[0].stem != "race-steals-sim-other" || chs[1].stem != "race-steals-sim-same" {
		t.Errorf("stems %q, %q", chs[0].stem, chs[1].stem)
	}
	ch := chs[1]
	if !strings.Contains(ch.Title.Text, "competitor on the holder's CPU (time-sliced)") {
		t.Errorf("title %q does not say where the competitor ran", ch.Title.Text)
	}
	if ch.X.Scale != (plot.LogScale{}) || !strings.Contains(ch.X.Label.Text, "achieved") {
		t.Errorf("x axis %T %q, want achieved rates on a log axis", ch.X.Scale, ch.X.Label.Text)
	}
	rr := ch.lines[1]
	if !slices.Equal(rr.xs, []float64{900, 80000, 2e6}) {
		t.Errorf("re-register at x %v, want the achieved rates", rr.xs)
	}
	if rr.ivs[2].Lo != 0.2 || math.Abs(rr.ivs[2].Hi-0.8) > 1e-5 {
		t.Errorf("whisker %+v, want the case's Wilson interval", rr.ivs[2])
	}
	if ch.Y.Scale != (plot.LogScale{}) {
		t.Errorf("steals spanning 1e-5..0.4 on a %T axis, want log", ch.Y.Scale)
	}
	// Modify's zeros sit on the floor, labelled 0, rather than vanish.
	ticks := yLabels(ch)
	if ticks[len(ticks)-1].Label != "0" || ticks[len(ticks)-1].Value != ch.Y.Min {
		t.Errorf("y ticks %v: the floor is not labelled 0", ticks)
	}
	if !strings.Contains(ch.X.Label.Text, "no competitor: 0 steals/op") {
		t.Errorf("x label %q does not give the no-competitor cases", ch.X.Label.Text)
	}
}

func TestPlotRaceWindowPicksOnePerBackend(t *testing.T) {
	run := &runfile.Run{}
	for i, st := range []string{"cas", "linux", "mutex"} {
		for _, rate := range []string{"1000", "max"} {
			r := fixtures.CaseResult("Race/backend=sim/strategy="+st+"/mode=reregister/competitors=1/rate="+rate, 1000, nil)
			r.Window = &bench.Histogram{Count: 50, P50: float64(100 * (i + 1)), CDF: []bench.CDFPoint{{NS: 50, Fraction: 0.5}, {NS: 300, Fraction: 1}}}
			run.Results = append(run.Results, r)
		}
	}
	ch, why := plotRaceWindow(data(run))
	if ch == nil {
		t.Fatal(why)
	}
	if len(ch.legend) != 1 || !strings.HasPrefix(ch.legend[0].label, "sim, strategy=linux (median p50 of 3), 1 competitor at max") {
		t.Errorf("legend %v, want one sim line: the median strategy at max rate", ch.legend)
	}
}

func TestPlotOmitsMissingData(t *testing.T) {
	run := &runfile.Run{Results: []bench.Result{{Name: "Registers/backend=sim/policy=all", NsPerOp: 10, Metrics: map[string]float64{"writes/op": 6}}}}
	var log bytes.Buffer
	files, err := PlotAll(run, t.TempDir(), &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 { // registers-writes and registers-cost, PNG and SVG
		t.Errorf("wrote %v, want only the two registers charts", files)
	}
	for _, want := range []string{"plot update-cost: omitted: no Update results", "plot switch-cost: omitted: no Switch results"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("no note %q for an omitted chart: %s", want, log.String())
		}
	}
}

func TestPlotApplyWritesShowsEqualSeries(t *testing.T) {
	run := &runfile.Run{}
	for _, pol := range []string{"eager", "lazy"} {
		for _, n := range []int{1, 4, 16} {
			name := fmt.Sprintf("Apply/policy=%s/threads=%d", pol, n)
			run.Results = append(run.Results, fixtures.CaseResult(name, 1000, map[string]float64{"writes/op": float64(5 * n), "ns/thread": 100}))
		}
	}
	ch, why := plotApplyWrites(data(run))
	if ch == nil {
		t.Fatal(why)
	}
	if len(ch.lines) != 1 || !strings.Contains(ch.lines[0].label, "eager") || !strings.Contains(ch.lines[0].label, "lazy") || !strings.Contains(ch.lines[0].label, "identical") {
		t.Errorf("lines %d, legend %q: want one line naming both identical policies, none hidden", len(ch.lines), legendLabels(ch))
	}
	if !strings.Contains(ch.Title.Text, "set+modify+clear") {
		t.Errorf("title %q does not say what one value counts", ch.Title.Text)
	}
	if cost, _ := plotApplyCost(data(run)); !strings.Contains(cost.Title.Text, "per change per thread") {
		t.Errorf("apply-cost title %q does not say it is per change per thread", cost.Title.Text)
	}
}

func TestPlotScalingMarksVCPUs(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	for _, st := range []string{"cas", "mutex"} {
		for _, g := range []int{1, 2, 4} {
			run.Results = append(run.Results, fixtures.Reps(fmt.Sprintf("Scaling/strategy=%s/mix=cpu/goroutines=%d", st, g), []float64{100, 110, 120}, nil)...)
		}
	}
	chs, why := plotScaling(data(run))
	if len(chs) != 1 {
		t.Fatalf("%d charts: %s", len(chs), why)
	}
	ch := chs[0]
	if ch.stem != "scaling-throughput-cpu" {
		t.Errorf("stem %q", ch.stem)
	}
	if got := xLabels(ch); !slices.Equal(got, []string{"1", "2", "4\ntime-sliced"}) {
		t.Errorf("x labels %q, want 4 marked time-sliced on 2 vCPUs", got)
	}
	if !legendHas(ch, "2 vCPUs: more goroutines are time-sliced") {
		t.Errorf("legend %q does not mark the vCPU count", legendLabels(ch))
	}
	// The top of a linear axis carries a label.
	ticks := yLabels(ch)
	if top := ticks[len(ticks)-1].Value; math.Abs(top-ch.Y.Max) > 1e-6*ch.Y.Max {
		t.Errorf("axis max %v, last labelled tick %v", ch.Y.Max, top)
	}
}

func TestPlotTasksPerCPUCount(t *testing.T) {
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	for _, st := range []string{"legacy", "cas"} {
		for _, cpus := range []int{2, 256} {
			for _, n := range []int{16, 4096} {
				ns := 50.0 * float64(cpus) / 2
				if st == "legacy" {
					ns *= float64(n)
				}
				run.Results = append(run.Results, fixtures.CaseResult(fmt.Sprintf("Tasks/strategy=%s/tasks=%d/cpus=%d", st, n, cpus), ns, nil))
			}
		}
	}
	chs, _ := plotTasks(data(run))
	if len(chs) != 2 || chs[0].stem != "tasks-cost-cpus2" || chs[1].stem != "tasks-cost-cpus256" {
		t.Fatalf("charts %d, want one per CPU count", len(chs))
	}
	if !strings.Contains(chs[0].Title.Text, "2 CPUs (the host's count)") || !strings.Contains(chs[1].Title.Text, "256 simulated CPUs") {
		t.Errorf("titles %q, %q do not say which CPU count is which", chs[0].Title.Text, chs[1].Title.Text)
	}
	ch, why := plotTasksCPUs(data(run))
	if ch == nil {
		t.Fatal(why)
	}
	if len(ch.lines) != 2 || !slices.Equal(ch.lines[0].xs, []float64{2, 256}) {
		t.Errorf("cost-vs-CPUs lines %d, xs %v", len(ch.lines), ch.lines[0].xs)
	}
}

func TestPlotSwitch(t *testing.T) {
	d := data(fixtures.SwitchRun())
	ch, why := plotSwitchCost(d)
	if ch == nil {
		t.Fatal(why)
	}
	if len(ch.lines) != 3 || !legendHas(ch, "perf bench sched pipe (no breakpoints)") {
		t.Errorf("legend %q: want perf, ptrace and the perf bench anchor", legendLabels(ch))
	}
	if !legendHas(ch, "whiskers: 95% interval of the median") {
		t.Errorf("no whiskers over 6 runs: %q", legendLabels(ch))
	}
	for _, unit := range []string{"writes/switch", "lost/op"} {
		ch, why := plotSwitchModel(unit, "y", "t")(d)
		if ch == nil {
			t.Fatal(why)
		}
		want := 4
		if unit == "lost/op" {
			want = 2 // eager, changed and lazy-percpu lose nothing: one line naming all three
			if l := ch.lines[0].label; !strings.Contains(l, "eager") || !strings.Contains(l, "lazy-percpu") || !strings.Contains(l, "identical") {
				t.Errorf("merged line %q", l)
			}
		}
		if len(ch.lines) != want || !slices.Equal(ch.lines[0].xs, []float64{2, 8, 64}) {
			t.Errorf("%s: %d lines over %v, want %d over the CPU counts", unit, len(ch.lines), ch.lines[0].xs, want)
		}
	}
}
