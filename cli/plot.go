package cli

import (
	"bytes"
	"flag"
	"fmt"
	"image/color"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"bpbench/bench"
)

func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	out := fs.String("out", "", "directory for the charts (default DIR/plots)")
	pos, help, err := parseCommand(fs, args, stdout)
	if help || err != nil {
		return err
	}
	run, err := loadRunArg(pos, "plot", "bpbench plot DIR [--out PLOTDIR]")
	if err != nil {
		return err
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(pos[0], plotsDir)
	}
	files, err := plotAll(run, dir, stdout)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "wrote", f)
	}
	return nil
}

// chartSpec is one kind of chart: the stem of its file and how to draw it
// from the run's case summaries. build returns a reason instead of charts
// when the data it needs is absent; a chart it returns without a stem of
// its own takes the spec's.
type chartSpec struct {
	stem  string
	build func(all []*caseSummary) ([]*chart, string)
}

// charts lists every chart bpbench draws, in report order.
var charts = []chartSpec{
	{"update-cost", one(plotUpdate)},
	{"race-steals", plotRaceSteals},
	{"race-window-cdf", one(plotRaceWindow)},
	{"scaling-throughput", one(plotScaling)},
	{"tasks-cost", one(plotTasks)},
	{"registers-writes", one(plotRegisters("writes/op", "register writes per update", "Register writes per update: write-all vs write-changed, per backend"))},
	{"registers-cost", one(plotRegisters("ns/op", "time per update", "Update cost: write-all vs write-changed, per backend"))},
	{"kernel-vs-perf", one(plotKernel)},
	{"exclusion-cost", one(plotExclusion)},
	{"apply-writes", one(plotThreads("Apply", "writes/op", "register writes per apply", "Register writes per set+modify+clear vs tracee threads: eager vs lazy", nil))},
	{"apply-cost", one(plotThreads("Apply", "ns/thread", "time per thread", "Set+modify+clear cost per tracee thread vs threads: eager vs lazy", nsTick))},
	{"blindwindow", one(plotThreads("BlindWindow", "blind-ns/p50", "first to last thread armed, p50", "Blind window (first to last thread armed) vs tracee threads: eager vs lazy", nsTick))},
	{"blindwindow-missed", one(plotThreads("BlindWindow", "missed/op", "tracee writes missed per watchpoint set", "Accesses missed while arming vs tracee threads: eager vs lazy", nil))},
}

// one adapts a builder of a single chart to chartSpec.build.
func one(f func([]*caseSummary) (*chart, string)) func([]*caseSummary) ([]*chart, string) {
	return func(all []*caseSummary) ([]*chart, string) {
		c, why := f(all)
		if c == nil {
			return nil, why
		}
		return []*chart{c}, ""
	}
}

// chartW and chartH are the drawing size of every chart.
var chartW, chartH = 9 * vg.Inch, 5.5 * vg.Inch

// plotAll draws every chart whose data run holds into dir as PNG and SVG,
// noting on log the ones it omits, and returns the files written.
func plotAll(run *bench.Run, dir string, log io.Writer) ([]string, error) {
	all := summarize(run)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	var files []string
	for _, cs := range charts {
		chs, why := cs.build(all)
		if len(chs) == 0 {
			fmt.Fprintf(log, "plot %s: omitted: %s\n", cs.stem, why)
			continue
		}
		for _, ch := range chs {
			stem := ch.stem
			if stem == "" {
				stem = cs.stem
			}
			for _, format := range []string{"png", "svg"} {
				b, err := ch.render(chartW, chartH, format)
				if err != nil {
					return files, fmt.Errorf("plot %s.%s: %w", stem, format, err)
				}
				path := filepath.Join(dir, stem+"."+format)
				if err := writeFileAtomic(path, b); err != nil {
					return files, err
				}
				files = append(files, path)
			}
		}
	}
	return files, nil
}

// chart is one figure. render draws its legend in a strip between the
// title and the axes, in as many columns as fit, rather than letting gonum
// draw it inside the data area, where it covered lines and bars.
type chart struct {
	*plot.Plot
	stem   string
	legend []legendItem
	// lines are the series a line chart drew, as drawn.
	lines []lineSeries
}

// legendItem is one legend entry: a label and the thumbnails drawn beside it.
type legendItem struct {
	label  string
	thumbs []plot.Thumbnailer
}

func (c *chart) addLegend(label string, thumbs ...plot.Thumbnailer) {
	c.legend = append(c.legend, legendItem{label, thumbs})
}

func newChart(title, xlabel, ylabel string) *chart {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	return &chart{Plot: p}
}

// legendFontSize is the size of legend text; chart titles use 13 points.
const legendFontSize = 9

// render draws c as a w×h image in format ("png" or "svg").
func (c *chart) render(w, h vg.Length, format string) ([]byte, error) {
	vc, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return nil, err
	}
	dc := draw.New(vc)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	pad := vg.Points(6)
	top := dc.Max.Y - pad
	title := c.Title.Text
	if title != "" {
		sty := c.Title.TextStyle
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: top + sty.FontExtents().Descent}, title)
		top -= sty.Rectangle(title).Size().Y + pad
	}
	// The legend starts about where the y axis does, so it reads as part
	// of the chart rather than of the title.
	top -= drawLegend(dc, c.legend, dc.Min.X+vg.Inch/2, dc.Max.X-pad, top)
	area := draw.Crop(dc, pad, -2*pad, pad, top-dc.Max.Y)

	// gonum reserves room for an axis label around the label's linear
	// midpoint, which on a log axis lies near the top (or right) end, and
	// then shrinks the data area for nothing; the labels are drawn here
	// instead, centred on the area.
	xl, yl := c.X.Label.Text, c.Y.Label.Text
	if yl != "" {
		sty := c.Y.Label.TextStyle
		sty.Rotation += math.Pi / 2
		h := c.Y.Label.TextStyle.Height(yl)
		dc.FillText(sty, vg.Point{X: area.Min.X + h - sty.FontExtents().Descent, Y: area.Center().Y}, yl)
		area.Min.X += h + c.Y.Label.Padding
	}
	if xl != "" {
		sty := c.X.Label.TextStyle
		dc.FillText(sty, vg.Point{X: area.Center().X, Y: area.Min.Y + sty.FontExtents().Descent}, xl)
		area.Min.Y += sty.Height(xl) + c.X.Label.Padding
	}
	c.Title.Text, c.X.Label.Text, c.Y.Label.Text = "", "", ""
	defer func() { c.Title.Text, c.X.Label.Text, c.Y.Label.Text = title, xl, yl }()
	c.Plot.Draw(area)
	var buf bytes.Buffer
	if _, err := vc.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// drawLegend draws items in columns between x0 and x1 below top and
// returns the height it used.
func drawLegend(dc draw.Canvas, items []legendItem, x0, x1, top vg.Length) vg.Length {
	if len(items) == 0 {
		return 0
	}
	proto := plot.NewLegend()
	proto.TextStyle.Font.Size = vg.Points(legendFontSize)
	proto.Top, proto.Left = true, true
	proto.Padding = vg.Points(2)
	gap := vg.Points(16)
	var colW vg.Length
	for _, it := range items {
		colW = max(colW, proto.ThumbnailWidth+proto.TextStyle.Rectangle(" "+it.label).Max.X+gap)
	}
	n := len(items)
	cols := max(1, min(n, int((x1-x0)/colW)))
	rows := (n + cols - 1) / cols
	cols = (n + rows - 1) / rows
	var h vg.Length
	for j := range cols {
		l := proto
		for _, it := range items[j*rows : min((j+1)*rows, n)] {
			l.Add(it.label, it.thumbs...)
		}
		col := draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{
			Min: vg.Point{X: x0 + colW*vg.Length(j), Y: dc.Min.Y},
			Max: vg.Point{X: x0 + colW*vg.Length(j+1), Y: top},
		}}
		l.Draw(col)
		h = max(h, l.Rectangle(col).Size().Y)
	}
	return h + proto.TextStyle.FontExtents().Descent + vg.Points(8)
}

// --- axes ---

// unitTicks relabels the labelled ticks of another Ticker with format and
// drops ticks outside the axis range, which gonum's LogTicks adds and which
// would otherwise pad the data area.
type unitTicks struct {
	plot.Ticker
	format func(float64) string
}

func (u unitTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range u.Ticker.Ticks(lo, hi) {
		if t.Value < lo*(1-1e-9) || t.Value > hi*(1+1e-9) {
			continue
		}
		if t.Label != "" {
			t.Label = u.format(t.Value)
		}
		out = append(out, t)
	}
	return out
}

// setAxis configures a numeric axis: a log scale (named in its label) or a
// linear one, ticks labelled by format (nil: plain numbers).
func setAxis(a *plot.Axis, log bool, format func(float64) string) {
	if format == nil {
		format = plainTick
	}
	if log {
		a.Scale = plot.LogScale{}
		a.Tick.Marker = unitTicks{plot.LogTicks{Prec: -1}, format}
		a.Label.Text += " (log scale)"
		return
	}
	a.Tick.Marker = unitTicks{linearTicks{}, format}
}

// linearTicks labels about six round values (steps of 1, 2, 2.5 or 5
// times a power of ten); gonum's DefaultTicks labels as few as two.
type linearTicks struct{}

func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: "-"}}
	}
	raw := (hi - lo) / 6
	mag := math.Pow10(int(math.Floor(math.Log10(raw))))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ts []plot.Tick
	for i := math.Ceil(lo / step); i*step <= hi*(1+1e-9); i++ {
		ts = append(ts, plot.Tick{Value: i * step, Label: "-"}) // unitTicks labels it
	}
	return ts
}

// valueTicks labels exactly the given values: a log axis over a sweep of
// a few sizes (1, 16, 256 threads) reads better with ticks at the sizes
// measured than at powers of ten.
func valueTicks(vals []float64, format func(float64) string) plot.ConstantTicks {
	if format == nil {
		format = plainTick
	}
	var ts []plot.Tick
	for _, v := range vals {
		ts = append(ts, plot.Tick{Value: v, Label: format(v)})
	}
	return ts
}

func plainTick(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return strconv.FormatFloat(v, 'f', -1, 64) // 16384, not 1.638e+04
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// nsTick labels a time in nanoseconds with a unit that keeps the number
// short ("250 ns", "1.5 µs", "20 ms").
func nsTick(ns float64) string {
	if ns == 0 {
		return "0"
	}
	units := []struct {
		scale float64
		name  string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}}
	for _, u := range units {
		if math.Abs(ns) >= u.scale {
			return strconv.FormatFloat(ns/u.scale, 'g', 3, 64) + " " + u.name
		}
	}
	return strconv.FormatFloat(ns, 'g', 3, 64) + " ns"
}

// siTick labels a count with an SI suffix ("4M", "250k").
func siTick(v float64) string {
	for _, u := range []struct {
		scale float64
		name  string
	}{{1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if math.Abs(v) >= u.scale {
			return strconv.FormatFloat(v/u.scale, 'g', 3, 64) + u.name
		}
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// --- bar charts ---

// barSeries is one colour of a grouped bar chart; NaN marks a missing bar
// or whisker.
type barSeries struct {
	label  string
	vals   []float64
	lo, hi []float64
}

// barOpts shapes a grouped bar chart.
type barOpts struct {
	title, ylabel string
	// logY puts the values on a log axis (ptrace and perf cost
	// microseconds, the simulator tens of nanoseconds).
	logY bool
	yFmt func(float64) string
}

// groupedBars draws bars side by side per group, with whiskers where a
// series has them.
func groupedBars(o barOpts, groups []string, series []barSeries) *chart {
	ch := newChart(o.title, "", o.ylabel)
	p := ch.Plot
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		for i, v := range s.vals {
			for _, x := range []float64{v, s.lo[i], s.hi[i]} {
				if x > 0 && !math.IsNaN(x) {
					lo, hi = math.Min(lo, x), math.Max(hi, x)
				}
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 1
	}
	setAxis(&p.Y, o.logY, o.yFmt)
	if o.logY {
		// Down to a power of ten, so the axis always has a labelled tick
		// below the shortest bar.
		p.Y.Min = math.Min(lo/1.5, math.Pow10(int(math.Floor(math.Log10(lo)))))
		p.Y.Max = hi * 1.5
	} else {
		p.Y.Min, p.Y.Max = 0, hi*1.1
	}
	for i, s := range series {
		b := &bars{series: s, index: i, n: len(series), logY: o.logY, color: plotutil.Color(i)}
		p.Add(b)
		ch.addLegend(s.label, b)
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	return ch
}

// bars is one barSeries of a grouped bar chart. gonum's BarChart always
// grows from zero, which a log axis cannot show, so the bars start at the
// bottom of the axis instead.
type bars struct {
	series   barSeries
	index, n int
	logY     bool
	color    color.Color
}

var whiskerStyle = draw.LineStyle{Color: color.Black, Width: vg.Points(1)}

func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	width := 0.8 / float64(b.n)
	base := trY(math.Max(p.Y.Min, 0))
	if b.logY {
		base = trY(p.Y.Min)
	}
	for g, v := range b.series.vals {
		if math.IsNaN(v) || (b.logY && v <= 0) {
			continue
		}
		x := float64(g) - 0.4 + width*(float64(b.index)+0.5)
		x0, x1 := trX(x-width/2*0.9), trX(x+width/2*0.9)
		top := trY(v)
		c.FillPolygon(b.color, c.ClipPolygonY([]vg.Point{{X: x0, Y: base}, {X: x1, Y: base}, {X: x1, Y: top}, {X: x0, Y: top}}))
		lo, hi := b.series.lo[g], b.series.hi[g]
		if !math.IsNaN(lo) && !math.IsNaN(hi) && lo > 0 && hi > 0 {
			drawWhisker(&c, trX(x), (x1-x0)/4, trY(lo), trY(hi))
		}
	}
}

func drawWhisker(c *draw.Canvas, x, halfCap, ylo, yhi vg.Length) {
	c.StrokeLines(whiskerStyle, c.ClipLinesY([]vg.Point{{X: x, Y: ylo}, {X: x, Y: yhi}})...)
	c.StrokeLines(whiskerStyle, c.ClipLinesY([]vg.Point{{X: x - halfCap, Y: ylo}, {X: x + halfCap, Y: ylo}})...)
	c.StrokeLines(whiskerStyle, c.ClipLinesY([]vg.Point{{X: x - halfCap, Y: yhi}, {X: x + halfCap, Y: yhi}})...)
}

// Thumbnail draws the legend swatch.
func (b *bars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(b.color, pts)
}

// whiskerThumb is the legend entry that says what the whiskers span.
type whiskerThumb struct{}

func (whiskerThumb) Thumbnail(c *draw.Canvas) {
	drawWhisker(c, (c.Min.X+c.Max.X)/2, (c.Max.X-c.Min.X)/4, c.Min.Y, c.Max.Y)
}

// --- line charts ---

// lineSeries is one line: points sorted by x.
type lineSeries struct {
	label  string
	xs, ys []float64
	// style, when nil, takes colour, dashes and marker from the series'
	// position.
	style    *lineStyle
	noLegend bool
}

// lineStyle is how one line is drawn; a nil shape draws no markers.
type lineStyle struct {
	color  color.Color
	dashes []vg.Length
	width  vg.Length
	shape  draw.GlyphDrawer
}

func autoStyle(i int) *lineStyle {
	return &lineStyle{color: plotutil.Color(i), dashes: plotutil.Dashes(i % 3), width: vg.Points(1.5), shape: plotutil.Shape(i)}
}

// thumbs returns the legend thumbnails of a line drawn in st.
func (st *lineStyle) thumbs() []plot.Thumbnailer {
	l := &plotter.Line{LineStyle: draw.LineStyle{Color: st.color, Width: st.width, Dashes: st.dashes}}
	out := []plot.Thumbnailer{l}
	if st.shape != nil {
		out = append(out, &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: st.color, Radius: vg.Points(3), Shape: st.shape}})
	}
	return out
}

// lineOpts shapes a line chart.
type lineOpts struct {
	title, xlabel, ylabel string
	logX, logY            bool
	// xTicks, when set, labels integer x positions (a categorical axis).
	xTicks     []string
	xFmt, yFmt func(float64) string
	// yMax is the least top of a linear y axis, so that all-zero data
	// still shows a readable axis.
	yMax float64
}

func lineChart(o lineOpts, series []lineSeries) *chart {
	ch := newChart(o.title, o.xlabel, o.ylabel)
	p := ch.Plot
	ymax := 0.0
	xset := map[float64]bool{}
	for i, s := range series {
		xys := make(plotter.XYs, 0, len(s.xs))
		for j := range s.xs {
			if (o.logX && s.xs[j] <= 0) || (o.logY && s.ys[j] <= 0) {
				continue // a log axis cannot place it
			}
			xys = append(xys, plotter.XY{X: s.xs[j], Y: s.ys[j]})
			ymax = math.Max(ymax, s.ys[j])
			xset[s.xs[j]] = true
		}
		if len(xys) == 0 {
			continue
		}
		st := s.style
		if st == nil {
			st = autoStyle(i)
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		l.LineStyle = draw.LineStyle{Color: st.color, Width: st.width, Dashes: st.dashes}
		p.Add(l)
		if st.shape != nil {
			sc, err := plotter.NewScatter(xys)
			if err == nil {
				sc.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(3), Shape: st.shape}
				p.Add(sc)
			}
		}
		if !s.noLegend {
			ch.addLegend(s.label, st.thumbs()...)
		}
		ch.lines = append(ch.lines, s)
	}
	setAxis(&p.X, o.logX, o.xFmt)
	setAxis(&p.Y, o.logY, o.yFmt)
	switch {
	case o.xTicks != nil:
		p.NominalX(o.xTicks...)
		p.X.Min, p.X.Max = -0.25, float64(len(o.xTicks))-0.75
	case o.logX && len(xset) <= 12:
		p.X.Tick.Marker = valueTicks(sortedSet(xset), o.xFmt)
		p.X.Min, p.X.Max = p.X.Min/1.15, p.X.Max*1.15
	}
	if !o.logY {
		p.Y.Min = 0
		p.Y.Max = math.Max(ymax*1.1, o.yMax)
		if p.Y.Max == 0 {
			p.Y.Max = 1
		}
	}
	return ch
}

func sortedSet(set map[float64]bool) []float64 {
	out := make([]float64, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Float64s(out)
	return out
}

// seriesBy groups cases into lines along x = the xKey parameter, one line
// per combination of the other name parameters; labels name only the
// parameters that differ between lines.
//
// With categorical, or when an x value is not a number, x positions are
// indexes into the returned categories.
func seriesBy(cases []*caseSummary, xKey string, y func(*caseSummary) (float64, bool), categorical bool) (series []lineSeries, categories []string) {
	type pt struct {
		x string
		y float64
	}
	byKey := map[string][]pt{}
	var keys []string
	keyParams := map[string]map[string]string{}
	for _, c := range cases {
		xv, ok := nameParams(c.Name)[xKey]
		if !ok {
			continue
		}
		yv, ok := y(c)
		if !ok || math.IsNaN(yv) {
			continue
		}
		rest := map[string]string{}
		for k, v := range nameParams(c.Name) {
			if k != xKey {
				rest[k] = v
			}
		}
		var parts []string
		for _, k := range sortedKeys(rest) {
			parts = append(parts, k+"="+rest[k])
		}
		key := strings.Join(parts, " ")
		if _, ok := byKey[key]; !ok {
			keys = append(keys, key)
			keyParams[key] = rest
		}
		byKey[key] = append(byKey[key], pt{xv, yv})
	}
	varying := map[string]bool{}
	for _, k := range keys {
		for pk, pv := range keyParams[k] {
			for _, k2 := range keys {
				if keyParams[k2][pk] != pv {
					varying[pk] = true
				}
			}
		}
	}
	// Numeric x values make a real axis; anything else is categorical.
	numeric := !categorical
	catSet := map[string]bool{}
	for _, pts := range byKey {
		for _, p := range pts {
			catSet[p.x] = true
			if _, err := strconv.ParseFloat(p.x, 64); err != nil {
				numeric = false
			}
		}
	}
	if !numeric {
		categories = sortedCategories(catSet)
	}
	for _, k := range keys {
		var parts []string
		for _, pk := range sortedKeys(keyParams[k]) {
			if varying[pk] {
				parts = append(parts, pk+"="+keyParams[k][pk])
			}
		}
		s := lineSeries{label: strings.Join(parts, " ")}
		if s.label == "" {
			s.label = k
		}
		pts := byKey[k]
		for _, p := range pts {
			x, err := strconv.ParseFloat(p.x, 64)
			if !numeric {
				x, err = float64(indexOf(categories, p.x)), nil
			}
			if err == nil {
				s.xs = append(s.xs, x)
				s.ys = append(s.ys, p.y)
			}
		}
		sortXY(s.xs, s.ys)
		series = append(series, s)
	}
	return series, categories
}

// sortedCategories orders numeric-looking values numerically, then the rest.
func sortedCategories(set map[string]bool) []string {
	var out []string
	for v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		a, ea := strconv.ParseFloat(out[i], 64)
		b, eb := strconv.ParseFloat(out[j], 64)
		switch {
		case ea == nil && eb == nil:
			return a < b
		case ea == nil:
			return true
		case eb == nil:
			return false
		}
		return out[i] < out[j]
	})
	return out
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func sortXY(xs, ys []float64) {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return xs[idx[a]] < xs[idx[b]] })
	nx, ny := make([]float64, len(xs)), make([]float64, len(ys))
	for i, j := range idx {
		nx[i], ny[i] = xs[j], ys[j]
	}
	copy(xs, nx)
	copy(ys, ny)
}

// spansDecades reports whether positive xs (or ys) cover more than factor,
// where a log axis reads better.
func spansDecades(series []lineSeries, y bool, factor float64) bool {
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		vs := s.xs
		if y {
			vs = s.ys
		}
		for _, v := range vs {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	return hi/lo > factor
}

// metricOrNs returns a metric, with "ns/op" meaning NsPerOp.
func metricOrNs(unit string) func(*caseSummary) (float64, bool) {
	return func(c *caseSummary) (float64, bool) {
		if unit == "ns/op" {
			return c.NsPerOp, c.NsPerOp > 0
		}
		return c.Metric(unit)
	}
}

// --- the charts ---

// updateOps is the presentation order of Update's op parameter, with the
// legend label of each.
var updateOps = []struct{ op, label string }{
	{"modify", "modify in place"},
	{"disable-enable", "disable, change, enable"},
	{"reregister", "re-register (release + reserve)"},
}

// updateWhiskers returns the whisker span of an Update case and whether it
// is the run-to-run spread: min..max of ns/op over the repetitions, or,
// for a single repetition, p50..p99 of its per-op latency. The per-op
// min..max would be no use: rare preemptions stretch it from 50 ns to
// milliseconds.
func updateWhiskers(c *caseSummary) (lo, hi float64, overReps bool) {
	if c.Reps > 1 {
		return c.NsMin, c.NsMax, true
	}
	if h := c.Latency; h != nil && h.P99 > 0 {
		return h.P50, h.P99, false
	}
	return math.NaN(), math.NaN(), false
}

func plotUpdate(all []*caseSummary) (*chart, string) {
	cases := family(all, "Update")
	if len(cases) == 0 {
		return nil, "no Update results"
	}
	var groups []string
	ops := append([]struct{ op, label string }(nil), updateOps...)
	type key struct{ g, op string }
	at := map[key]*caseSummary{}
	for _, c := range cases {
		p := nameParams(c.Name)
		// One group per backend, and per strategy where the backend has
		// several (the simulator).
		g := p["backend"]
		if s := p["strategy"]; s != "" {
			g += "/" + s
		}
		if indexOf(groups, g) < 0 {
			groups = append(groups, g)
		}
		if !slices.ContainsFunc(ops, func(o struct{ op, label string }) bool { return o.op == p["op"] }) {
			ops = append(ops, struct{ op, label string }{p["op"], p["op"]})
		}
		at[key{g, p["op"]}] = c
	}
	var series []barSeries
	minReps, maxReps := math.MaxInt, 0
	anyP := false
	for _, op := range ops {
		s := barSeries{label: op.label}
		present := false
		for _, g := range groups {
			v, lo, hi := math.NaN(), math.NaN(), math.NaN()
			if c := at[key{g, op.op}]; c != nil {
				v, present = c.NsPerOp, true
				var overReps bool
				lo, hi, overReps = updateWhiskers(c)
				if overReps {
					minReps, maxReps = min(minReps, c.Reps), max(maxReps, c.Reps)
				} else if !math.IsNaN(lo) {
					anyP = true
				}
			}
			s.vals, s.lo, s.hi = append(s.vals, v), append(s.lo, lo), append(s.hi, hi)
		}
		if present {
			series = append(series, s)
		}
	}
	var whiskers, barsNote string
	switch {
	case maxReps > 0 && anyP:
		barsNote = "median of the runs"
		whiskers = "whiskers: min..max over runs; per-op p50..p99 where a case ran once"
	case maxReps > 0 && minReps == maxReps:
		barsNote = fmt.Sprintf("median of %d runs", maxReps)
		whiskers = fmt.Sprintf("whiskers: min..max of the %d runs", maxReps)
	case maxReps > 0:
		barsNote = fmt.Sprintf("median of %d-%d runs", minReps, maxReps)
		whiskers = "whiskers: min..max over the runs"
	default:
		barsNote = "mean of 1 run"
		whiskers = "whiskers: per-op latency p50..p99 (1 run)"
	}
	ch := groupedBars(barOpts{
		title:  "Breakpoint update cost per backend: modify in place vs disable-enable vs re-register",
		ylabel: "time per update, " + barsNote,
		logY:   true,
		yFmt:   nsTick,
	}, groups, series)
	if maxReps > 0 || anyP {
		ch.addLegend(whiskers, whiskerThumb{})
	}
	return ch, ""
}

// backendOrder is the presentation order of backends: model, then the two
// real kernel interfaces.
var backendOrder = []string{"sim", "ptrace", "perf"}

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

// orderedBackends returns the keys of m in backendOrder, then any others
// sorted.
func orderedBackends[V any](m map[string]V) []string {
	var out []string
	for _, be := range backendOrder {
		if _, ok := m[be]; ok {
			out = append(out, be)
		}
	}
	for _, be := range sortedKeys(m) {
		if !slices.Contains(backendOrder, be) {
			out = append(out, be)
		}
	}
	return out
}

// raceStealsStem is the file stem of one backend's steal chart; the report
// links it.
func raceStealsStem(backend string) string { return "race-steals-" + backend }

// raceCategory places a Race case on the competitor-rate axis: "none"
// without a competitor, "max" for an unthrottled one (rate=max, or rate=0
// in results written before rate=max existed), else its rate; order sorts
// the categories.
func raceCategory(p map[string]string) (label string, order float64) {
	if p["competitors"] == "0" {
		return "none", -1
	}
	switch r := p["rate"]; r {
	case "max", "0":
		return "max", math.Inf(1)
	default:
		v, err := strconv.ParseFloat(r, 64)
		if err != nil {
			return r, math.MaxFloat64
		}
		return siTick(v) + "/s", v
	}
}

func plotRaceSteals(all []*caseSummary) ([]*chart, string) {
	byBackend := map[string][]*caseSummary{}
	for _, c := range family(all, "Race") {
		if _, ok := c.Metric("steals/op"); ok {
			be := nameParams(c.Name)["backend"]
			byBackend[be] = append(byBackend[be], c)
		}
	}
	if len(byBackend) == 0 {
		return nil, "no Race results with steals/op"
	}
	var out []*chart
	for _, be := range orderedBackends(byBackend) {
		ch := raceStealsChart(be, byBackend[be])
		ch.stem = raceStealsStem(be)
		out = append(out, ch)
	}
	return out, ""
}

// raceStealsChart draws one backend's steals per update against the
// competitor rate: a line per strategy (and competitor count) for
// re-register, and one line for modify in place over every strategy.
func raceStealsChart(be string, cases []*caseSummary) *chart {
	order := map[string]float64{}
	for _, c := range cases {
		l, o := raceCategory(nameParams(c.Name))
		order[l] = o
	}
	cats := sortedKeys(order)
	sort.SliceStable(cats, func(i, j int) bool { return order[cats[i]] < order[cats[j]] })

	type line struct {
		strategy string
		k        int
	}
	rereg := map[line]map[int]float64{} // x index -> steals/op
	none := map[string]float64{}        // strategy -> steals/op with no competitor
	modify := map[int]float64{}
	var strategies []string
	var counts []int
	for _, c := range cases {
		p := nameParams(c.Name)
		l, _ := raceCategory(p)
		x := indexOf(cats, l)
		v, _ := c.Metric("steals/op")
		switch p["mode"] {
		case "modify":
			// The worst strategy, so that one losing slots is not hidden
			// behind the others' zeros.
			if old, ok := modify[x]; !ok || v > old {
				modify[x] = v
			}
		case "reregister":
			if !slices.Contains(strategies, p["strategy"]) {
				strategies = append(strategies, p["strategy"])
			}
			if l == "none" {
				none[p["strategy"]] = v
				continue
			}
			k, _ := strconv.Atoi(p["competitors"])
			if !slices.Contains(counts, k) {
				counts = append(counts, k)
			}
			lk := line{p["strategy"], k}
			if rereg[lk] == nil {
				rereg[lk] = map[int]float64{}
			}
			rereg[lk][x] = v
		}
	}
	slices.Sort(counts)
	if len(counts) == 0 {
		counts = []int{0} // only the no-competitor baseline was measured
	}
	points := func(m map[int]float64, base *float64) ([]float64, []float64) {
		var xs, ys []float64
		if base != nil {
			xs, ys = append(xs, 0), append(ys, *base)
		}
		for _, x := range slices.Sorted(maps.Keys(m)) {
			xs, ys = append(xs, float64(x)), append(ys, m[x])
		}
		return xs, ys
	}
	var series []lineSeries
	modLabel := "modify in place (all strategies, worst)"
	if len(strategies) <= 1 {
		modLabel = "modify in place"
	}
	if len(modify) > 0 {
		xs, ys := points(modify, nil)
		series = append(series, lineSeries{label: modLabel, xs: xs, ys: ys,
			style: &lineStyle{color: color.Black, width: vg.Points(3), shape: draw.CircleGlyph{}}})
	}
	byCount := len(counts) > 1
	for si, st := range strategies {
		for ki, k := range counts {
			var base *float64
			if v, ok := none[st]; ok && cats[0] == "none" {
				base = &v
			}
			xs, ys := points(rereg[line{st, k}], base)
			style := &lineStyle{color: plotutil.Color(si), width: vg.Points(1.5), shape: plotutil.Shape(si)}
			if ki > 0 {
				style.dashes = plotutil.Dashes(ki)
			}
			label := "re-register"
			if len(strategies) > 1 {
				label += ", strategy=" + st
			}
			series = append(series, lineSeries{label: label, xs: xs, ys: ys, style: style, noLegend: byCount})
		}
	}
	xlabel := "competitor attempts per second, per competitor"
	if !byCount && counts[0] > 0 {
		xlabel += fmt.Sprintf(" (%s)", plural(counts[0], "competitor"))
	}
	ch := lineChart(lineOpts{
		title:  backendTitle(be) + ": slots lost vs competitor rate, modify in place vs re-register",
		xlabel: xlabel,
		ylabel: "slots lost per update (steals/op)",
		xTicks: cats,
		yMax:   0.01,
	}, series)
	if byCount {
		// Colour says the strategy and the dash pattern the number of
		// competitors, so the legend needs one entry per each, not per line.
		for si, st := range strategies {
			ch.addLegend("re-register, strategy="+st, (&lineStyle{color: plotutil.Color(si), width: vg.Points(1.5), shape: plotutil.Shape(si)}).thumbs()...)
		}
		for ki, k := range counts {
			style := &lineStyle{color: color.Gray{Y: 90}, width: vg.Points(1.5)}
			if ki > 0 {
				style.dashes = plotutil.Dashes(ki)
			}
			ch.addLegend(plural(k, "competitor"), style.thumbs()...)
		}
	}
	return ch
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// plotRaceWindow draws one race-window CDF per backend: of its re-register
// cases under the heaviest competition, the strategy with the median p50,
// so that the chart compares backends rather than dozens of near-equal
// strategies.
func plotRaceWindow(all []*caseSummary) (*chart, string) {
	byBackend := map[string][]*caseSummary{}
	for _, c := range family(all, "Race") {
		if c.Window == nil || len(c.Window.CDF) == 0 {
			continue
		}
		be := nameParams(c.Name)["backend"]
		byBackend[be] = append(byBackend[be], c)
	}
	if len(byBackend) == 0 {
		return nil, "no Race results with a window histogram"
	}
	pressure := func(c *caseSummary) (float64, int) {
		p := nameParams(c.Name)
		_, o := raceCategory(p)
		k, _ := strconv.Atoi(p["competitors"])
		return o, k
	}
	var series []lineSeries
	for _, be := range orderedBackends(byBackend) {
		var top []*caseSummary
		for _, c := range byBackend[be] {
			if len(top) == 0 {
				top = append(top, c)
				continue
			}
			o, k := pressure(c)
			to, tk := pressure(top[0])
			switch {
			case o > to || (o == to && k > tk):
				top = []*caseSummary{c}
			case o == to && k == tk:
				top = append(top, c)
			}
		}
		sort.Slice(top, func(i, j int) bool { return top[i].Window.P50 < top[j].Window.P50 })
		c := top[(len(top)-1)/2]
		p := nameParams(c.Name)
		label := be
		if st := p["strategy"]; st != "" {
			label += ", strategy=" + st
			if len(top) > 1 {
				label += fmt.Sprintf(" (median p50 of %d)", len(top))
			}
		}
		if cat, _ := raceCategory(p); cat == "none" {
			label += ", no competitor"
		} else {
			k, _ := strconv.Atoi(p["competitors"])
			label += fmt.Sprintf(", %s at %s", plural(k, "competitor"), cat)
		}
		s := lineSeries{label: fmt.Sprintf("%s (n=%d)", label, c.Window.Count)}
		for _, pt := range c.Window.CDF {
			s.xs = append(s.xs, pt.NS)
			s.ys = append(s.ys, pt.Fraction)
		}
		st := autoStyle(len(series))
		st.shape, st.width = nil, vg.Points(2)
		s.style = st
		series = append(series, s)
	}
	ch := lineChart(lineOpts{
		title:  "Re-register race window: holder's release to its next successful reserve (CDF, one line per backend)",
		xlabel: "window",
		ylabel: "fraction of windows <= x",
		logX:   spansDecades(series, false, 10),
		xFmt:   nsTick,
	}, series)
	ch.Y.Max = 1
	return ch, ""
}

func plotScaling(all []*caseSummary) (*chart, string) {
	series, cats := seriesBy(family(all, "Scaling"), "goroutines", func(c *caseSummary) (float64, bool) {
		if v, ok := c.Metric("ops/s"); ok {
			return v, true
		}
		return 1e9 / c.NsPerOp, c.NsPerOp > 0
	}, true)
	if len(series) == 0 {
		return nil, "no Scaling results with goroutines="
	}
	return lineChart(lineOpts{
		title:  "Reserve+release throughput vs goroutines, per alloc strategy",
		xlabel: "goroutines reserving and releasing",
		ylabel: "operations per second, all goroutines",
		xTicks: cats,
		yFmt:   siTick,
	}, series), ""
}

func plotTasks(all []*caseSummary) (*chart, string) {
	series, _ := seriesBy(family(all, "Tasks"), "tasks", metricOrNs("ns/op"), false)
	if len(series) == 0 {
		return nil, "no Tasks results with tasks="
	}
	for i := range series {
		if strings.Contains(series[i].label, "legacy") {
			st := autoStyle(i)
			st.width, st.dashes = vg.Points(3), nil
			series[i].style = st
		}
	}
	return lineChart(lineOpts{
		title:  "Per-reservation cost vs live tasks: legacy (global list walk) against the rest",
		xlabel: "live tasks holding breakpoints",
		ylabel: "time per reserve+release",
		logX:   true, logY: true,
		yFmt: nsTick,
	}, series), ""
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

// plotRegisters compares policies per backend on one figure.
func plotRegisters(unit, ylabel, title string) func([]*caseSummary) (*chart, string) {
	return func(all []*caseSummary) (*chart, string) {
		cases := family(all, "Registers")
		var groups, policies []string
		type key struct{ b, p string }
		at := map[key]float64{}
		for _, c := range cases {
			v, ok := metricOrNs(unit)(c)
			if !ok {
				continue
			}
			p := nameParams(c.Name)
			if indexOf(groups, p["backend"]) < 0 {
				groups = append(groups, p["backend"])
			}
			if indexOf(policies, p["policy"]) < 0 {
				policies = append(policies, p["policy"])
			}
			at[key{p["backend"], p["policy"]}] = v
		}
		if len(groups) == 0 {
			return nil, "no Registers results with " + unit
		}
		sort.Strings(policies)
		var series []barSeries
		for _, pol := range policies {
			s := barSeries{label: registersPolicy(pol)}
			for _, g := range groups {
				v, ok := at[key{g, pol}]
				if !ok {
					v = math.NaN()
				}
				s.vals, s.lo, s.hi = append(s.vals, v), append(s.lo, math.NaN()), append(s.hi, math.NaN())
			}
			series = append(series, s)
		}
		o := barOpts{title: title, ylabel: ylabel}
		if unit == "ns/op" {
			o.logY, o.yFmt = barSpan(series) > 100, nsTick
		}
		return groupedBars(o, groups, series), ""
	}
}

// barSpan is the ratio of the largest to the smallest positive bar.
func barSpan(series []barSeries) float64 {
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		for _, v := range s.vals {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	return hi / lo
}

func plotKernel(all []*caseSummary) (*chart, string) {
	var groups []string
	goS := barSeries{label: "Go harness (usecs/op)"}
	perfS := barSeries{label: "perf bench breakpoint (perf-usecs/op)"}
	for _, c := range append(family(all, "KernelThread"), family(all, "KernelEnable")...) {
		g, gok := c.Metric("usecs/op")
		pf, pok := c.Metric("perf-usecs/op")
		if !gok && !pok {
			continue
		}
		if !gok {
			g = math.NaN()
		}
		if !pok {
			pf = math.NaN()
		}
		groups = append(groups, perfBenchArgs(c.Name))
		goS.vals, goS.lo, goS.hi = append(goS.vals, g), append(goS.lo, math.NaN()), append(goS.hi, math.NaN())
		perfS.vals, perfS.lo, perfS.hi = append(perfS.vals, pf), append(perfS.lo, math.NaN()), append(perfS.hi, math.NaN())
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
	fam, _, _ := strings.Cut(name, "/")
	sub := map[string]string{"KernelThread": "thread", "KernelEnable": "enable"}[fam]
	if sub == "" {
		sub = fam
	}
	flags := map[string]string{"breakpoints": "-b", "parallelism": "-p", "threads": "-t", "passive": "-p", "active": "-a"}
	// The subcommand goes on a line of its own: eight "thread -b 4 -p 2 -t
	// 10" labels side by side overlap.
	parts := []string{sub + "\n"}
	for _, el := range strings.Split(name, "/")[1:] {
		k, v, ok := strings.Cut(el, "=")
		if f, known := flags[k]; ok && known {
			parts = append(parts, f, v)
		} else {
			parts = append(parts, el)
		}
	}
	return strings.Replace(strings.Join(parts, " "), "\n ", "\n", 1)
}

func plotExclusion(all []*caseSummary) (*chart, string) {
	series, _ := seriesBy(family(all, "Exclusion"), "tasks", metricOrNs("ns/op"), false)
	if len(series) == 0 {
		return nil, "no Exclusion results with tasks="
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

// plotThreads draws a metric of a multi-threaded family against threads=,
// one line per policy; yFmt labels the y ticks (nil: plain numbers).
func plotThreads(fam, unit, ylabel, title string, yFmt func(float64) string) func([]*caseSummary) (*chart, string) {
	return func(all []*caseSummary) (*chart, string) {
		series, _ := seriesBy(family(all, fam), "threads", metricOrNs(unit), false)
		if len(series) == 0 {
			return nil, fmt.Sprintf("no %s results with threads= and %s", fam, unit)
		}
		// Counts that grow with the threads (writes: 5 per thread) read as
		// a straight line on log-log axes; a log axis would drop zeros.
		positive := true
		for _, s := range series {
			positive = positive && slices.Min(s.ys) > 0
		}
		return lineChart(lineOpts{
			title:  title,
			xlabel: "threads of the tracee",
			ylabel: ylabel,
			logX:   spansDecades(series, false, 10),
			logY:   positive && spansDecades(series, true, 100),
			yFmt:   yFmt,
		}, series), ""
	}
}
