package charts

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"bpbench/bench"
	"bpbench/runfile"
	"bpbench/stats"
)

// ScalingStem is the file stem of one mix's scaling chart.
func ScalingStem(mix string) string {
	if mix == "" {
		return "scaling-throughput"
	}
	return "scaling-throughput-" + mix
}

// TasksStem is the file stem of one CPU count's tasks chart.
func TasksStem(cpus string) string {
	if cpus == "" {
		return "tasks-cost"
	}
	return "tasks-cost-cpus" + cpus
}

// plotScaling draws throughput against goroutines, one chart per mix,
// marking the vCPU count: goroutines beyond it are time-sliced.
func plotScaling(d *plotData) ([]*chart, string) {
	cases := runfile.Family(d.all, "Scaling")
	var out []*chart
	for _, mix := range runfile.ParamValues(cases, bench.ParamMix) {
		series, cats := seriesBy(runfile.Subset(cases, bench.ParamMix, mix), "goroutines", tputOf, true)
		if len(series) == 0 {
			continue
		}
		labels := make([]string, len(cats))
		vx := -1.0
		for i, g := range cats {
			labels[i] = g
			n, err := strconv.Atoi(g)
			if err == nil && d.ncpu > 0 && n > d.ncpu {
				labels[i] = g + "\ntime-sliced"
			}
			if err == nil && n == d.ncpu {
				vx = float64(i)
			}
		}
		title := "Reserve+release throughput vs goroutines, per alloc strategy (all goroutines together)"
		if mix != "" {
			title += ", mix=" + mix
		}
		ch := lineChart(lineOpts{
			title:  title,
			xlabel: "goroutines reserving and releasing",
			ylabel: "operations per second, all goroutines",
			xTicks: labels,
			yFmt:   siTick,
		}, series)
		if vx >= 0 {
			v := rule{at: vx, vertical: true, style: draw.LineStyle{Color: color.Gray{Y: 60}, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}}
			ch.Add(v)
			ch.addLegend(fmt.Sprintf("%d vCPUs: more goroutines are time-sliced", d.ncpu), v)
		}
		ch.stem = ScalingStem(mix)
		out = append(out, ch)
	}
	if len(out) == 0 {
		return nil, "no Scaling results with goroutines="
	}
	return out, ""
}

// tputOf is a scaling case's throughput interval.
func tputOf(c *runfile.Case) (stats.Interval, bool) {
	iv := runfile.TputIv(c)
	return iv, iv.Median > 0
}

// cpusTitle names a CPU count in a chart title.
func cpusTitle(cpus string, host int) string {
	switch {
	case cpus == "":
		return ""
	case cpus == strconv.Itoa(host):
		return ", " + cpus + " CPUs (the host's count)"
	}
	return ", " + cpus + " simulated CPUs"
}

// plotTasks draws reservation cost against live tasks, one chart per CPU
// count the run has.
func plotTasks(d *plotData) ([]*chart, string) {
	cases := runfile.Family(d.all, "Tasks")
	var out []*chart
	for _, cpus := range runfile.ParamValues(cases, bench.ParamCPUs) {
		series, _ := seriesBy(runfile.Subset(cases, bench.ParamCPUs, cpus), "tasks", metricIv(bench.UnitNsPerOp), false)
		if len(series) == 0 {
			continue
		}
		ch := lineChart(lineOpts{
			title:  "Per-reservation cost vs live tasks, per strategy" + cpusTitle(cpus, d.ncpu),
			xlabel: "live tasks holding breakpoints",
			ylabel: "time per reserve+release",
			logX:   true, logY: true,
			yFmt: nsTick,
		}, series)
		ch.stem = TasksStem(cpus)
		out = append(out, ch)
	}
	if len(out) == 0 {
		return nil, "no Tasks results with tasks="
	}
	return out, ""
}

// plotTasksCPUs draws reservation cost at the host's CPU count and at
// the simulated ones, at the most live tasks, as dots per strategy on a
// categorical axis: two CPU counts joined by a line on a log axis would
// draw a trend between them that nobody measured.
func plotTasksCPUs(d *plotData) (*chart, string) {
	cases := runfile.Family(d.all, "Tasks")
	cpus := runfile.ParamValues(cases, bench.ParamCPUs)
	if len(cpus) < 2 || cpus[0] == "" {
		return nil, "Tasks ran at one CPU count (no cpus= parameter with several values)"
	}
	tasks := runfile.ParamValues(cases, bench.ParamTasks)
	top := tasks[len(tasks)-1]
	at := runfile.Subset(cases, bench.ParamTasks, top)
	var groups []string
	for _, c := range cpus {
		if c == strconv.Itoa(d.ncpu) {
			groups = append(groups, c+" CPUs (the host)")
		} else {
			groups = append(groups, c+" CPUs (simulated)")
		}
	}
	var series []barSeries
	for _, st := range runfile.ParamValues(at, bench.ParamStrategy) {
		s := barSeries{label: "strategy=" + st}
		for _, c := range cpus {
			v, iv := math.NaN(), stats.Interval{}
			for _, cs := range at {
				if p := bench.NameParams(cs.Name); p[bench.ParamStrategy] == st && p[bench.ParamCPUs] == c {
					iv = runfile.IvOf(cs, bench.UnitNsPerOp)
					v = iv.Median
				}
			}
			s.vals, s.ivs = append(s.vals, v), append(s.ivs, iv)
		}
		series = append(series, s)
	}
	if len(series) == 0 {
		return nil, "no Tasks results with cpus= at tasks=" + top
	}
	return groupedBars(barOpts{
		title:  fmt.Sprintf("Per-reservation cost at %s live tasks, at the host's CPU count and simulated ones, per strategy", top),
		ylabel: "time per reserve+release",
		logY:   true,
		yFmt:   nsTick,
	}, groups, series), ""
}
