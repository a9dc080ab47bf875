package kernels

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WritePlots draws the cross-kernel plots into dir (PNG and SVG) and
// returns the PNG file names: per vCPU count, each kernel's task
// breakpoint cost over its own N = 64 cost against N with the model's
// legacy and linux curves beside it; the task cost against vCPUs; and the
// 2022 series' benchmark against vCPUs. Every title names the
// accelerator.
func WritePlots(m *Matrix, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("kernels: %w", err)
	}
	labels, cpus, at := cellsBy(m)
	acc := strings.ToUpper(m.Accel)
	if acc == "" {
		acc = "no VM"
	}
	var out []string
	save := func(p *plot.Plot, stem string) error {
		for _, ext := range []string{".png", ".svg"} {
			if err := p.Save(7*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, stem+ext)); err != nil {
				return fmt.Errorf("kernels: plot %s: %w", stem, err)
			}
		}
		out = append(out, stem+".png")
		return nil
	}
	for _, n := range cpus {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("One more task breakpoint against held ones, %d CPUs (%s)", n, acc)
		p.X.Label.Text = "task breakpoints held on other threads (N)"
		p.Y.Label.Text = "cost / cost at N = 64"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		lines := 0
		for i, l := range labels {
			c := at[l][n]
			if c == nil || !c.OK() {
				continue
			}
			var xys plotter.XYs
			var errs plotter.YErrors
			for _, pt := range taskCurve(c, "task") {
				if pt.held < 64 || !pt.ratio.ok() {
					continue
				}
				xys = append(xys, plotter.XY{X: float64(pt.held), Y: pt.ratio.Median})
				errs = append(errs, struct{ Low, High float64 }{pt.ratio.Median - pt.ratio.Lo, pt.ratio.Hi - pt.ratio.Median})
			}
			if len(xys) < 2 {
				continue
			}
			ln, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return out, err
			}
			ln.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
			pts.Shape = plotutil.Shape(i)
			ln.Width = vg.Points(2)
			p.Add(ln, pts)
			if eb, err := plotter.NewYErrorBars(struct {
				plotter.XYer
				plotter.YErrorer
			}{xys, errs}); err == nil {
				eb.Color = plotutil.Color(i)
				p.Add(eb)
			}
			p.Legend.Add(l+" (kernel)", ln, pts)
			lines++
		}
		for j, s := range []string{"legacy", "linux"} {
			mc := modelCurve(m, s, n)
			if mc[64] <= 0 {
				continue
			}
			var xys plotter.XYs
			var ns []int
			for k := range mc {
				ns = append(ns, k)
			}
			sort.Ints(ns)
			for _, k := range ns {
				if k >= 64 {
					xys = append(xys, plotter.XY{X: float64(k), Y: mc[k] / mc[64]})
				}
			}
			if len(xys) < 2 {
				continue
			}
			ln, err := plotter.NewLine(xys)
			if err != nil {
				return out, err
			}
			ln.Color = color.Gray{Y: uint8(60 + 80*j)}
			ln.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			ln.Width = vg.Points(1.5)
			p.Add(ln)
			p.Legend.Add("model "+s, ln)
			lines++
		}
		if lines == 0 {
			continue
		}
		if err := save(p, fmt.Sprintf("tasks-ratio-cpus%d", n)); err != nil {
			return out, err
		}
	}

	// Task cost against vCPUs: N = 64 and each kernel's largest N.
	{
		p := plot.New()
		p.Title.Text = fmt.Sprintf("One more task breakpoint against vCPUs (%s)", acc)
		p.X.Label.Text = "vCPUs"
		p.Y.Label.Text = "p50 of perf_event_open + close (µs)"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		lines := 0
		for i, l := range labels {
			if at[l] == nil {
				continue
			}
			big := 0
			for _, n := range cpus {
				if c := at[l][n]; c != nil && c.OK() && c.Accel != "none" {
					if cv := taskCurve(c, "task"); len(cv) > 0 {
						big = max(big, cv[len(cv)-1].held)
					}
				}
			}
			for k, held := range []int{64, big} {
				if k == 1 && held <= 64 {
					continue
				}
				var xys plotter.XYs
				for _, n := range cpus {
					c := at[l][n]
					if c == nil || !c.OK() || c.Accel == "none" {
						continue
					}
					if pt := pointAt(taskCurve(c, "task"), held); pt.cost.ok() {
						xys = append(xys, plotter.XY{X: float64(n), Y: pt.cost.Median / 1e3})
					}
				}
				if len(xys) < 2 {
					continue
				}
				ln, pts, err := plotter.NewLinePoints(xys)
				if err != nil {
					return out, err
				}
				ln.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
				pts.Shape = plotutil.Shape(k)
				if k == 1 {
					ln.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
				}
				p.Add(ln, pts)
				p.Legend.Add(fmt.Sprintf("%s, N = %d", l, held), ln, pts)
				lines++
			}
		}
		if lines > 0 {
			if err := save(p, "tasks-vcpus"); err != nil {
				return out, err
			}
		}
	}

	// The 2022 series' benchmark against vCPUs.
	{
		p := plot.New()
		p.Title.Text = fmt.Sprintf("perf bench breakpoint thread -b 4 -p CPUs -t min(CPUs, 8) (%s)", acc)
		p.X.Label.Text = "vCPUs"
		p.Y.Label.Text = "µs per thread created"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
		p.Legend.Top, p.Legend.Left = true, true
		p.Add(plotter.NewGrid())
		lines := 0
		for i, l := range labels {
			for k, pick := range []func(seriesPoint) float64{func(s seriesPoint) float64 { return s.perf }, func(s seriesPoint) float64 { return s.perfB0 }} {
				var xys plotter.XYs
				for _, n := range cpus {
					c := at[l][n]
					if c == nil || !c.OK() || c.Accel == "none" {
						continue
					}
					for _, s := range seriesOf(c) {
						if s.threads == min(n, 8) && pick(s) > 0 {
							xys = append(xys, plotter.XY{X: float64(n), Y: pick(s)})
						}
					}
				}
				if len(xys) < 2 {
					continue
				}
				ln, pts, err := plotter.NewLinePoints(xys)
				if err != nil {
					return out, err
				}
				ln.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
				pts.Shape = plotutil.Shape(k)
				if k == 1 {
					ln.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
				}
				p.Add(ln, pts)
				p.Legend.Add(fmt.Sprintf("%s, %s", l, []string{"-b 4", "-b 0"}[k]), ln, pts)
				lines++
			}
		}
		if lines > 0 {
			if err := save(p, "series"); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
