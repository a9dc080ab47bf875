package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
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
	pos, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("plot: want exactly one results directory, got %d arguments (usage: bpbench plot DIR [--out PLOTDIR])", len(pos))
	}
	run, err := loadRun(pos[0])
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

// chartSpec is one chart: its file stem and how to draw it from the run's
// case summaries. build returns a reason instead of a plot when the data
// it needs is absent.
type chartSpec struct {
	stem  string
	build func(all []*caseSummary) (*plot.Plot, string)
}

// charts lists every chart bpbench draws, in report order.
var charts = []chartSpec{
	{"update-cost", plotUpdate},
	{"race-steals", plotRaceSteals},
	{"race-window-cdf", plotRaceWindow},
	{"scaling-throughput", plotScaling},
	{"tasks-cost", plotTasks},
	{"registers-writes", plotRegisters("writes/op", "register writes per update", "Register writes per update: write-all vs write-changed")},
	{"registers-cost", plotRegisters("ns/op", "time per update (ns)", "Update cost: write-all vs write-changed")},
	{"kernel-vs-perf", plotKernel},
	{"exclusion-cost", plotExclusion},
	{"apply-writes", plotThreads("Apply", "writes/op", "register writes per apply", "Register writes per apply vs threads: eager vs lazy")},
	{"apply-cost", plotThreads("Apply", "ns/thread", "time per thread (ns)", "Set+modify+clear cost per thread vs threads: eager vs lazy")},
	{"blindwindow", plotThreads("BlindWindow", "blind-ns/p50", "first to last thread armed, p50 (ns)", "Blind window vs threads: eager vs lazy")},
	{"blindwindow-missed", plotThreads("BlindWindow", "missed/op", "tracee writes missed per watchpoint set", "Accesses missed while arming vs threads: eager vs lazy")},
}

// chartSize is the drawing size of every chart.
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
		p, why := cs.build(all)
		if p == nil {
			fmt.Fprintf(log, "plot %s: omitted: %s\n", cs.stem, why)
			continue
		}
		for _, format := range []string{"png", "svg"} {
			wt, err := p.WriterTo(chartW, chartH, format)
			if err != nil {
				return files, fmt.Errorf("plot %s: %w", cs.stem, err)
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil {
				return files, fmt.Errorf("plot %s.%s: %w", cs.stem, format, err)
			}
			path := filepath.Join(dir, cs.stem+"."+format)
			if err := writeFileAtomic(path, buf.Bytes()); err != nil {
				return files, err
			}
			files = append(files, path)
		}
	}
	return files, nil
}

func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p
}

// --- bar charts ---

// barSeries is one colour of a grouped bar chart; NaN marks a missing bar
// or whisker.
type barSeries struct {
	label  string
	vals   []float64
	lo, hi []float64
}

// groupedBars draws bars side by side per group, with min/max whiskers,
// and a log axis when the bars differ by more than two orders of
// magnitude (ptrace and perf cost microseconds, the simulator nanoseconds).
func groupedBars(title, ylabel string, groups []string, series []barSeries) *plot.Plot {
	p := newPlot(title, "", ylabel)
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
	logY := hi/lo > 100
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Min, p.Y.Max = lo/2, hi*8
		p.Y.Label.Text += " (log scale)"
	} else {
		p.Y.Min, p.Y.Max = 0, hi*1.3
	}
	for i, s := range series {
		b := &bars{series: s, index: i, n: len(series), groups: len(groups), logY: logY, color: plotutil.Color(i)}
		p.Add(b)
		p.Legend.Add(s.label, b)
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	return p
}

// bars is one barSeries of a grouped bar chart. gonum's BarChart always
// grows from zero, which a log axis cannot show, so the bars start at the
// bottom of the axis instead.
type bars struct {
	series   barSeries
	index, n int
	groups   int
	logY     bool
	color    color.Color
}

func (b *bars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	width := 0.8 / float64(b.n)
	base := trY(math.Max(p.Y.Min, 0))
	if b.logY {
		base = trY(p.Y.Min)
	}
	whisker := draw.LineStyle{Color: color.Black, Width: vg.Points(1)}
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
			xm, cap := trX(x), (x1-x0)/4
			ylo, yhi := trY(lo), trY(hi)
			c.StrokeLines(whisker, c.ClipLinesY([]vg.Point{{X: xm, Y: ylo}, {X: xm, Y: yhi}})...)
			c.StrokeLines(whisker, c.ClipLinesY([]vg.Point{{X: xm - cap, Y: ylo}, {X: xm + cap, Y: ylo}})...)
			c.StrokeLines(whisker, c.ClipLinesY([]vg.Point{{X: xm - cap, Y: yhi}, {X: xm + cap, Y: yhi}})...)
		}
	}
}

// Thumbnail draws the legend swatch.
func (b *bars) Thumbnail(c *draw.Canvas) {
	pts := []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}}
	c.FillPolygon(b.color, pts)
}

// --- line charts ---

// lineSeries is one line: points sorted by x.
type lineSeries struct {
	label    string
	xs, ys   []float64
	emphasis bool
}

// lineOpts shapes a line chart.
type lineOpts struct {
	title, xlabel, ylabel string
	logX, logY            bool
	// xTicks, when set, labels integer x positions (a categorical axis).
	xTicks []string
}

func lineChart(o lineOpts, series []lineSeries) *plot.Plot {
	p := newPlot(o.title, o.xlabel, o.ylabel)
	if o.logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
		p.X.Label.Text += " (log scale)"
	}
	if o.logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text += " (log scale)"
	}
	if o.xTicks != nil {
		p.NominalX(o.xTicks...)
	}
	ymax := 0.0
	for i, s := range series {
		xys := make(plotter.XYs, 0, len(s.xs))
		for j := range s.xs {
			if (o.logX && s.xs[j] <= 0) || (o.logY && s.ys[j] <= 0) {
				continue // a log axis cannot place it
			}
			xys = append(xys, plotter.XY{X: s.xs[j], Y: s.ys[j]})
			ymax = math.Max(ymax, s.ys[j])
		}
		if len(xys) == 0 {
			continue
		}
		l, sc, err := plotter.NewLinePoints(xys)
		if err != nil {
			continue
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i % 3)
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		if s.emphasis {
			l.Width = vg.Points(3)
			l.Dashes = nil
		}
		p.Add(l, sc)
		p.Legend.Add(s.label, l, sc)
	}
	if !o.logY {
		p.Y.Min = 0
		p.Y.Max = ymax * 1.35 // headroom for the legend
	} else {
		p.Y.Max *= 4
	}
	return p
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

// updateOps is the presentation order of Update's op parameter.
var updateOps = []string{"modify", "disable-enable", "reregister"}

func plotUpdate(all []*caseSummary) (*plot.Plot, string) {
	cases := family(all, "Update")
	if len(cases) == 0 {
		return nil, "no Update results"
	}
	var groups []string
	ops := append([]string(nil), updateOps...)
	type key struct{ g, op string }
	at := map[key]*caseSummary{}
	for _, c := range cases {
		p := nameParams(c.Name)
		g := p["backend"]
		if s := p["strategy"]; s != "" {
			g += "/" + s
		}
		if indexOf(groups, g) < 0 {
			groups = append(groups, g)
		}
		if indexOf(ops, p["op"]) < 0 {
			ops = append(ops, p["op"])
		}
		at[key{g, p["op"]}] = c
	}
	var series []barSeries
	for _, op := range ops {
		s := barSeries{label: op}
		present := false
		for _, g := range groups {
			v, lo, hi := math.NaN(), math.NaN(), math.NaN()
			if c := at[key{g, op}]; c != nil {
				v, present = c.NsPerOp, true
				if c.LatMax > 0 {
					lo, hi = c.LatMin, c.LatMax
				}
			}
			s.vals, s.lo, s.hi = append(s.vals, v), append(s.lo, lo), append(s.hi, hi)
		}
		if present {
			series = append(series, s)
		}
	}
	return groupedBars("Breakpoint update cost per backend: modify in place vs disable-enable vs re-register (whiskers: min..max)",
		"time per update (ns)", groups, series), ""
}

func plotRaceSteals(all []*caseSummary) (*plot.Plot, string) {
	cases := family(all, "Race")
	// A categorical axis keeps rate 0 ("unlimited") on it.
	series, ticks := seriesBy(cases, "rate", metricOrNs("steals/op"), true)
	if len(series) == 0 {
		return nil, "no Race results with rate= and steals/op"
	}
	labels := make([]string, len(ticks))
	for i, t := range ticks {
		switch v, err := strconv.ParseFloat(t, 64); {
		case err == nil && v == 0:
			labels[i] = "unlimited"
		case err == nil:
			labels[i] = t + "/s"
		default:
			labels[i] = t
		}
	}
	return lineChart(lineOpts{
		title:  "Slot steals vs competitor rate: modify in place vs re-register",
		xlabel: "attempts per second per competitor",
		ylabel: "slots lost per update (steals/op)",
		xTicks: labels,
	}, series), ""
}

func plotRaceWindow(all []*caseSummary) (*plot.Plot, string) {
	// One CDF per line of the steal chart would be unreadable: keep, per
	// combination of the other parameters, the case with most samples.
	best := map[string]*caseSummary{}
	var keys []string
	for _, c := range family(all, "Race") {
		if c.Window == nil || len(c.Window.CDF) == 0 {
			continue
		}
		p := nameParams(c.Name)
		delete(p, "rate")
		delete(p, "competitors")
		var parts []string
		for _, k := range sortedKeys(p) {
			parts = append(parts, k+"="+p[k])
		}
		k := strings.Join(parts, " ")
		if b, ok := best[k]; !ok || c.Window.Count > b.Window.Count {
			if !ok {
				keys = append(keys, k)
			}
			best[k] = c
		}
	}
	if len(keys) == 0 {
		return nil, "no Race results with a window histogram"
	}
	var series []lineSeries
	for _, k := range keys {
		c := best[k]
		s := lineSeries{label: fmt.Sprintf("%s (n=%d)", k, c.Window.Count)}
		for _, pt := range c.Window.CDF {
			s.xs = append(s.xs, pt.NS)
			s.ys = append(s.ys, pt.Fraction)
		}
		series = append(series, s)
	}
	p := lineChart(lineOpts{
		title:  "Race window: time from release to the competitor's successful reserve (CDF)",
		xlabel: "window (ns)",
		ylabel: "fraction of windows <= x",
		logX:   spansDecades(series, false, 10),
	}, series)
	p.Y.Max = 1.35
	return p, ""
}

func plotScaling(all []*caseSummary) (*plot.Plot, string) {
	series, _ := seriesBy(family(all, "Scaling"), "goroutines", func(c *caseSummary) (float64, bool) {
		if v, ok := c.Metric("ops/s"); ok {
			return v, true
		}
		return 1e9 / c.NsPerOp, c.NsPerOp > 0
	}, false)
	if len(series) == 0 {
		return nil, "no Scaling results with goroutines="
	}
	return lineChart(lineOpts{
		title:  "Reserve/release throughput vs goroutines, per strategy",
		xlabel: "goroutines",
		ylabel: "operations per second (ops/s)",
	}, series), ""
}

func plotTasks(all []*caseSummary) (*plot.Plot, string) {
	series, _ := seriesBy(family(all, "Tasks"), "tasks", metricOrNs("ns/op"), false)
	if len(series) == 0 {
		return nil, "no Tasks results with tasks="
	}
	for i := range series {
		series[i].emphasis = strings.Contains(series[i].label, "legacy")
	}
	return lineChart(lineOpts{
		title:  "Per-reservation cost vs live tasks: legacy (global list walk) against the rest",
		xlabel: "live tasks holding breakpoints",
		ylabel: "time per reserve+release (ns)",
		logX:   true, logY: true,
	}, series), ""
}

// plotRegisters compares policies per backend on one figure.
func plotRegisters(unit, ylabel, title string) func([]*caseSummary) (*plot.Plot, string) {
	return func(all []*caseSummary) (*plot.Plot, string) {
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
			s := barSeries{label: "policy=" + pol}
			for _, g := range groups {
				v, ok := at[key{g, pol}]
				if !ok {
					v = math.NaN()
				}
				s.vals, s.lo, s.hi = append(s.vals, v), append(s.lo, math.NaN()), append(s.hi, math.NaN())
			}
			series = append(series, s)
		}
		return groupedBars(title, ylabel, groups, series), ""
	}
}

func plotKernel(all []*caseSummary) (*plot.Plot, string) {
	var groups []string
	goS := barSeries{label: "Go (usecs/op)"}
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
		groups = append(groups, shortKernelName(c.Name))
		goS.vals, goS.lo, goS.hi = append(goS.vals, g), append(goS.lo, math.NaN()), append(goS.hi, math.NaN())
		perfS.vals, perfS.lo, perfS.hi = append(perfS.vals, pf), append(perfS.lo, math.NaN()), append(perfS.hi, math.NaN())
	}
	if len(groups) == 0 {
		return nil, "no KernelThread/KernelEnable results with usecs/op"
	}
	p := groupedBars("Go harness vs perf bench breakpoint, same workload", "time per operation (µs)", groups, []barSeries{goS, perfS})
	p.X.Tick.Label.Font.Size = vg.Points(9)
	return p, ""
}

// shortKernelName abbreviates kernel case names to fit under a bar.
func shortKernelName(name string) string {
	r := strings.NewReplacer("KernelThread/", "thread ", "KernelEnable/", "enable ",
		"breakpoints=", "b", "parallelism=", "p", "threads=", "t", "passive=", "pas", "active=", "act", "/", " ")
	return r.Replace(name)
}

func plotExclusion(all []*caseSummary) (*plot.Plot, string) {
	series, _ := seriesBy(family(all, "Exclusion"), "tasks", metricOrNs("ns/op"), false)
	if len(series) == 0 {
		return nil, "no Exclusion results with tasks="
	}
	return lineChart(lineOpts{
		title:  "Reservation cost with exclusive breakpoints on vs off, vs live tasks",
		xlabel: "live tasks",
		ylabel: "time per reservation (ns)",
		logX:   spansDecades(series, false, 100),
	}, series), ""
}

// plotThreads draws a metric of a multi-threaded family against threads=,
// one line per policy.
func plotThreads(fam, unit, ylabel, title string) func([]*caseSummary) (*plot.Plot, string) {
	return func(all []*caseSummary) (*plot.Plot, string) {
		series, _ := seriesBy(family(all, fam), "threads", metricOrNs(unit), false)
		if len(series) == 0 {
			return nil, fmt.Sprintf("no %s results with threads= and %s", fam, unit)
		}
		return lineChart(lineOpts{title: title, xlabel: "threads of the tracee", ylabel: ylabel}, series), ""
	}
}
