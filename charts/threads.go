package charts

import (
	"strings"

	"gonum.org/v1/plot/vg"

	"bpbench/bench"
	"bpbench/runfile"
)

// policyLabel says what an apply policy does, for the legend.
func policyLabel(label string) string {
	switch label {
	case "policy=eager":
		return "eager: stop, write and resume every thread at once"
	case "policy=lazy":
		return "lazy: write each thread's registers when it next resumes"
	}
	return label
}

// threadSeries draws a metric of a multi-threaded family against threads=,
// one line per policy.
func threadSeries(d *plotData, fam, unit string) []lineSeries {
	series, _ := seriesBy(runfile.Family(d.all, fam), "threads", metricIv(unit), false)
	for i := range series {
		parts := strings.Split(series[i].label, " ")
		for j, p := range parts {
			parts[j] = policyLabel(p)
		}
		series[i].label = strings.Join(parts, " ")
	}
	return series
}

// threadChart draws series on log-log axes where they span decades; zeros
// sit on the log axis' floor, labelled 0.
func threadChart(title, ylabel string, yFmt func(float64) string, series []lineSeries) *chart {
	return lineChart(lineOpts{
		title:     title,
		xlabel:    "threads of the tracee",
		ylabel:    ylabel,
		logX:      spansDecades(series, false, 10),
		logY:      spansDecades(series, true, 100),
		zeroFloor: true,
		yFmt:      yFmt,
	}, series)
}

func plotApplyWrites(d *plotData) (*chart, string) {
	return applyThreadChart(d, bench.MetricWritesPerCycle,
		"Debug-register writes per set+modify+clear (three changes, all threads) vs tracee threads: eager vs lazy",
		"register writes per set+modify+clear", nil)
}

func plotApplyCost(d *plotData) (*chart, string) {
	return applyThreadChart(d, bench.MetricNsPerChangeThread,
		"Cost per change per thread (a set, a modify or a clear, divided by threads) vs tracee threads: eager vs lazy",
		"time per change per thread", nsTick)
}

// applyThreadChart plots the Apply metric unit against tracee threads;
// without such results it says why instead.
func applyThreadChart(d *plotData, unit, title, ylabel string, yFmt func(float64) string) (*chart, string) {
	s := threadSeries(d, "Apply", unit)
	if len(s) == 0 {
		return nil, "no Apply results with threads= and " + unit
	}
	return threadChart(title, ylabel, yFmt, s), ""
}

// plotBlindWindow draws the blind window from the request to the last
// thread armed (solid) and, where the run has it, from the first to the
// last thread armed (dashed).
func plotBlindWindow(d *plotData) (*chart, string) {
	req := threadSeries(d, "BlindWindow", "blind-request-ns/p50")
	first := threadSeries(d, "BlindWindow", bench.MetricBlindP50)
	if len(req)+len(first) == 0 {
		return nil, "no BlindWindow results with threads= and blind-request-ns/p50 or blind-ns/p50"
	}
	var series []lineSeries
	title := "Blind window p50 (watchpoint not yet armed on every thread) vs tracee threads: eager vs lazy"
	ylabel := "blind window, p50"
	for i, s := range req {
		s.label += ", from the request"
		st := autoStyle(i)
		st.dashes = nil
		s.style = st
		series = append(series, s)
	}
	for i, s := range first {
		if len(req) > 0 {
			s.label += ", first to last thread armed"
			st := autoStyle(i)
			st.dashes, st.width = []vg.Length{vg.Points(4), vg.Points(3)}, vg.Points(1)
			s.style = st
		} else {
			title = "Blind window p50 (first to last thread armed) vs tracee threads: eager vs lazy"
			ylabel = "first to last thread armed, p50 (from the request: not in this run)"
		}
		series = append(series, s)
	}
	return threadChart(title, ylabel, nsTick, series), ""
}

func plotBlindMissed(d *plotData) (*chart, string) {
	s := threadSeries(d, "BlindWindow", bench.MetricMissed)
	if len(s) == 0 {
		return nil, "no BlindWindow results with threads= and missed/op"
	}
	return threadChart("Tracee writes missed per watchpoint set (all threads) vs tracee threads: eager vs lazy",
		"writes missed per watchpoint set", nil, s), ""
}
