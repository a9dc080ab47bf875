package runfile

import (
	"slices"
	"sort"
	"strconv"

	"bpbench/bench"
	"bpbench/stats"
)

// The matrix's figures shaped for the cross-kernel report and plots,
// which read them alike.

// FromSubSamples is the source of a kernel-tasks interval: the p50s of
// the case's interleaved sub-samples.
const FromSubSamples = "sub-samples"

// Grid returns the matrix's cells by kernel label and vCPU count: labels
// in order of appearance, vCPU counts sorted.
func (m *Matrix) Grid() (labels []string, cpus []int, at map[string]map[int]*Cell) {
	at = map[string]map[int]*Cell{}
	for _, c := range m.Cells {
		if at[c.Label] == nil {
			at[c.Label] = map[int]*Cell{}
			labels = append(labels, c.Label)
		}
		at[c.Label][c.CPUs] = c
		if !slices.Contains(cpus, c.CPUs) {
			cpus = append(cpus, c.CPUs)
		}
	}
	sort.Ints(cpus)
	return labels, cpus, at
}

// Arches returns the cells' architectures in order of appearance.
func (m *Matrix) Arches() []string {
	var out []string
	for _, c := range m.Cells {
		if c.Arch != "" && !slices.Contains(out, c.Arch) {
			out = append(out, c.Arch)
		}
	}
	return out
}

// TaskPoint is one kernel-tasks figure of a cell.
type TaskPoint struct {
	Held int
	// Cost is the p50 of one open+close, in ns.
	Cost stats.Interval
	// Ratio is the cost over the same target's held = 64 cost in the same
	// cell, each first divided by its case's reference (a CPU-bound
	// open+close timed around it, which follows the machine's speed and
	// not the held breakpoints); the cpu target is its own reference, so
	// its ratio is raw.
	Ratio stats.Interval
}

// tasksOf returns a cell's kernel-tasks intervals for target by held
// count, at coverage conf: the p50 cost in ns, or, with rel, the cost
// over the case's reference.
func tasksOf(c *Cell, target string, conf float64, rel bool) map[int]stats.Interval {
	out := map[int]stats.Interval{}
	if c.Run == nil {
		return out
	}
	for _, r := range c.Run.Results {
		if r.Experiment != "kernel-tasks" || r.Params[bench.ParamTarget] != target {
			continue
		}
		held, err := strconv.Atoi(r.Params[bench.ParamHeld])
		if err != nil {
			continue
		}
		vs, from := r.Batches[bench.MetricP50], FromSubSamples
		if rel {
			vs = r.Batches[bench.MetricP50OverRef]
		}
		if len(vs) == 0 && !rel {
			vs, from = r.Batches[bench.UnitNsPerOp], "batches"
		}
		if len(vs) == 0 && !rel {
			vs = []float64{r.NsPerOp}
		}
		if len(vs) > 0 {
			out[held] = stats.MedianIntervalAt(vs, from, conf)
		}
	}
	return out
}

// TaskCurve returns the cell's kernel-tasks points for target with their
// ratios to held = 64, sorted by held.
func (c *Cell) TaskCurve(target string) []TaskPoint {
	pts := tasksOf(c, target, stats.Confidence, false)
	rel := target != "cpu"
	comp := tasksOf(c, target, stats.ComponentConfidence, rel)
	if len(comp) == 0 {
		comp = tasksOf(c, target, stats.ComponentConfidence, false)
	}
	base, okBase := comp[64]
	var out []TaskPoint
	for h, iv := range pts {
		p := TaskPoint{Held: h, Cost: iv}
		if okBase {
			p.Ratio = stats.Ratio(comp[h], base)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Held < out[j].Held })
	return out
}

// PointAt returns the curve's point at held, or the zero TaskPoint.
func PointAt(curve []TaskPoint, held int) TaskPoint {
	for _, p := range curve {
		if p.Held == held {
			return p
		}
	}
	return TaskPoint{}
}

// ModelCurve returns the model's task reservation cost for strategy s on
// cpus CPUs (Matrix.Model), by live tasks.
func (m *Matrix) ModelCurve(s string, cpus int) map[int]float64 {
	out := map[int]float64{}
	for _, r := range m.Model {
		if r.Params[bench.ParamStrategy] != s || r.Params[bench.ParamCPUs] != strconv.Itoa(cpus) {
			continue
		}
		n, err := strconv.Atoi(r.Params[bench.ParamTasks])
		if err != nil {
			continue
		}
		if v, ok := r.Metrics[bench.MetricTaskNs]; ok {
			out[n] = v
		}
	}
	return out
}

// ModelStrategies returns the strategies of Matrix.Model, in order of
// appearance.
func (m *Matrix) ModelStrategies() []string {
	var out []string
	for _, r := range m.Model {
		if s := r.Params[bench.ParamStrategy]; s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// SeriesPoint is one kernel-series figure: perf bench breakpoint thread
// and its Go twin, with 4 breakpoints and with none, in µs per thread.
type SeriesPoint struct {
	CPUs, Parallelism, Threads, Repeat int
	Perf, PerfB0, Go, GoB0             float64
	// PerfIv and GoIv are the intervals of perf bench's and the Go
	// twin's µs per thread over the case's rounds, each at
	// stats.ComponentConfidence so that a ratio of two kernels' figures
	// (stats.Ratio) covers stats.Confidence.
	PerfIv, GoIv stats.Interval
	// PerfSlow and GoSlow are the slowdowns over -b 0, paired within
	// each round (the rounds alternate -b 4 and -b 0, so a stretch of a
	// slower machine cancels), with their intervals over the rounds.
	PerfSlow, GoSlow stats.Interval
}

// Series returns the cell's kernel-series points.
func (c *Cell) Series() []SeriesPoint {
	var out []SeriesPoint
	if c.Run == nil {
		return out
	}
	for _, r := range c.Run.Results {
		if r.Experiment != "kernel-series" {
			continue
		}
		p := SeriesPoint{CPUs: c.CPUs}
		p.Parallelism, _ = strconv.Atoi(r.Params[bench.ParamParallelism])
		p.Threads, _ = strconv.Atoi(r.Params[bench.ParamThreads])
		p.Repeat, _ = strconv.Atoi(r.Params[bench.ParamRepeat])
		p.Perf, p.PerfB0 = r.Metrics[bench.MetricPerfUsecs], r.Metrics[bench.MetricPerfB0Usecs]
		p.Go, p.GoB0 = r.Metrics[bench.MetricUsecs], r.Metrics[bench.MetricB0Usecs]
		p.PerfIv = stats.MedianIntervalAt(r.Batches[bench.MetricPerfUsecs], "rounds", stats.ComponentConfidence)
		p.GoIv = stats.MedianIntervalAt(r.Batches[bench.MetricUsecs], "rounds", stats.ComponentConfidence)
		p.PerfSlow = stats.MedianInterval(r.Batches[bench.MetricPerfSlowdown], "rounds")
		p.GoSlow = stats.MedianInterval(r.Batches[bench.MetricSlowdown], "rounds")
		out = append(out, p)
	}
	return out
}
