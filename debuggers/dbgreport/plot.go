package dbgreport

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"bpbench/bench"
	"bpbench/debuggers"
)

// PlotName is the base name of the chart SavePlot writes.
const PlotName = "debuggers-writes"

// debuggerColors gives each debugger one colour.
var debuggerColors = map[string]color.RGBA{
	debuggers.GDB:   {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	debuggers.Delve: {R: 0xd6, G: 0x5f, B: 0x0e, A: 0xff},
}

var otherColor = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}

// series is one line of a tile.
type series struct {
	debugger, unit string
	dashed         bool
}

// Plot renders the chart of debug-register writes per action against the
// target's thread count, in format "png" or "svg": one tile per action
// (both axes logarithmic), and in each a solid line per debugger for what
// it wrote (median over repetitions) and a dashed one in the same colour
// for what write-changed would write for the same register states. A
// sixth tile holds the legend. A point with no writes (write-changed on a
// hit that changes nothing) is left out, as a log axis has no zero. It
// fails when results hold no debuggers results.
func Plot(results []bench.Result, format string) ([]byte, error) {
	all := collect(results)
	if len(all) == 0 {
		return nil, fmt.Errorf("dbgreport: no %s results", Experiment)
	}
	var lines []series
	for _, dbg := range debuggerNames(all) {
		lines = append(lines, series{dbg, debuggers.MetricDRWrites, false}, series{dbg, debuggers.PolicyMetric("changed"), true})
	}
	threadSet := map[int]bool{}
	for _, cells := range all {
		for t := range cells {
			threadSet[t] = true
		}
	}
	var threads []int
	for t := range threadSet {
		threads = append(threads, t)
	}
	sortInts(threads)

	legend := plot.New()
	legend.HideAxes()
	legend.Legend.Top = true
	legend.Legend.Left = true
	legend.Legend.TextStyle.Font.Size = vg.Points(9)
	legend.Title.Text = "DR writes per action"
	var tiles []*plot.Plot
	ymin, ymax := math.Inf(1), 0.0
	for ai, a := range debuggers.Actions {
		p := plot.New()
		p.Title.Text = a
		p.X.Label.Text = "threads"
		p.X.Scale = plot.LogScale{}
		p.Y.Scale = plot.LogScale{}
		var ticks []plot.Tick
		for _, t := range threads {
			ticks = append(ticks, plot.Tick{Value: float64(t), Label: strconv.Itoa(t)})
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Add(plotter.NewGrid())
		for _, s := range lines {
			var xys plotter.XYs
			for _, t := range threads {
				c := all[s.debugger][t][a]
				if c == nil {
					continue
				}
				if v := c.figure(s.unit); v.ok && v.med > 0 {
					xys = append(xys, plotter.XY{X: float64(t), Y: v.med})
					ymin, ymax = math.Min(ymin, v.med), math.Max(ymax, v.med)
				}
			}
			if len(xys) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, fmt.Errorf("dbgreport: %w", err)
			}
			col, ok := debuggerColors[s.debugger]
			if !ok {
				col = otherColor
			}
			l.Color, pts.Color = col, col
			l.Width = vg.Points(1.5)
			pts.Shape = draw.CircleGlyph{}
			pts.Radius = vg.Points(2.5)
			if s.dashed {
				l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
				pts.Shape = draw.RingGlyph{}
			}
			p.Add(l, pts)
			if ai == 0 {
				name := shortLabel(all[s.debugger], s.debugger)
				if s.dashed {
					name += " states, write-changed"
				}
				legend.Legend.Add(name, l, pts)
			}
		}
		if ai == 0 {
			p.Y.Label.Text = "DR writes (log)"
		}
		tiles = append(tiles, p)
	}
	if ymax == 0 {
		return nil, fmt.Errorf("dbgreport: the %s results hold no debug-register writes", Experiment)
	}
	// One y range for every tile, so that actions compare by eye.
	lo := math.Pow(10, math.Floor(math.Log10(ymin)))
	hi := math.Pow(10, math.Ceil(math.Log10(ymax)+0.05))
	for _, p := range tiles {
		p.Y.Min, p.Y.Max = lo, hi
		p.X.Min, p.X.Max = float64(threads[0])/1.5, float64(threads[len(threads)-1])*1.5
	}
	grid := [][]*plot.Plot{{tiles[0], tiles[1], tiles[2]}, {tiles[3], tiles[4], legend}}
	canvas, err := draw.NewFormattedCanvas(10*vg.Inch, 6.5*vg.Inch, format)
	if err != nil {
		return nil, fmt.Errorf("dbgreport: %w", err)
	}
	dc := draw.New(canvas)
	t := draw.Tiles{Rows: 2, Cols: 3, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadX: vg.Points(12), PadY: vg.Points(12)}
	cs := plot.Align(grid, t, dc)
	for i := range grid {
		for j, p := range grid[i] {
			p.Draw(cs[i][j])
		}
	}
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("dbgreport: %w", err)
	}
	return buf.Bytes(), nil
}

// SavePlot writes Plot to dir/PlotName.format, through a temporary file
// renamed into place so a reader never sees half a chart, and returns the
// path.
func SavePlot(results []bench.Result, dir, format string) (string, error) {
	b, err := Plot(results, format)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, PlotName+"."+format)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", fmt.Errorf("dbgreport: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("dbgreport: %w", err)
	}
	return path, nil
}

func sortInts(xs []int) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
