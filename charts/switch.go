package charts

import (
	"image/color"
	"strings"

	"gonum.org/v1/plot/vg"

	"bpbench/bench"
	"bpbench/runfile"
)

// plotSwitchCost draws the real kernel's context-switch round trip against
// the breakpoints installed, a line per backend (colour) and number of
// threads holding them (dashes), each starting from the backend's round
// trip without breakpoints, with perf bench sched pipe as a reference.
func plotSwitchCost(d *plotData) (*chart, string) {
	var cases []*runfile.Case
	var anchor *runfile.Case
	zero := map[string]*runfile.Case{}
	for _, c := range runfile.Family(d.all, "Switch") {
		p := bench.NameParams(c.Name)
		switch {
		case p[bench.ParamBackend] == "perfbench":
			anchor = c
		case p[bench.ParamBreakpoints] == "0":
			zero[p[bench.ParamBackend]] = c
		default:
			cases = append(cases, c)
		}
	}
	series, _ := seriesBy(cases, bench.ParamBreakpoints, metricIv(bench.MetricUsecs), false)
	if len(series) == 0 {
		return nil, "no Switch results with breakpoints= and usecs/op"
	}
	// Every line starts at its backend's round trip without breakpoints:
	// the one case both thread counts share.
	for i, s := range series {
		z := zero[labelParams(s.label)[bench.ParamBackend]]
		if z == nil {
			continue
		}
		iv := runfile.IvOf(z, bench.MetricUsecs)
		series[i].xs = append([]float64{0}, s.xs...)
		series[i].ys = append([]float64{iv.Median}, s.ys...)
		series[i].ivs = append(append(series[i].ivs[:0:0], iv), s.ivs...)
	}
	series, legend := keyedLines(series, "backend")
	for i := range legend {
		if n, ok := strings.CutPrefix(legend[i].label, "threads-with="); ok {
			legend[i].label = "breakpoints on " + n + " of the 2 threads"
		}
	}
	if anchor != nil {
		iv := runfile.IvOf(anchor, bench.MetricUsecs)
		lo, hi := 0.0, 0.0
		for _, s := range series {
			for _, x := range s.xs {
				hi = max(hi, x)
			}
		}
		series = append(series, lineSeries{
			label: "perf bench sched pipe, no breakpoints: two processes, so every switch also changes address space",
			xs:    []float64{lo, hi}, ys: []float64{iv.Median, iv.Median},
			style: &lineStyle{color: color.Gray{Y: 140}, width: vg.Points(3), dashes: []vg.Length{vg.Points(1), vg.Points(4)}},
		})
		if _, ok := anchor.Metric(bench.MetricThreadsUsecs); ok {
			ti := runfile.IvOf(anchor, bench.MetricThreadsUsecs)
			series = append(series, lineSeries{
				label: "perf bench sched pipe -T, no breakpoints: two threads of one process, as Go's ping-pong",
				xs:    []float64{lo, hi}, ys: []float64{ti.Median, ti.Median},
				style: &lineStyle{color: color.Gray{Y: 60}, width: vg.Points(2), dashes: []vg.Length{vg.Points(6), vg.Points(3), vg.Points(1), vg.Points(3)}},
			})
		}
	}
	return withLegend(lineOpts{
		title:  "Context-switch round trip (two switches, two threads of one process on one CPU) vs breakpoints installed",
		xlabel: "breakpoints per thread that has them (B)",
		ylabel: "µs per round trip (usecs/op)",
	}, series, legend), ""
}

// plotSwitchModel draws one figure of the switch-policy model against the
// simulated CPU count: a colour per policy, a dash pattern per task and
// debugged count, and the policies whose lines are identical (no loss,
// say) folded into one line that names them.
func plotSwitchModel(unit, ylabel, title string) func(*plotData) (*chart, string) {
	return func(d *plotData) (*chart, string) {
		series, _ := seriesBy(runfile.Family(d.all, "SwitchModel"), "cpus", metricIv(unit), false)
		if len(series) == 0 {
			return nil, "no SwitchModel results with cpus= and " + unit
		}
		series, legend := keyedLines(series, "policy")
		return withLegend(lineOpts{
			title:     title,
			xlabel:    "simulated CPUs",
			ylabel:    ylabel,
			logX:      spansDecades(series, false, 10),
			logY:      spansDecades(series, true, 100),
			zeroFloor: true,
		}, series, legend), ""
	}
}
