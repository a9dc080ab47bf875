package charts

import (
	"image/color"
	"maps"
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

	"bpbench/bench"
	"bpbench/runfile"
	"bpbench/stats"
)

// barSeries is one colour of a grouped chart; NaN marks a missing value,
// an interval with N < 2 no whisker.
type barSeries struct {
	label string
	vals  []float64
	ivs   []stats.Interval
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
	var ivs []stats.Interval
	single := 0 // values without an interval
	for _, s := range series {
		for i, v := range s.vals {
			xs := []float64{v}
			if i < len(s.ivs) && s.ivs[i].N == 1 {
				single++
			}
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
	} else if single > 0 {
		ch.addLegend("no whiskers: each point is a single value, with no interval (--count 3 or more gives one)")
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	return ch
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

// lineSeries is one line: points sorted by x, each with an optional
// interval (N < 2: no whisker).
type lineSeries struct {
	label  string
	xs, ys []float64
	ivs    []stats.Interval
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
	// zeroFloor draws zeros on a log y axis in a band below its lowest
	// labelled decade, as down-pointing triangles under a dashed break,
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

// logBreak is the lowest labelled value of a log axis that draws zeros
// below it: the power of ten at or below the smallest positive value (or
// interval bound) of series. Zeros sit at logBreak/zeroBand, the axis
// ends below them.
func logBreak(series []lineSeries) float64 {
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
	return math.Pow10(int(math.Floor(math.Log10(lo))))
}

// zeroBand is how far below a log axis' break its zeros are drawn.
const zeroBand = 4

func lineChart(o lineOpts, series []lineSeries) *chart {
	ch := newChart(o.title, o.xlabel, o.ylabel)
	p := ch.Plot
	series = mergeEqual(series)
	floor, brk := 0.0, 0.0
	if o.logY && o.zeroFloor && hasZero(series) {
		brk = logBreak(series)
		floor = brk / zeroBand
	}
	zeros := false
	ymax := 0.0
	xset := map[float64]bool{}
	var ivs []stats.Interval
	single := 0 // points without an interval
	for i, s := range series {
		xys := make(plotter.XYs, 0, len(s.xs))
		var zs plotter.XYs
		var wk []whiskerPt
		for j := range s.xs {
			y := s.ys[j]
			if o.logY && y <= 0 && floor > 0 {
				y = floor
				zs = append(zs, plotter.XY{X: s.xs[j], Y: y})
			}
			if (o.logX && s.xs[j] <= 0) || (o.logY && y <= 0) {
				continue // a log axis cannot place it
			}
			xys = append(xys, plotter.XY{X: s.xs[j], Y: y})
			if j < len(s.ivs) && s.ivs[j].N == 1 {
				single++
			}
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
		// Two points on a log x axis, joined, draw a power law between
		// them that nobody measured: they stay unjoined.
		if o.logX && len(xys) == 2 && st.width > 0 {
			dots := *st
			dots.width = 0
			if dots.shape == nil {
				dots.shape = draw.CircleGlyph{}
			}
			st = &dots
		}
		if st.width > 0 {
			p.Add(l)
		}
		if len(wk) > 0 {
			p.Add(&whiskerSet{pts: wk, logY: o.logY})
		}
		if st.shape != nil {
			var pts plotter.XYs
			for _, xy := range xys {
				if floor == 0 || xy.Y != floor {
					pts = append(pts, xy)
				}
			}
			if sc, err := plotter.NewScatter(pts); err == nil && len(pts) > 0 {
				sc.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(3), Shape: st.shape}
				p.Add(sc)
			}
		}
		if len(zs) > 0 {
			zeros = true
			if sc, err := plotter.NewScatter(zs); err == nil {
				sc.GlyphStyle = draw.GlyphStyle{Color: st.color, Radius: vg.Points(4), Shape: downTriangle{}}
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
	} else if single > 0 {
		ch.addLegend("no whiskers: each point is a single value, with no interval (--count 3 or more gives one)")
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
		p.Y.Min = floor / 1.5
		p.Y.Max = math.Max(p.Y.Max, ymax) * 1.3
		p.Y.Tick.Marker = aboveBreak{p.Y.Tick.Marker, brk}
		brkLine := rule{at: brk / math.Sqrt(zeroBand), style: draw.LineStyle{Color: color.Gray{Y: 120}, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(2), vg.Points(2)}}}
		p.Add(brkLine)
		if zeros {
			ch.addLegend("zero (below the dashed break: a log scale has no 0)", zeroThumb{})
		}
	default:
		p.Y.Max *= 1.3
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
// parameters that differ between lines. Every point carries y's interval.
//
// With categorical, or when an x value is not a number, x positions are
// indexes into the returned categories.
func seriesBy(cases []*runfile.Case, xKey string, y func(*runfile.Case) (stats.Interval, bool), categorical bool) (series []lineSeries, categories []string) {
	type pt struct {
		x  string
		iv stats.Interval
	}
	byKey := map[string][]pt{}
	var keys []string
	keyParams := map[string]map[string]string{}
	for _, c := range cases {
		xv, ok := bench.NameParams(c.Name)[xKey]
		if !ok {
			continue
		}
		yv, ok := y(c)
		if !ok || math.IsNaN(yv.Median) {
			continue
		}
		rest := map[string]string{}
		for k, v := range bench.NameParams(c.Name) {
			if k != xKey {
				rest[k] = v
			}
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rest)) {
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
		categories = runfile.SortedCategories(catSet)
	}
	for _, k := range keys {
		var parts []string
		for _, pk := range slices.Sorted(maps.Keys(keyParams[k])) {
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
func metricIv(unit string) func(*runfile.Case) (stats.Interval, bool) {
	return func(c *runfile.Case) (stats.Interval, bool) {
		if unit == bench.UnitNsPerOp {
			return runfile.IvOf(c, bench.UnitNsPerOp), c.NsPerOp > 0
		}
		if _, ok := c.Metric(unit); !ok {
			return stats.Interval{}, false
		}
		return runfile.IvOf(c, unit), true
	}
}
