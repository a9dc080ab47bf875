package cli

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

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

// whiskersLast moves the legend entry that explains the whiskers after
// every series' entry.
func (c *chart) whiskersLast() {
	for i, it := range c.legend {
		if strings.HasPrefix(it.label, "whiskers:") {
			c.legend = append(append(c.legend[:i:i], c.legend[i+1:]...), it)
			return
		}
	}
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
// would otherwise pad the data area. On a log axis it labels a round value
// near the top when the last power of ten lies far below it, so the top
// value always has a tick label.
type unitTicks struct {
	plot.Ticker
	format func(float64) string
	log    bool
}

func (u unitTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	top := math.Inf(-1)
	for _, t := range u.Ticker.Ticks(lo, hi) {
		if t.Value < lo*(1-1e-9) || t.Value > hi*(1+1e-9) {
			continue
		}
		if t.Label != "" {
			t.Label = u.format(t.Value)
			top = math.Max(top, t.Value)
		}
		out = append(out, t)
	}
	if u.log && hi > 0 {
		if v := roundDown125(hi); v > top*2.5 && v >= lo {
			out = append(out, plot.Tick{Value: v, Label: u.format(v)})
		}
	}
	return out
}

// roundDown125 is the largest 1, 2 or 5 times a power of ten <= v.
func roundDown125(v float64) float64 {
	mag := math.Pow10(int(math.Floor(math.Log10(v))))
	for _, m := range []float64{5, 2, 1} {
		if m*mag <= v*(1+1e-9) {
			return m * mag
		}
	}
	return mag
}

// setAxis configures a numeric axis: a log scale (named in its label) or a
// linear one, ticks labelled by format (nil: plain numbers).
func setAxis(a *plot.Axis, log bool, format func(float64) string) {
	if format == nil {
		format = plainTick
	}
	if log {
		a.Scale = plot.LogScale{}
		a.Tick.Marker = unitTicks{plot.LogTicks{Prec: -1}, format, true}
		a.Label.Text += " (log scale)"
		return
	}
	a.Tick.Marker = unitTicks{linearTicks{}, format, false}
}

// linearStep is the tick step of a linear axis over [lo, hi]: about six
// round values (1, 2, 2.5 or 5 times a power of ten).
func linearStep(lo, hi float64) float64 {
	raw := (hi - lo) / 6
	mag := math.Pow10(int(math.Floor(math.Log10(raw))))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

// niceMax rounds the top of a linear axis from 0 up to its next tick, so
// that the top of the axis is labelled.
func niceMax(hi float64) float64 {
	if !(hi > 0) {
		return 1
	}
	step := linearStep(0, hi)
	return math.Ceil(hi/step-1e-9) * step
}

// linearTicks labels about six round values; gonum's DefaultTicks labels
// as few as two.
type linearTicks struct{}

func (linearTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: "-"}}
	}
	step := linearStep(lo, hi)
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

// --- whiskers ---

var whiskerStyle = draw.LineStyle{Color: color.Black, Width: vg.Points(1)}

func drawWhisker(c *draw.Canvas, x, halfCap, ylo, yhi vg.Length) {
	c.StrokeLines(whiskerStyle, c.ClipLinesY([]vg.Point{{X: x, Y: ylo}, {X: x, Y: yhi}})...)
	c.StrokeLines(whiskerStyle, c.ClipLinesY([]vg.Point{{X: x - halfCap, Y: ylo}, {X: x + halfCap, Y: ylo}})...)
	c.StrokeLines(whiskerStyle, c.ClipLinesY([]vg.Point{{X: x - halfCap, Y: yhi}, {X: x + halfCap, Y: yhi}})...)
}

// whiskerThumb is the legend entry that says what the whiskers span.
type whiskerThumb struct{}

func (whiskerThumb) Thumbnail(c *draw.Canvas) {
	drawWhisker(c, (c.Min.X+c.Max.X)/2, (c.Max.X-c.Min.X)/4, c.Min.Y, c.Max.Y)
}

// whiskerNote says what the whiskers of a chart span, from the intervals
// drawn; "" when none rests on more than one value.
func whiskerNote(ivs []Interval) string {
	type src struct {
		n    int
		from string
		cov  float64
	}
	var low []src
	any := false
	for _, iv := range ivs {
		if iv.N < 2 {
			continue
		}
		any = true
		if !iv.Resolved() {
			s := src{iv.N, orRuns(iv.From), math.Round(100 * iv.Coverage)}
			if !slices.Contains(low, s) {
				low = append(low, s)
			}
		}
	}
	if !any {
		return ""
	}
	if len(low) == 0 {
		for _, iv := range ivs {
			if strings.Contains(iv.From, "Wilson") {
				return "whiskers: 95% Wilson interval from the counts"
			}
		}
		return "whiskers: 95% interval of the median"
	}
	var parts []string
	for _, s := range low {
		parts = append(parts, fmt.Sprintf("min–max of %d %s covers %.0f%%", s.n, s.from, s.cov))
	}
	if len(low) == 1 && len(ivs) > 0 && allLow(ivs) {
		return "whiskers: " + parts[0] + " (fewer than 6 values cannot reach 95%)"
	}
	return "whiskers: 95% interval of the median; " + strings.Join(parts, ", ")
}

func allLow(ivs []Interval) bool {
	for _, iv := range ivs {
		if iv.N > 1 && iv.Resolved() {
			return false
		}
	}
	return true
}

// --- bar and dot charts ---

// barSeries is one colour of a grouped chart; NaN marks a missing value,
// an interval with N < 2 no whisker.
type barSeries struct {
	label string
	vals  []float64
	ivs   []Interval
}

// barOpts shapes a grouped chart.
type barOpts struct {
	title, ylabel string
	// logY puts the values on a log axis (ptrace and perf cost
	// microseconds, the simulator tens of nanoseconds). A bar on a log
	// axis would start from an arbitrary baseline, so values are dots.
	logY bool
	yFmt func(float64) string
}

// groupedBars draws bars from 0 (or, on a log axis, dots) side by side per
// group, with a whisker wherever a value has an interval.
func groupedBars(o barOpts, groups []string, series []barSeries) *chart {
	ch := newChart(o.title, "", o.ylabel)
	p := ch.Plot
	lo, hi := math.Inf(1), 0.0
	var ivs []Interval
	for _, s := range series {
		for i, v := range s.vals {
			xs := []float64{v}
			if i < len(s.ivs) && s.ivs[i].N > 1 {
				xs = append(xs, s.ivs[i].Lo, s.ivs[i].Hi)
				ivs = append(ivs, s.ivs[i])
			}
			for _, x := range xs {
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
		// below the lowest dot.
		p.Y.Min = math.Min(lo/1.5, math.Pow10(int(math.Floor(math.Log10(lo)))))
		p.Y.Max = hi * 1.3
	} else {
		p.Y.Min, p.Y.Max = 0, niceMax(hi*1.05)
	}
	for i, s := range series {
		b := &bars{series: s, index: i, n: len(series), dots: o.logY, color: plotutil.Color(i), shape: plotutil.Shape(i)}
		p.Add(b)
		ch.addLegend(s.label, b)
	}
	if note := whiskerNote(ivs); note != "" {
		ch.addLegend(note, whiskerThumb{})
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	return ch
}

// bars is one barSeries of a grouped chart, drawn as bars from 0 or, on a
// log axis, as dots.
type bars struct {
	series   barSeries
	index, n int
	dots     bool
	color    color.Color
	shape    draw.GlyphDrawer
}

func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	width := 0.8 / float64(b.n)
	base := trY(math.Max(p.Y.Min, 0))
	for g, v := range b.series.vals {
		if math.IsNaN(v) || (b.dots && v <= 0) {
			continue
		}
		x := float64(g) - 0.4 + width*(float64(b.index)+0.5)
		x0, x1 := trX(x-width/2*0.9), trX(x+width/2*0.9)
		top := trY(v)
		if b.dots {
			c.DrawGlyph(draw.GlyphStyle{Color: b.color, Radius: vg.Points(4), Shape: b.shape}, vg.Point{X: trX(x), Y: top})
		} else {
			c.FillPolygon(b.color, c.ClipPolygonY([]vg.Point{{X: x0, Y: base}, {X: x1, Y: base}, {X: x1, Y: top}, {X: x0, Y: top}}))
		}
		if g < len(b.series.ivs) {
			if iv := b.series.ivs[g]; iv.N > 1 && (!b.dots || iv.Lo > 0) {
				drawWhisker(&c, trX(x), min((x1-x0)/4, vg.Points(5)), trY(iv.Lo), trY(iv.Hi))
			}
		}
	}
}

// Thumbnail draws the legend swatch.
func (b *bars) Thumbnail(c *draw.Canvas) {
	if b.dots {
		c.DrawGlyph(draw.GlyphStyle{Color: b.color, Radius: vg.Points(4), Shape: b.shape}, c.Center())
		return
	}
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(b.color, pts)
}

// barSpan is the ratio of the largest to the smallest positive value.
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

// --- line charts ---

// lineSeries is one line: points sorted by x, each with an optional
// interval (N < 2: no whisker).
type lineSeries struct {
	label  string
	xs, ys []float64
	ivs    []Interval
	// style, when nil, takes colour, dashes and marker from the series'
	// position.
	style    *lineStyle
	noLegend bool
}

// lineStyle is how one line is drawn; a nil shape draws no markers, a
// zero width no line (dots only).
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
	var out []plot.Thumbnailer
	if st.width > 0 {
		out = append(out, &plotter.Line{LineStyle: draw.LineStyle{Color: st.color, Width: st.width, Dashes: st.dashes}})
	}
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
	// zeroFloor draws zeros on a log y axis at its floor, labelled "0",
	// instead of dropping them.
	zeroFloor bool
}

// mergeEqual folds a series whose points equal an earlier one's into it,
// naming both in its label, so that no line hides under another.
func mergeEqual(series []lineSeries) []lineSeries {
	var out []lineSeries
outer:
	for _, s := range series {
		for i := range out {
			if slicesEqualF(out[i].xs, s.xs) && slicesEqualF(out[i].ys, s.ys) && len(s.xs) > 0 && !s.noLegend && !out[i].noLegend {
				out[i].label = strings.TrimSuffix(out[i].label, " (identical)") + " = " + s.label + " (identical)"
				continue outer
			}
		}
		out = append(out, s)
	}
	return out
}

func slicesEqualF(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-9*math.Max(1, math.Abs(a[i])) {
			return false
		}
	}
	return true
}

func hasZero(series []lineSeries) bool {
	for _, s := range series {
		for _, y := range s.ys {
			if y <= 0 {
				return true
			}
		}
	}
	return false
}

// logFloor is the bottom of a log axis where zeros are drawn: a power of
// ten below the smallest positive value (or interval bound) of series.
func logFloor(series []lineSeries) float64 {
	lo := math.Inf(1)
	for _, s := range series {
		for j, y := range s.ys {
			if y > 0 {
				lo = math.Min(lo, y)
			}
			if j < len(s.ivs) && s.ivs[j].N > 1 && s.ivs[j].Lo > 0 {
				lo = math.Min(lo, s.ivs[j].Lo)
			}
		}
	}
	if math.IsInf(lo, 1) {
		return 1
	}
	// A decade below the lowest value's, so that a labelled power of ten
	// separates the zeros from the smallest value.
	return math.Pow10(int(math.Floor(math.Log10(lo))) - 1)
}

func lineChart(o lineOpts, series []lineSeries) *chart {
	ch := newChart(o.title, o.xlabel, o.ylabel)
	p := ch.Plot
	series = mergeEqual(series)
	floor := 0.0
	if o.logY && o.zeroFloor && hasZero(series) {
		floor = logFloor(series)
	}
	ymax := 0.0
	xset := map[float64]bool{}
	var ivs []Interval
	for i, s := range series {
		xys := make(plotter.XYs, 0, len(s.xs))
		var wk []whiskerPt
		for j := range s.xs {
			y := s.ys[j]
			if o.logY && y <= 0 && floor > 0 {
				y = floor
			}
			if (o.logX && s.xs[j] <= 0) || (o.logY && y <= 0) {
				continue // a log axis cannot place it
			}
			xys = append(xys, plotter.XY{X: s.xs[j], Y: y})
			ymax = math.Max(ymax, y)
			xset[s.xs[j]] = true
			if j < len(s.ivs) && s.ivs[j].N > 1 {
				iv := s.ivs[j]
				ivs = append(ivs, iv)
				ymax = math.Max(ymax, iv.Hi)
				lo := iv.Lo
				if o.logY && lo <= 0 {
					lo = math.Max(floor, y)
				}
				wk = append(wk, whiskerPt{s.xs[j], lo, iv.Hi})
			}
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
		if st.width > 0 {
			p.Add(l)
		}
		if len(wk) > 0 {
			p.Add(&whiskerSet{pts: wk, logY: o.logY})
		}
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
	if note := whiskerNote(ivs); note != "" {
		ch.addLegend(note, whiskerThumb{})
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
	switch {
	case !o.logY:
		p.Y.Min = 0
		p.Y.Max = niceMax(math.Max(ymax*1.05, o.yMax))
	case floor > 0:
		p.Y.Min = floor
		p.Y.Max = math.Max(p.Y.Max, ymax) * 1.3
		fm := yFmtOr(o.yFmt)
		p.Y.Tick.Marker = floorTicks{p.Y.Tick.Marker, floor, fm}
	default:
		p.Y.Max *= 1.3
	}
	return ch
}

func yFmtOr(f func(float64) string) func(float64) string {
	if f == nil {
		return plainTick
	}
	return f
}

// floorTicks labels the floor of a log axis "0": zeros are drawn there.
type floorTicks struct {
	plot.Ticker
	floor  float64
	format func(float64) string
}

func (f floorTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range f.Ticker.Ticks(lo, hi) {
		if math.Abs(t.Value-f.floor) < f.floor*1e-9 {
			continue
		}
		out = append(out, t)
	}
	return append(out, plot.Tick{Value: f.floor, Label: "0"})
}

// whiskerPt is one whisker of a line chart.
type whiskerPt struct{ x, lo, hi float64 }

// whiskerSet draws a line's whiskers.
type whiskerSet struct {
	pts  []whiskerPt
	logY bool
}

func (ws *whiskerSet) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, w := range ws.pts {
		if ws.logY && (w.lo <= 0 || w.hi <= 0) {
			continue
		}
		lo, hi := math.Max(w.lo, p.Y.Min), math.Min(w.hi, p.Y.Max)
		if hi < lo {
			continue
		}
		drawWhisker(&c, trX(w.x), vg.Points(3), trY(lo), trY(hi))
	}
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
// parameters that differ between lines. Every point carries y's interval.
//
// With categorical, or when an x value is not a number, x positions are
// indexes into the returned categories.
func seriesBy(cases []*caseSummary, xKey string, y func(*caseSummary) (Interval, bool), categorical bool) (series []lineSeries, categories []string) {
	type pt struct {
		x  string
		iv Interval
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
		if !ok || math.IsNaN(yv.Median) {
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
		sort.SliceStable(pts, func(i, j int) bool {
			a, _ := strconv.ParseFloat(pts[i].x, 64)
			b, _ := strconv.ParseFloat(pts[j].x, 64)
			if !numeric {
				a, b = float64(indexOf(categories, pts[i].x)), float64(indexOf(categories, pts[j].x))
			}
			return a < b
		})
		for _, p := range pts {
			x, err := strconv.ParseFloat(p.x, 64)
			if !numeric {
				x, err = float64(indexOf(categories, p.x)), nil
			}
			if err == nil {
				s.xs = append(s.xs, x)
				s.ys = append(s.ys, p.iv.Median)
				s.ivs = append(s.ivs, p.iv)
			}
		}
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

// metricIv returns a figure's interval, with "ns/op" meaning NsPerOp.
func metricIv(unit string) func(*caseSummary) (Interval, bool) {
	return func(c *caseSummary) (Interval, bool) {
		if unit == "ns/op" {
			return ivOf(c, "ns/op"), c.NsPerOp > 0
		}
		if _, ok := c.Metric(unit); !ok {
			return Interval{}, false
		}
		return ivOf(c, unit), true
	}
}
