package charts

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gonum.org/v1/plot/vg"

	"bpbench/bench"
	"bpbench/runfile"
)

// plotData is what every chart is drawn from: the run's case summaries
// and the machine's vCPU count (marked where goroutines exceed it).
type plotData struct {
	all  []*runfile.Case
	ncpu int
}

func newPlotData(run *runfile.Run) *plotData {
	return &plotData{all: runfile.Summarize(run), ncpu: run.Machine.NumCPU}
}

// chartSpec is one kind of chart: the stem of its file and how to draw it
// from the run's case summaries. build returns a reason instead of charts
// when the data it needs is absent; a chart it returns without a stem of
// its own takes the spec's.
type chartSpec struct {
	stem  string
	build func(d *plotData) ([]*chart, string)
}

// charts lists every chart bpbench draws, in report order. Each family's
// charts live in their own file (plot_update.go, plot_race.go,
// plot_scaling.go, plot_threads.go, plot_switch.go) around the shared
// drawing in plot_draw.go.
var specs = []chartSpec{
	{"update-cost", one(plotUpdate)},
	{"race-steals", plotRaceSteals},
	{"race-window-cdf", one(plotRaceWindow)},
	{"scaling-throughput", plotScaling},
	{"tasks-cost", plotTasks},
	{"tasks-cpus", one(plotTasksCPUs)},
	{"registers-writes", one(plotRegisters(bench.MetricWrites, "register writes per update", "Register writes per update, per register-writing policy and backend"))},
	{"registers-cost", one(plotRegisters(bench.UnitNsPerOp, "time per update", "Update cost per register-writing policy and backend"))},
	{"kernel-vs-perf", one(plotKernel)},
	{"exclusion-cost", one(plotExclusion)},
	{"apply-writes", one(plotApplyWrites)},
	{"apply-cost", one(plotApplyCost)},
	{"blindwindow", one(plotBlindWindow)},
	{"blindwindow-missed", one(plotBlindMissed)},
	{"switch-cost", one(plotSwitchCost)},
	{"switch-model-writes", one(plotSwitchModel(bench.MetricWritesPerSwitch, "register writes per context switch", "Switch model: debug-register writes per context switch vs CPUs, per policy"))},
	{"switch-model-lost", one(plotSwitchModel(bench.MetricLost, "breakpoints lost per operation", "Switch model: breakpoints lost per operation vs CPUs, per policy"))},
	{"debuggers-writes", plotDebuggers},
}

// one adapts a builder of a single chart to chartSpec.build.
func one(f func(*plotData) (*chart, string)) func(*plotData) ([]*chart, string) {
	return func(d *plotData) ([]*chart, string) {
		c, why := f(d)
		if c == nil {
			return nil, why
		}
		return []*chart{c}, ""
	}
}

// chartW and chartH are the drawing size of every chart.
var chartW, chartH = 9 * vg.Inch, 5.5 * vg.Inch

// PlotAll draws every chart whose data run holds into dir as PNG and SVG,
// noting on log the ones it omits, and returns the files written.
func PlotAll(run *runfile.Run, dir string, log io.Writer) ([]string, error) {
	d := newPlotData(run)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var files []string
	for _, cs := range specs {
		chs, why := cs.build(d)
		if len(chs) == 0 {
			fmt.Fprintf(log, "plot %s: omitted: %s\n", cs.stem, why)
			continue
		}
		for _, ch := range chs {
			stem := ch.stem
			if stem == "" {
				stem = cs.stem
			}
			fs, err := writeChart(dir, stem, ch)
			files = append(files, fs...)
			if err != nil {
				return files, err
			}
		}
	}
	return files, nil
}

// writeChart renders ch into dir as stem.png and stem.svg, each written
// atomically, and returns the files written.
func writeChart(dir, stem string, ch *chart) ([]string, error) {
	var files []string
	for _, format := range []string{"png", "svg"} {
		b, err := ch.render(chartW, chartH, format)
		if err != nil {
			return files, fmt.Errorf("plot %s.%s: %w", stem, format, err)
		}
		path := filepath.Join(dir, stem+"."+format)
		if err := runfile.WriteFileAtomic(path, b); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

// Stems returns the file stem of every chart family, in drawing order.
// A family drawn once per backend, placement or CPU count adds a suffix
// to its stem (see RaceStealsStem).
func Stems() []string {
	out := make([]string, len(specs))
	for i, cs := range specs {
		out[i] = cs.stem
	}
	return out
}
