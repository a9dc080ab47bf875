package charts

import (
	"fmt"
	"image/color"
	"maps"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"bpbench/runfile"
	"bpbench/stats"
)

// The cross-kernel charts of a `bpbench kernels` run: each kernel's cost
// against live task breakpoints beside the model's curves, that cost
// against vCPUs, and the 2022 series' benchmark. Every title names the
// accelerator the figures were emulated (or not) under.

// Stems of the cross-kernel charts.
const (
	KernelTasksVCPUsStem = "tasks-vcpus"
	KernelSeriesStem     = "series"
)

// KernelTasksStem is the stem of the chart of task breakpoint cost
// against held ones at cpus vCPUs.
func KernelTasksStem(cpus int) string { return fmt.Sprintf("tasks-ratio-cpus%d", cpus) }

// PlotKernels draws the cross-kernel charts of m into dir (PNG and SVG)
// and returns the files written.
func PlotKernels(m *runfile.Matrix, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	labels, cpus, at := m.Grid()
	acc := accelLabel(m)
	var files []string
	add := func(stem string, ch *chart) error {
		if ch == nil {
			return nil
		}
		fs, err := writeChart(dir, stem, ch)
		files = append(files, fs...)
		return err
	}
	for _, n := range cpus {
		if err := add(KernelTasksStem(n), kernelTasksRatio(m, labels, at, n, acc)); err != nil {
			return files, err
		}
	}
	if err := add(KernelTasksVCPUsStem, kernelTasksVCPUs(labels, cpus, at, acc)); err != nil {
		return files, err
	}
	if err := add(KernelSeriesStem, kernelSeries(labels, cpus, at, acc)); err != nil {
		return files, err
	}
	return files, nil
}

// accelLabel names the accelerators the VM cells ran under ("TCG", "KVM",
// "TCG, KVM"), or "no VM".
func accelLabel(m *runfile.Matrix) string {
	var as []string
	for _, c := range m.Cells {
		if a := strings.ToUpper(c.Accel); a != "" && a != "NONE" && !slices.Contains(as, a) {
			as = append(as, a)
		}
	}
	if len(as) == 0 && m.Accel != "" && m.Accel != "none" {
		as = append(as, strings.ToUpper(m.Accel))
	}
	if len(as) == 0 {
		return "no VM"
	}
	return strings.Join(as, ", ")
}

// kernelStyle is kernel i's colour and marker, the same on every chart.
func kernelStyle(i int, dashed bool) *lineStyle {
	st := &lineStyle{color: plotutil.Color(i), width: vg.Points(2), shape: plotutil.Shape(i)}
	if dashed {
		st.dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		st.width = vg.Points(1.5)
	}
	return st
}

// kernelTasksRatio draws each kernel's task breakpoint cost over its own
// N = 64 cost against N at n vCPUs, with the model's curves dashed.
func kernelTasksRatio(m *runfile.Matrix, labels []string, at map[string]map[int]*runfile.Cell, n int, acc string) *chart {
	var series []lineSeries
	for i, l := range labels {
		c := at[l][n]
		if c == nil || !c.OK() {
			continue
		}
		s := lineSeries{label: l + " (kernel)", style: kernelStyle(i, false)}
		for _, p := range c.TaskCurve("task") {
			if p.Held < 64 || p.Ratio.N == 0 {
				continue
			}
			s.xs, s.ys, s.ivs = append(s.xs, float64(p.Held)), append(s.ys, p.Ratio.Median), append(s.ivs, p.Ratio)
		}
		if len(s.xs) >= 2 {
			series = append(series, s)
		}
	}
	if len(series) == 0 {
		return nil
	}
	for j, st := range m.ModelStrategies() {
		mc := m.ModelCurve(st, n)
		if mc[64] <= 0 {
			continue
		}
		s := lineSeries{label: "model " + st, style: &lineStyle{color: color.Gray{Y: uint8(60 + 80*j)}, width: vg.Points(1.5), dashes: []vg.Length{vg.Points(5), vg.Points(3)}}}
		for _, k := range slices.Sorted(maps.Keys(mc)) {
			if k >= 64 {
				s.xs, s.ys = append(s.xs, float64(k)), append(s.ys, mc[k]/mc[64])
			}
		}
		if len(s.xs) >= 2 {
			series = append(series, s)
		}
	}
	return lineChart(lineOpts{
		title:  fmt.Sprintf("One more task breakpoint against held ones, %d CPUs (%s)", n, acc),
		xlabel: "task breakpoints held on other threads (N)",
		ylabel: "cost / cost at N = 64",
		logX:   true, logY: true,
	}, series)
}

// vcpuLine is one kernel's line against vCPUs: point gives a VM cell's y
// (and its interval, N = 0 for none); the host cell is left out, its CPU
// count not being a vCPU count of the same machine.
func vcpuLine(label string, st *lineStyle, cpus []int, cells map[int]*runfile.Cell, point func(c *runfile.Cell) (float64, stats.Interval, bool)) (lineSeries, bool) {
	s := lineSeries{label: label, style: st}
	for _, n := range cpus {
		c := cells[n]
		if c == nil || !c.OK() || c.Accel == "none" {
			continue
		}
		if y, iv, ok := point(c); ok {
			s.xs, s.ys, s.ivs = append(s.xs, float64(n)), append(s.ys, y), append(s.ivs, iv)
		}
	}
	return s, len(s.xs) >= 2
}

// vcpuChart draws lines against vCPUs on log axes, or nothing without
// any.
func vcpuChart(title, ylabel string, series []lineSeries) *chart {
	if len(series) == 0 {
		return nil
	}
	return lineChart(lineOpts{title: title, xlabel: "vCPUs", ylabel: ylabel, logX: true, logY: true}, series)
}

// kernelTasksVCPUs draws the task target's p50 at N = 64 and at each
// kernel's largest N against vCPUs.
func kernelTasksVCPUs(labels []string, cpus []int, at map[string]map[int]*runfile.Cell, acc string) *chart {
	var series []lineSeries
	for i, l := range labels {
		big := 0
		for _, c := range at[l] {
			if c.OK() && c.Accel != "none" {
				if cv := c.TaskCurve("task"); len(cv) > 0 {
					big = max(big, cv[len(cv)-1].Held)
				}
			}
		}
		for k, held := range []int{64, big} {
			if k == 1 && held <= 64 {
				continue
			}
			s, ok := vcpuLine(fmt.Sprintf("%s, N = %d", l, held), kernelStyle(i, k == 1), cpus, at[l], func(c *runfile.Cell) (float64, stats.Interval, bool) {
				p := runfile.PointAt(c.TaskCurve("task"), held)
				return p.Cost.Median / 1e3, scaleIv(p.Cost, 1e-3), p.Cost.N > 0
			})
			if ok {
				series = append(series, s)
			}
		}
	}
	return vcpuChart(fmt.Sprintf("One more task breakpoint against vCPUs (%s)", acc), "p50 of perf_event_open + close (µs)", series)
}

// kernelSeries draws perf bench breakpoint thread -b 4 and -b 0 against
// vCPUs, per kernel.
func kernelSeries(labels []string, cpus []int, at map[string]map[int]*runfile.Cell, acc string) *chart {
	var series []lineSeries
	for i, l := range labels {
		for k, b0 := range []bool{false, true} {
			s, ok := vcpuLine(fmt.Sprintf("%s, %s", l, []string{"-b 4", "-b 0"}[k]), kernelStyle(i, b0), cpus, at[l], func(c *runfile.Cell) (float64, stats.Interval, bool) {
				for _, p := range c.Series() {
					y := p.Perf
					if b0 {
						y = p.PerfB0
					}
					if p.Threads == min(c.CPUs, 8) && y > 0 {
						return y, stats.Interval{}, true
					}
				}
				return 0, stats.Interval{}, false
			})
			if ok {
				series = append(series, s)
			}
		}
	}
	return vcpuChart(fmt.Sprintf("perf bench breakpoint thread -b 4 -p CPUs -t min(CPUs, 8) (%s)", acc), "µs per thread created", series)
}

func scaleIv(iv stats.Interval, f float64) stats.Interval {
	iv.Median, iv.Lo, iv.Hi = iv.Median*f, iv.Lo*f, iv.Hi*f
	return iv
}
