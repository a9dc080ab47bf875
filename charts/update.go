package charts

import (
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot/vg"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// updateOps is the presentation order of Update's op parameter, with the
// legend label of each.
var updateOps = []struct{ op, label string }{
	{"modify", "modify in place"},
	{"disable-enable", "disable, change, enable"},
	{"reregister", "re-register (release + reserve)"},
}

// backendTitle names a backend in chart titles.
func backendTitle(be string) string {
	switch be {
	case "sim":
		return "Simulated registers (backend=sim)"
	case "ptrace":
		return "Debug registers through ptrace (backend=ptrace)"
	case "perf":
		return "perf_event breakpoints (backend=perf)"
	}
	return "backend=" + be
}

// plotUpdate draws every backend's (and simulated strategy's) update cost
// per op: dots on a log axis, since ptrace costs microseconds and the
// simulator tens of nanoseconds, whiskers the median's interval.
func plotUpdate(d *plotData) (*chart, string) {
	cases := runfile.Family(d.all, "Update")
	if len(cases) == 0 {
		return nil, "no Update results"
	}
	var groups []string
	ops := append([]struct{ op, label string }(nil), updateOps...)
	type key struct{ g, op string }
	at := map[key]*runfile.Case{}
	for _, c := range cases {
		p := bench.NameParams(c.Name)
		// One group per backend, and per strategy where the backend has
		// several (the simulator).
		g := p[bench.ParamBackend]
		if s := p[bench.ParamStrategy]; s != "" {
			g += "/" + s
		}
		if indexOf(groups, g) < 0 {
			groups = append(groups, g)
		}
		if !slices.ContainsFunc(ops, func(o struct{ op, label string }) bool { return o.op == p[bench.ParamOp] }) {
			ops = append(ops, struct{ op, label string }{p[bench.ParamOp], p[bench.ParamOp]})
		}
		at[key{g, p[bench.ParamOp]}] = c
	}
	var series []barSeries
	for _, op := range ops {
		s := barSeries{label: op.label}
		present := false
		for _, g := range groups {
			v, iv := math.NaN(), stats.Interval{}
			if c := at[key{g, op.op}]; c != nil {
				iv = runfile.IvOf(c, bench.UnitNsPerOp)
				v, present = iv.Median, true
			}
			s.vals, s.ivs = append(s.vals, v), append(s.ivs, iv)
		}
		if present {
			series = append(series, s)
		}
	}
	return groupedBars(barOpts{
		title:  "Breakpoint update cost per backend: modify in place vs disable-enable vs re-register (median per update)",
		ylabel: "time per update",
		logY:   true,
		yFmt:   nsTick,
	}, groups, series), ""
}

// registersPolicy names a Registers policy in the legend.
func registersPolicy(p string) string {
	switch p {
	case "all":
		return "write-all (policy=all)"
	case "changed":
		return "write-changed (policy=changed)"
	}
	return "policy=" + p
}

// plotRegisters compares policies per backend on one figure: bars from 0,
// or dots on a log axis where the backends' costs span decades.
func plotRegisters(unit, ylabel, title string) func(*plotData) (*chart, string) {
	return func(d *plotData) (*chart, string) {
		cases := runfile.Family(d.all, "Registers")
		var groups, policies []string
		type key struct{ b, p string }
		at := map[key]stats.Interval{}
		for _, c := range cases {
			iv, ok := metricIv(unit)(c)
			if !ok {
				continue
			}
			p := bench.NameParams(c.Name)
			if indexOf(groups, p[bench.ParamBackend]) < 0 {
				groups = append(groups, p[bench.ParamBackend])
			}
			if indexOf(policies, p[bench.ParamPolicy]) < 0 {
				policies = append(policies, p[bench.ParamPolicy])
			}
			at[key{p[bench.ParamBackend], p[bench.ParamPolicy]}] = iv
		}
		if len(groups) == 0 {
			return nil, "no Registers results with " + unit
		}
		sort.Strings(policies)
		var series []barSeries
		for _, pol := range policies {
			s := barSeries{label: registersPolicy(pol)}
			for _, g := range groups {
				iv, ok := at[key{g, pol}]
				v := iv.Median
				if !ok {
					v = math.NaN()
				}
				s.vals, s.ivs = append(s.vals, v), append(s.ivs, iv)
			}
			series = append(series, s)
		}
		o := barOpts{title: title, ylabel: ylabel}
		if unit == bench.UnitNsPerOp {
			o.logY, o.yFmt = barSpan(series) > 100, nsTick
		}
		return groupedBars(o, groups, series), ""
	}
}

// plotKernel draws the Go harness against perf bench breakpoint on the
// same workloads.
func plotKernel(d *plotData) (*chart, string) {
	var groups []string
	goS := barSeries{label: "Go harness (usecs/op)"}
	perfS := barSeries{label: "perf bench breakpoint (perf-usecs/op)"}
	for _, c := range append(runfile.Family(d.all, "KernelThread"), runfile.Family(d.all, "KernelEnable")...) {
		g, gok := metricIv(bench.MetricUsecs)(c)
		pf, pok := metricIv(bench.MetricPerfUsecs)(c)
		if !gok && !pok {
			continue
		}
		gv, pv := g.Median, pf.Median
		if !gok {
			gv = math.NaN()
		}
		if !pok {
			pv = math.NaN()
		}
		groups = append(groups, perfBenchArgs(c.Name))
		goS.vals, goS.ivs = append(goS.vals, gv), append(goS.ivs, g)
		perfS.vals, perfS.ivs = append(perfS.vals, pv), append(perfS.ivs, pf)
	}
	if len(groups) == 0 {
		return nil, "no KernelThread/KernelEnable results with usecs/op"
	}
	series := []barSeries{goS, perfS}
	ch := groupedBars(barOpts{
		title:  "Go harness vs perf bench breakpoint on the same workload (perf bench arguments below each pair)",
		ylabel: "time per operation (µs)",
		logY:   barSpan(series) > 100,
	}, groups, series)
	ch.X.Tick.Label.Font.Size = vg.Points(9)
	return ch, ""
}

// perfBenchArgs writes a kernel case as the `perf bench breakpoint`
// command line it mirrors ("thread -b 4 -p 2 -t 10"), which is how its
// readers know these workloads.
func perfBenchArgs(name string) string {
	// The subcommand goes on a line of its own: eight "thread -b 4 -p 2 -t
	// 10" labels side by side overlap.
	return strings.Replace(present.PerfBenchArgs(name), " ", "\n", 1)
}
