package charts

import (
	"bpbench/bench"
	"bpbench/runfile"
)

// exclusionMode says what an Exclusion mode means, for the legend.
func exclusionMode(label string) string {
	switch label {
	case "mode=on":
		return "exclusion on: every reservation checks a global list under one lock"
	case "mode=off":
		return "exclusion off: the same allocator without the check"
	}
	return label
}

func plotExclusion(d *plotData) (*chart, string) {
	series, _ := seriesBy(runfile.Family(d.all, "Exclusion"), "tasks", metricIv(bench.UnitNsPerOp), false)
	if len(series) == 0 {
		return nil, "no Exclusion results with tasks="
	}
	for i := range series {
		series[i].label = exclusionMode(series[i].label)
	}
	return lineChart(lineOpts{
		title:  "Reservation cost with exclusive breakpoints on vs off, vs live tasks",
		xlabel: "live tasks",
		ylabel: "time per reservation",
		logX:   spansDecades(series, false, 10),
		logY:   spansDecades(series, true, 30),
		yFmt:   nsTick,
	}, series), ""
}
