package charts

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strconv"

	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// RaceStealsStem is the file stem of one backend's steal chart (and
// place's, when the run has competitors on either CPU); the report links it.
func RaceStealsStem(backend, place string) string {
	if place == "" {
		return "race-steals-" + backend
	}
	return "race-steals-" + backend + "-" + place
}

// raceCategory orders a Race case's competitor rate: -1 without a
// competitor, +Inf for an unlimited one (rate=max), else its rate.
func raceCategory(p map[string]string) (label string, order float64) {
	if p[bench.ParamCompetitors] == "0" {
		return "none", -1
	}
	if r := p[bench.ParamRate]; r != "max" {
		if v, err := strconv.ParseFloat(r, 64); err == nil {
			return siTick(v) + "/s", v
		}
		return r, math.MaxFloat64
	}
	return "max", math.Inf(1)
}

// plotRaceSteals draws a steal chart per backend and placement of the
// competitor; the cases without a competitor give each chart's baseline
// in its axis label instead of a chart of one point.
func plotRaceSteals(d *plotData) ([]*chart, string) {
	type key struct{ be, place string }
	by := map[key][]*runfile.Case{}
	backends := map[string]bool{}
	baseline := map[string]float64{}
	for _, c := range runfile.Family(d.all, "Race") {
		if _, ok := c.Metric(bench.MetricSteals); !ok {
			continue
		}
		p := bench.NameParams(c.Name)
		if p[bench.ParamCompetitors] == "0" {
			baseline[p[bench.ParamBackend]] = math.Max(baseline[p[bench.ParamBackend]], runfile.MustMetric(c, bench.MetricSteals))
			continue
		}
		by[key{p[bench.ParamBackend], p[bench.ParamPlace]}] = append(by[key{p[bench.ParamBackend], p[bench.ParamPlace]}], c)
		backends[p[bench.ParamBackend]] = true
	}
	if len(by) == 0 {
		return nil, "no Race results with a competitor and steals/op"
	}
	var out []*chart
	for _, be := range present.OrderedBackends(backends) {
		var places []string
		for k := range by {
			if k.be == be {
				places = append(places, k.place)
			}
		}
		sort.Strings(places)
		for _, pl := range places {
			base, ok := baseline[be]
			ch := raceStealsChart(be, pl, by[key{be, pl}], base, ok)
			ch.stem = RaceStealsStem(be, pl)
			out = append(out, ch)
		}
	}
	return out, ""
}

// raceStealsChart draws one backend's steals per update against the
// competitor's achieved attempt rate: a line per strategy (colour) and
// competitor count (dashes) over the paced rates, the unlimited
// competitors' points unjoined (their rate was not chosen but reached,
// and no case was measured between), and modify in place as dots.
func raceStealsChart(be, place string, cases []*runfile.Case, baseline float64, hasBaseline bool) *chart {
	type line struct {
		strategy string
		k        int
	}
	type pt struct {
		x  float64
		iv stats.Interval
	}
	paced, unlimited := map[line][]pt{}, map[line][]pt{}
	var modify []pt
	var strategies []string
	var counts []int
	for _, c := range cases {
		p := bench.NameParams(c.Name)
		x, ok := c.Metric(bench.MetricRateAchieved)
		if !ok || x <= 0 {
			continue
		}
		iv := runfile.StealsIv(c)
		switch p[bench.ParamMode] {
		case "modify":
			modify = append(modify, pt{x, iv})
		case "reregister":
			if !slices.Contains(strategies, p[bench.ParamStrategy]) {
				strategies = append(strategies, p[bench.ParamStrategy])
			}
			k, _ := strconv.Atoi(p[bench.ParamCompetitors])
			if !slices.Contains(counts, k) {
				counts = append(counts, k)
			}
			l := line{p[bench.ParamStrategy], k}
			if p[bench.ParamRate] == "max" {
				unlimited[l] = append(unlimited[l], pt{x, iv})
			} else {
				paced[l] = append(paced[l], pt{x, iv})
			}
		}
	}
	slices.Sort(counts)
	toSeries := func(pts []pt) ([]float64, []float64, []stats.Interval) {
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
		var xs, ys []float64
		var ivs []stats.Interval
		for _, p := range pts {
			xs, ys, ivs = append(xs, p.x), append(ys, p.iv.Median), append(ivs, p.iv)
		}
		return xs, ys, ivs
	}
	var series []lineSeries
	if len(modify) > 0 {
		xs, ys, ivs := toSeries(modify)
		label := "modify in place"
		if len(strategies) > 1 {
			label += " (every strategy, dots)"
		}
		series = append(series, lineSeries{label: label, xs: xs, ys: ys, ivs: ivs,
			style: &lineStyle{color: color.Black, shape: draw.CircleGlyph{}}})
	}
	anyUnlimited := false
	for si, st := range strategies {
		for ki, k := range counts {
			style := &lineStyle{color: plotutil.Color(si), width: vg.Points(1.5), shape: plotutil.Shape(si), dashes: plotutil.Dashes(ki)}
			if pts := paced[line{st, k}]; len(pts) > 0 {
				xs, ys, ivs := toSeries(pts)
				series = append(series, lineSeries{xs: xs, ys: ys, ivs: ivs, style: style, noLegend: true})
			}
			if pts := unlimited[line{st, k}]; len(pts) > 0 {
				anyUnlimited = true
				dots := *style
				dots.width = 0
				xs, ys, ivs := toSeries(pts)
				series = append(series, lineSeries{xs: xs, ys: ys, ivs: ivs, style: &dots, noLegend: true})
			}
		}
	}
	xlabel := "competitor attempts per second, as achieved (each asks for a slot on the holder's CPU)"
	if len(counts) == 1 {
		xlabel += fmt.Sprintf(", %s", present.Plural(counts[0], "competitor"))
	}
	if hasBaseline {
		xlabel += fmt.Sprintf("; with no competitor %s steals/op", present.TrimFloat(baseline))
	}
	// Steal rates run from none to all: a log axis whenever any is above
	// 0, so that 1e-4 does not read as 0 beside 0.9, zeros below its break.
	logY := false
	for _, s := range series {
		logY = logY || !allZero(s.ys)
	}
	title := backendTitle(be) + ": slots lost per update vs competitor rate"
	if place != "" {
		title += ", " + present.PlaceLabel(place)
	}
	ch := lineChart(lineOpts{
		title:     title,
		xlabel:    xlabel,
		ylabel:    "slots lost per update",
		yMax:      0.01,
		logY:      logY,
		zeroFloor: true,
		logX:      true,
		xFmt:      siTick,
	}, series)
	// Colour says the strategy and the dash pattern the number of
	// competitors, so the legend needs one entry per each, not per line.
	for si, st := range strategies {
		label := "re-register"
		if len(strategies) > 1 {
			label += ", strategy=" + st
		}
		ch.addLegend(label, (&lineStyle{color: plotutil.Color(si), width: vg.Points(1.5), shape: plotutil.Shape(si)}).thumbs()...)
	}
	if len(counts) > 1 {
		for ki, k := range counts {
			ch.addLegend(present.Plural(k, "competitor"), (&lineStyle{color: color.Gray{Y: 90}, width: vg.Points(1.5), dashes: plotutil.Dashes(ki)}).thumbs()...)
		}
	}
	if anyUnlimited {
		ch.addLegend("unjoined markers: unlimited competitors (rate=max), at the rate they reached", (&lineStyle{color: color.Gray{Y: 90}, shape: draw.CircleGlyph{}}).thumbs()...)
	}
	ch.whiskersLast()
	return ch
}

func hasMetric(c *runfile.Case, unit string) bool {
	_, ok := c.Metric(unit)
	return ok
}

// plotRaceWindow draws one race-window CDF per backend: its re-register
// case that lost the most slots, preferring a competitor on the other
// CPU (where windows are lost), so the chart shows the windows that
// matter rather than those of a case that lost none. The x axis ends
// past the largest p99.9: the few longest windows would otherwise
// stretch it decades past the data.
func plotRaceWindow(d *plotData) (*chart, string) {
	best := map[string]*runfile.Case{}
	score := func(c *runfile.Case) (int, float64) {
		s, _ := c.Metric(bench.MetricSteals)
		other := 0
		if bench.NameParams(c.Name)[bench.ParamPlace] == "other" {
			other = 1
		}
		return other, s
	}
	for _, c := range runfile.Family(d.all, "Race") {
		p := bench.NameParams(c.Name)
		if c.Window == nil || len(c.Window.CDF) == 0 || p[bench.ParamMode] != "reregister" {
			continue
		}
		b := best[p[bench.ParamBackend]]
		if b == nil {
			best[p[bench.ParamBackend]] = c
			continue
		}
		o, s := score(c)
		bo, bs := score(b)
		if o > bo || (o == bo && s > bs) {
			best[p[bench.ParamBackend]] = c
		}
	}
	if len(best) == 0 {
		return nil, "no re-register Race results with a window histogram"
	}
	var series []lineSeries
	xmax := 0.0
	for _, be := range present.OrderedBackends(best) {
		c := best[be]
		p := bench.NameParams(c.Name)
		label := be
		if st := p[bench.ParamStrategy]; st != "" {
			label += ", strategy=" + st
		}
		k, _ := strconv.Atoi(p[bench.ParamCompetitors])
		cat, _ := raceCategory(p)
		label += fmt.Sprintf(", %s at %s", present.Plural(k, "competitor"), cat)
		if pl := p[bench.ParamPlace]; pl != "" {
			label += ", place=" + pl
		}
		if s, ok := c.Metric(bench.MetricSteals); ok {
			label += ", " + present.TrimFloat(s) + " steals/op"
		}
		s := lineSeries{label: fmt.Sprintf("%s (%d windows)", label, c.Window.Count)}
		for _, pt := range c.Window.CDF {
			s.xs = append(s.xs, pt.NS)
			s.ys = append(s.ys, pt.Fraction)
			if pt.Fraction <= 0.999 || xmax == 0 {
				xmax = math.Max(xmax, pt.NS)
			}
		}
		st := autoStyle(len(series))
		st.shape, st.width = nil, vg.Points(2)
		s.style = st
		series = append(series, s)
	}
	ch := lineChart(lineOpts{
		title:  "Re-register race window: holder's release to its next successful reserve (CDF, per backend the case that lost most)",
		xlabel: "window (the axis ends past the largest p99.9)",
		ylabel: "fraction of windows <= x",
		logX:   spansDecades(series, false, 10),
		xFmt:   nsTick,
	}, series)
	ch.Y.Max = 1
	if ch.X.Max > 2*xmax {
		ch.X.Max = 2 * xmax
	}
	return ch, ""
}
