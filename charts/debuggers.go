package charts

import (
	"fmt"
	"strings"

	"bpbench/bench"
	"bpbench/debuggers"
	"bpbench/runfile"
)

// plotDebuggers draws, per real debugger, the debug-register writes it
// made per action against the target's threads (solid), beside what
// write-changed would write for the same register states (dashed): a
// colour per action. Both axes are logarithmic; a zero (write-changed on
// a hit that changes nothing) sits below the dashed break.
func plotDebuggers(d *plotData) ([]*chart, string) {
	cases := runfile.Family(d.all, "Debugger")
	var out []*chart
	for _, dbg := range runfile.ParamValues(cases, "debugger") {
		mine := runfile.Subset(cases, "debugger", dbg)
		var series []lineSeries
		for _, src := range []struct{ unit, label string }{
			{debuggers.MetricDRWrites, "writes=" + dbg},
			{debuggers.PolicyMetric("changed"), "writes=write-changed"},
		} {
			ss, _ := seriesBy(mine, bench.ParamThreads, metricIv(src.unit), false)
			for i := range ss {
				ss[i].label += " " + src.label
			}
			series = append(series, ss...)
		}
		if len(series) == 0 {
			continue
		}
		series, legend := keyedLines(series, "action")
		words := strings.NewReplacer("writes="+dbg, dbg+"'s writes", "writes=write-changed", "write-changed for the same states")
		for i := range legend {
			legend[i].label = words.Replace(legend[i].label)
		}
		for i := range series {
			series[i].label = words.Replace(series[i].label)
		}
		ch := withLegend(lineOpts{
			title:     fmt.Sprintf("Debug-register writes per watchpoint action, %s, vs target threads (counted with strace; write-changed replayed)", dbg),
			xlabel:    "threads of the target",
			ylabel:    "debug-register writes per action",
			logX:      true,
			logY:      true,
			zeroFloor: true,
		}, series, legend)
		ch.stem = "debuggers-writes-" + dbg
		out = append(out, ch)
	}
	if len(out) == 0 {
		return nil, "no Debugger results"
	}
	return out, ""
}
