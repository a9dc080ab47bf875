package charts

import (
	"image/color"
	"strings"

	"gonum.org/v1/plot/vg"

	"bpbench/runfile"
)

// plotSwitchCost draws the real kernel's context-switch round trip against
// the breakpoints installed, a line per backend and number of threads
// holding them, with perf bench sched pipe as a dashed reference.
func plotSwitchCost(d *plotData) (*chart, string) {
	var cases []*runfile.Case
	var anchor *runfile.Case
	for _, c := range runfile.Family(d.all, "Switch") {
		if runfile.NameParams(c.Name)["backend"] == "perfbench" {
			anchor = c
			continue
		}
		cases = append(cases, c)
	}
	series, _ := seriesBy(cases, "breakpoints", metricIv("usecs/op"), false)
	if len(series) == 0 {
		return nil, "no Switch results with breakpoints= and usecs/op"
	}
	for i := range series {
		series[i].label = strings.ReplaceAll(series[i].label, "threads-with=", "breakpoints on threads: ")
	}
	if anchor != nil {
		iv := runfile.IvOf(anchor, "usecs/op")
		var xs []float64
		for _, s := range series {
			xs = append(xs, s.xs...)
		}
		lo, hi := xs[0], xs[0]
		for _, x := range xs {
			lo, hi = min(lo, x), max(hi, x)
		}
		series = append(series, lineSeries{
			label: "perf bench sched pipe (no breakpoints)",
			xs:    []float64{lo, hi}, ys: []float64{iv.Median, iv.Median},
			style: &lineStyle{color: color.Gray{Y: 90}, width: vg.Points(1.5), dashes: []vg.Length{vg.Points(5), vg.Points(3)}},
		})
	}
	return lineChart(lineOpts{
		title:  "Context-switch round trip (two switches, threads on one CPU) vs breakpoints installed, per backend",
		xlabel: "breakpoints per thread that has them (B)",
		ylabel: "µs per round trip (usecs/op)",
	}, series), ""
}

// plotSwitchModel draws one figure of the switch-policy model against the
// simulated CPU count, a line per policy (and tasks, debugged).
func plotSwitchModel(unit, ylabel, title string) func(*plotData) (*chart, string) {
	return func(d *plotData) (*chart, string) {
		series, _ := seriesBy(runfile.Family(d.all, "SwitchModel"), "cpus", metricIv(unit), false)
		if len(series) == 0 {
			return nil, "no SwitchModel results with cpus= and " + unit
		}
		return lineChart(lineOpts{
			title:     title,
			xlabel:    "simulated CPUs",
			ylabel:    ylabel,
			logX:      spansDecades(series, false, 10),
			logY:      spansDecades(series, true, 100),
			zeroFloor: true,
		}, series), ""
	}
}
