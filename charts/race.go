package charts

import (
	"fmt"
	"image/color"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"

	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

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

// raceCategory places a Race case on a nominal competitor-rate axis:
// "none" without a competitor, "max" for an unthrottled one (rate=max, or
// rate=0 in results written before rate=max existed), else its rate;
// order sorts the categories.
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

func plotRaceSteals(d *plotData) ([]*chart, string) {
	type key struct{ be, place string }
	by := map[key][]*runfile.Case{}
	backends := map[string]bool{}
	for _, c := range runfile.Family(d.all, "Race") {
		if _, ok := c.Metric("steals/op"); ok {
			p := runfile.NameParams(c.Name)
			by[key{p["backend"], p["place"]}] = append(by[key{p["backend"], p["place"]}], c)
			backends[p["backend"]] = true
		}
	}
	if len(by) == 0 {
		return nil, "no Race results with steals/op"
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
			ch := raceStealsChart(be, pl, by[key{be, pl}])
			ch.stem = RaceStealsStem(be, pl)
			out = append(out, ch)
		}
	}
	return out, ""
}

// raceStealsChart draws one backend's steals per update against the
// competitor's achieved attempt rate: a line per strategy (and competitor
// count) for re-register, and the modify-in-place cases of every strategy
// as dots. Without achieved rates (older results) the x axis is the
// nominal rate, as categories.
func raceStealsChart(be, place string, cases []*runfile.Case) *chart {
	achieved, rateUnit := true, ""
	for _, c := range cases {
		if runfile.NameParams(c.Name)["competitors"] == "0" {
			continue
		}
		switch {
		case hasMetric(c, "rate-achieved/s"):
			rateUnit = "rate-achieved/s"
		case hasMetric(c, "competitor-attempts/s"):
			if rateUnit == "" {
				rateUnit = "competitor-attempts/s"
			}
		default:
			achieved = false
		}
	}
	if rateUnit == "" {
		achieved = false
	}
	// Nominal categories, for the fallback axis.
	order := map[string]float64{}
	for _, c := range cases {
		l, o := raceCategory(runfile.NameParams(c.Name))
		order[l] = o
	}
	cats := slices.Sorted(maps.Keys(order))
	sort.SliceStable(cats, func(i, j int) bool { return order[cats[i]] < order[cats[j]] })
	xOf := func(c *runfile.Case) (float64, bool) {
		p := runfile.NameParams(c.Name)
		if !achieved {
			l, _ := raceCategory(p)
			return float64(indexOf(cats, l)), true
		}
		if p["competitors"] == "0" {
			return 0, false // no competitor: no rate to place it at
		}
		v, ok := c.Metric(rateUnit)
		return v, ok && v > 0
	}

	type line struct {
		strategy string
		k        int
	}
	type pt struct {
		x  float64
		iv stats.Interval
	}
	rereg := map[line][]pt{}
	var modify []pt
	none := map[string]pt{}
	var strategies []string
	var counts []int
	baseline := 0.0 // worst steals/op without a competitor, on the numeric axis
	hasBaseline := false
	for _, c := range cases {
		p := runfile.NameParams(c.Name)
		iv := runfile.StealsIv(c)
		x, ok := xOf(c)
		if !ok {
			if p["competitors"] == "0" {
				baseline, hasBaseline = math.Max(baseline, iv.Median), true
			}
			continue
		}
		switch p["mode"] {
		case "modify":
			modify = append(modify, pt{x, iv})
		case "reregister":
			if !slices.Contains(strategies, p["strategy"]) {
				strategies = append(strategies, p["strategy"])
			}
			k, _ := strconv.Atoi(p["competitors"])
			if k == 0 && !achieved {
				none[p["strategy"]] = pt{x, iv} // starts every line of the strategy
				continue
			}
			if !slices.Contains(counts, k) {
				counts = append(counts, k)
			}
			rereg[line{p["strategy"], k}] = append(rereg[line{p["strategy"], k}], pt{x, iv})
		}
	}
	slices.Sort(counts)
	if len(counts) == 0 {
		counts = []int{0} // only the no-competitor baseline was measured
	}
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
	byCount := len(counts) > 1
	for si, st := range strategies {
		for ki, k := range counts {
			pts := rereg[line{st, k}]
			if b, ok := none[st]; ok {
				pts = append([]pt{b}, pts...)
			}
			if len(pts) == 0 {
				continue
			}
			xs, ys, ivs := toSeries(pts)
			style := &lineStyle{color: plotutil.Color(si), width: vg.Points(1.5), shape: plotutil.Shape(si)}
			if ki > 0 {
				style.dashes = plotutil.Dashes(ki)
			}
			label := "re-register"
			if len(strategies) > 1 {
				label += ", strategy=" + st
			}
			series = append(series, lineSeries{label: label, xs: xs, ys: ys, ivs: ivs, style: style, noLegend: byCount})
		}
	}
	var xlabel string
	switch {
	case !achieved:
		xlabel = "nominal competitor attempts per second, per competitor (achieved rate not recorded)"
	case rateUnit == "rate-achieved/s":
		xlabel = "competitor attempts per second achieved on the holder's CPU"
	default:
		xlabel = "competitor attempts per second achieved, per competitor"
	}
	if !byCount && counts[0] > 0 {
		xlabel += fmt.Sprintf(" (%s)", present.Plural(counts[0], "competitor"))
	}
	if hasBaseline {
		xlabel += fmt.Sprintf("; no competitor: %s steals/op", present.TrimFloat(baseline))
	}
	logY := spansDecades(series, true, 100)
	title := backendTitle(be) + ": slots lost per update vs competitor rate"
	if place != "" {
		title += ", " + present.PlaceLabel(place)
	}
	o := lineOpts{
		title:     title,
		xlabel:    xlabel,
		ylabel:    "slots lost per update (steals/op)",
		yMax:      0.01,
		logY:      logY,
		zeroFloor: true,
	}
	if achieved {
		o.logX, o.xFmt = true, siTick
	} else {
		o.xTicks = cats
	}
	ch := lineChart(o, series)
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
			ch.addLegend(present.Plural(k, "competitor"), style.thumbs()...)
		}
	}
	ch.whiskersLast()
	return ch
}

func hasMetric(c *runfile.Case, unit string) bool {
	_, ok := c.Metric(unit)
	return ok
}

// plotRaceWindow draws one race-window CDF per backend: of its re-register
// cases under the heaviest competition, the strategy with the median p50,
// so that the chart compares backends rather than dozens of near-equal
// strategies.
func plotRaceWindow(d *plotData) (*chart, string) {
	byBackend := map[string][]*runfile.Case{}
	for _, c := range runfile.Family(d.all, "Race") {
		if c.Window == nil || len(c.Window.CDF) == 0 {
			continue
		}
		be := runfile.NameParams(c.Name)["backend"]
		byBackend[be] = append(byBackend[be], c)
	}
	if len(byBackend) == 0 {
		return nil, "no Race results with a window histogram"
	}
	pressure := func(c *runfile.Case) (float64, int) {
		p := runfile.NameParams(c.Name)
		_, o := raceCategory(p)
		k, _ := strconv.Atoi(p["competitors"])
		return o, k
	}
	var series []lineSeries
	for _, be := range present.OrderedBackends(byBackend) {
		var top []*runfile.Case
		for _, c := range byBackend[be] {
			if len(top) == 0 {
				top = append(top, c)
				continue
			}
			o, k := pressure(c)
			to, tk := pressure(top[0])
			switch {
			case o > to || (o == to && k > tk):
				top = []*runfile.Case{c}
			case o == to && k == tk:
				top = append(top, c)
			}
		}
		sort.Slice(top, func(i, j int) bool { return top[i].Window.P50 < top[j].Window.P50 })
		c := top[(len(top)-1)/2]
		p := runfile.NameParams(c.Name)
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
			label += fmt.Sprintf(", %s at %s", present.Plural(k, "competitor"), cat)
		}
		if pl := p["place"]; pl != "" {
			label += ", place=" + pl
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
		title:  "Re-register race window: holder's release to its next successful reserve (CDF of one run's windows, one line per backend)",
		xlabel: "window",
		ylabel: "fraction of windows <= x",
		logX:   spansDecades(series, false, 10),
		xFmt:   nsTick,
	}, series)
	ch.Y.Max = 1
	return ch, ""
}
