package charts

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

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
var optionalStems = []string{"tasks-cpus", "switch-cost", "switch-model-writes", "switch-model-lost", "debuggers-writes"}

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
		if !legendHas(ch, "no whiskers: each point is a single value, with no interval (--count 3 or more gives one)") {
			t.Errorf("legend %q does not say the dots have no interval", legendLabels(ch))
		}
	})
}

// raceRun is a sim race sweep: competitors on either CPU at paced rates
// and unlimited, and the cases without a competitor (place=none).
func raceRun() *runfile.Run {
	run := &runfile.Run{}
	for _, mode := range []string{"modify", "reregister"} {
		name := fmt.Sprintf("Race/backend=sim/strategy=cas/mode=%s/competitors=0/rate=0/place=none", mode)
		run.Results = append(run.Results, fixtures.CaseResult(name, 100, map[string]float64{"steals/op": 0, "rate-achieved/s": 0}))
	}
	for _, place := range []string{"same", "other"} {
		for _, mode := range []string{"modify", "reregister"} {
			for i, rate := range []string{"1000", "100000", "max"} {
				name := fmt.Sprintf("Race/backend=sim/strategy=cas/mode=%s/competitors=1/rate=%s/place=%s", mode, rate, place)
				s := 0.0
				if mode == "reregister" {
					s = []float64{1e-5, 1e-3, 0.4}[i]
				}
				r := fixtures.CaseResult(name, 100, map[string]float64{
					"steals/op": s, "steals-lo/op": s / 2, "steals-hi/op": s*2 + 1e-6,
					"rate-achieved/s": []float64{900, 80000, 2e6}[i],
				})
				r.Window = &bench.Histogram{Count: 50, P50: 100, CDF: []bench.CDFPoint{{NS: 50, Fraction: 0.5}, {NS: 300, Fraction: 0.999}, {NS: 5e7, Fraction: 1}}}
				if place == "same" {
					r.Window.CDF = []bench.CDFPoint{{NS: 40, Fraction: 0.5}, {NS: 200, Fraction: 1}}
				}
				run.Results = append(run.Results, r)
			}
		}
	}
	return run
}

func TestPlotRaceSteals(t *testing.T) {
	chs, why := plotRaceSteals(data(raceRun()))
	if len(chs) != 2 {
		t.Fatalf("%d charts (%s), want one per place with a competitor, none for place=none", len(chs), why)
	}
	if chs[0].stem != "race-steals-sim-other" || chs[1].stem != "race-steals-sim-same" {
		t.Errorf("stems %q, %q", chs[0].stem, chs[1].stem)
	}
	ch := chs[1]
	if !strings.Contains(ch.Title.Text, "competitor on the holder's CPU (time-sliced)") {
		t.Errorf("title %q does not say where the competitor ran", ch.Title.Text)
	}
	other := chs[0]
	if strings.Contains(other.X.Label.Text, "on the holder's CPU)") && !strings.Contains(other.X.Label.Text, "asks for a slot on the holder's CPU") {
		t.Errorf("x label %q places the competitor on the holder's CPU under a title that says the other", other.X.Label.Text)
	}
	if ch.X.Scale != (plot.LogScale{}) || !strings.Contains(ch.X.Label.Text, "achieved") || !strings.Contains(ch.X.Label.Text, "with no competitor 0 steals/op") {
		t.Errorf("x axis %T %q, want achieved rates on a log axis and the no-competitor baseline", ch.X.Scale, ch.X.Label.Text)
	}
	// The paced rates make the line; the unlimited competitor's point,
	// at a rate reached rather than chosen, stands apart.
	var line, dots *lineSeries
	for i, l := range ch.lines {
		if l.style != nil && l.style.width > 0 {
			line = &ch.lines[i]
		} else if len(l.xs) == 1 && l.xs[0] == 2e6 {
			dots = &ch.lines[i]
		}
	}
	if line == nil || !slices.Equal(line.xs, []float64{900, 80000}) {
		t.Fatalf("re-register line %+v, want the two paced rates", line)
	}
	if dots == nil || dots.ivs[0].Lo != 0.2 || math.Abs(dots.ivs[0].Hi-0.8) > 1e-5 {
		t.Errorf("unlimited point %+v, want its own unjoined marker with the case's Wilson interval", dots)
	}
	if !legendHas(ch, "unjoined markers: unlimited competitors (rate=max), at the rate they reached") {
		t.Errorf("legend %q does not explain the unjoined markers", legendLabels(ch))
	}
	if ch.Y.Scale != (plot.LogScale{}) {
		t.Errorf("steals spanning 1e-5..0.4 on a %T axis, want log", ch.Y.Scale)
	}
	// Modify's zeros sit below the log axis' break, with no tick that
	// pretends they are a value.
	for _, tk := range yLabels(ch) {
		if tk.Label == "0" || tk.Value < 1e-6*(1-1e-9) { // the lowest whisker, 5e-6, sits in the 1e-6 decade
			t.Errorf("y tick %+v below the break or labelled 0", tk)
		}
	}
	if !legendHas(ch, "zero (below the dashed break: a log scale has no 0)") {
		t.Errorf("legend %q does not say how zeros are drawn", legendLabels(ch))
	}
}

// TestPlotRaceWindow: per backend, the re-register case that lost most,
// on the other CPU, with an axis that ends near its p99.9, not its max.
func TestPlotRaceWindow(t *testing.T) {
	ch, why := plotRaceWindow(data(raceRun()))
	if ch == nil {
		t.Fatal(why)
	}
	if len(ch.legend) != 1 || !strings.HasPrefix(ch.legend[0].label, "sim, strategy=cas, 1 competitor at max, place=other, 0.4 steals/op") {
		t.Errorf("legend %q, want the sim case that lost most", legendLabels(ch))
	}
	if ch.X.Max > 1e4 {
		t.Errorf("x axis to %v ns for windows whose p99.9 is 300 ns", ch.X.Max)
	}
}

func TestWrapTitle(t *testing.T) {
	width := func(s string) vg.Length { return vg.Length(len(s)) }
	title := "Debug registers through ptrace (backend=ptrace): slots lost per update vs competitor rate, competitor on the other CPU (parallel)"
	lines := wrapTitle(title, width, 80)
	if len(lines) != 2 || strings.Join(lines, " ") != title {
		t.Fatalf("wrapped %q", lines)
	}
	for _, l := range lines {
		if len(l) > 80 {
			t.Errorf("line %q wider than 80", l)
		}
	}
	if got := wrapTitle("short", width, 80); !slices.Equal(got, []string{"short"}) {
		t.Errorf("a title that fits was wrapped: %q", got)
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
			run.Results = append(run.Results, fixtures.CaseResult(name, 1000, map[string]float64{"writes/cycle": float64(5 * n), "ns/change-thread": 100}))
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
			run.Results = append(run.Results, fixtures.Reps(fmt.Sprintf("Scaling/strategy=%s/mix=cpu/goroutines=%d", st, g), []float64{100, 110, 120}, func(i int) map[string]float64 {
				return map[string]float64{"ops/s": 1e7 * float64(g) * (1 + 0.1*float64(i))}
			})...)
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
	if strings.Contains(chs[0].Title.Text, "legacy") {
		t.Errorf("title %q names a strategy: strategies are anyone's", chs[0].Title.Text)
	}
	// Two CPU counts are two categories of dots, not a line on log axes.
	ch, why := plotTasksCPUs(data(run))
	if ch == nil {
		t.Fatal(why)
	}
	if got := xLabels(ch); !slices.Equal(got, []string{"2 CPUs (the host)", "256 CPUs (simulated)"}) {
		t.Errorf("cost-vs-CPUs categories %q", got)
	}
	if b := barsOf(t, ch); len(b) != 2 || !b[0].dots || len(b[0].series.vals) != 2 {
		t.Errorf("cost-vs-CPUs: %d series, want a dot per strategy and CPU count", len(b))
	}
}

func TestPlotSwitch(t *testing.T) {
	d := data(fixtures.SwitchRun())
	ch, why := plotSwitchCost(d)
	if ch == nil {
		t.Fatal(why)
	}
	// perf and ptrace at 2 threads, each from its own 0-breakpoint round
	// trip, and the perf bench anchor, which says why it sits apart.
	if len(ch.lines) != 3 || ch.lines[0].xs[0] != 0 || ch.lines[1].xs[0] != 0 {
		t.Errorf("lines %d, want 3 starting at B=0: %+v", len(ch.lines), ch.lines)
	}
	if !legendHas(ch, "backend=perf") || !legendHas(ch, "perf bench sched pipe, no breakpoints: two processes, so every switch also changes address space") {
		t.Errorf("legend %q: want the backends and the anchor with why it differs", legendLabels(ch))
	}
	if !legendHas(ch, "whiskers: 95% interval of the median") {
		t.Errorf("no whiskers over 6 runs: %q", legendLabels(ch))
	}
	writes, _ := plotSwitchModel("writes/switch", "y", "t")(d)
	// A colour per policy: four entries, not one per line.
	for _, pol := range []string{"eager", "changed", "lazy-percpu", "lazy-global"} {
		if !legendHas(writes, "policy="+pol) {
			t.Errorf("writes legend %q lacks policy=%s", legendLabels(writes), pol)
		}
	}
	lost, _ := plotSwitchModel("lost/op", "y", "t")(d)
	if len(lost.lines) != 2 || !slices.Equal(lost.lines[0].xs, []float64{2, 8, 64}) {
		t.Fatalf("lost: %d lines, want the three policies that lose nothing folded into one, and lazy-global", len(lost.lines))
	}
	if !legendHas(lost, "policy=eager, changed, lazy-percpu: 3 lines, all 0") || !legendHas(lost, "policy=lazy-global") {
		t.Errorf("lost legend %q: the policies that lose nothing are not named", legendLabels(lost))
	}
}

// TestPlotDebuggers draws one chart per real debugger from a real run: a
// line per action for what it wrote and one for write-changed.
func TestPlotDebuggers(t *testing.T) {
	chs, why := plotDebuggers(newPlotData(fixtures.DebuggersRun(t)))
	if len(chs) != 2 {
		t.Fatalf("%d charts (%s), want gdb and dlv", len(chs), why)
	}
	for _, ch := range chs {
		if !strings.HasPrefix(ch.stem, "debuggers-writes-") {
			t.Errorf("stem %q", ch.stem)
		}
		for _, want := range []string{"action=fill", "write-changed for the same states"} {
			if !legendHas(ch, want) {
				t.Errorf("%s: legend lacks %q: %v", ch.stem, want, legendLabels(ch))
			}
		}
		if _, err := ch.render(chartW, chartH, "png"); err != nil {
			t.Errorf("%s: %v", ch.stem, err)
		}
	}
	if chs, _ := plotDebuggers(newPlotData(&runfile.Run{})); chs != nil {
		t.Error("charts from a run without debuggers")
	}
}
