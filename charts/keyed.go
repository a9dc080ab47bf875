package charts

import (
	"fmt"
	"image/color"
	"maps"
	"slices"
	"strings"

	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// labelParams parses a seriesBy label ("debugged=8 policy=eager") back
// into its parameters.
func labelParams(label string) map[string]string {
	p := map[string]string{}
	for _, tok := range strings.Fields(label) {
		if k, v, ok := strings.Cut(tok, "="); ok {
			p[k] = v
		}
	}
	return p
}

// restOf is a series' parameters other than key, as a label.
func restOf(p map[string]string, key string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if k != key {
			parts = append(parts, k+"="+p[k])
		}
	}
	return strings.Join(parts, " ")
}

// keyedLines styles many lines so a reader can tell them apart: lines
// whose points are identical fold into one black line named by the
// values of key they cover (the result a reader looks for: which
// policies lose nothing); the rest take their colour from their value of
// key and their dash pattern from their other parameters. It returns the
// lines and the legend: one entry per folded line, per colour and per
// dash pattern, instead of one per line with colours that repeat.
func keyedLines(series []lineSeries, key string) ([]lineSeries, []legendItem) {
	used := make([]bool, len(series))
	var out []lineSeries
	var legend []legendItem
	var keys, rests []string
	for _, s := range series {
		if r := restOf(labelParams(s.label), key); !slices.Contains(rests, r) {
			rests = append(rests, r)
		}
	}
	dashed := len(rests) > 1
	for i, s := range series {
		if used[i] {
			continue
		}
		same := []int{i}
		for j := i + 1; j < len(series); j++ {
			if !used[j] && slicesEqualF(s.xs, series[j].xs) && slicesEqualF(s.ys, series[j].ys) {
				same = append(same, j)
				used[j] = true
			}
		}
		if len(same) == 1 {
			continue
		}
		used[i] = true
		var vals []string
		rest := restOf(labelParams(s.label), key)
		for _, j := range same {
			p := labelParams(series[j].label)
			if v := p[key]; !slices.Contains(vals, v) {
				vals = append(vals, v)
			}
			if restOf(p, key) != rest {
				rest = ""
			}
		}
		f := s
		what := "identical lines"
		if allZero(s.ys) {
			what = "lines, all 0"
		}
		f.label = fmt.Sprintf("%s=%s: %d %s", key, strings.Join(vals, ", "), len(same), what)
		f.style = &lineStyle{color: color.Black, width: vg.Points(2.5), shape: draw.CircleGlyph{}}
		if rest != "" && dashed {
			// The folded lines share their other parameters: say which,
			// and draw them in those parameters' dashes.
			f.label = fmt.Sprintf("%s=%s (%s): %d %s", key, strings.Join(vals, ", "), rest, len(same), what)
			f.style.dashes = plotutil.Dashes(slices.Index(rests, rest))
		}
		out = append(out, f)
	}
	for i, s := range series {
		if used[i] {
			continue
		}
		if p := labelParams(s.label); !slices.Contains(keys, p[key]) {
			keys = append(keys, p[key])
		}
	}
	for i, s := range series {
		if used[i] {
			continue
		}
		p := labelParams(s.label)
		ci, di := slices.Index(keys, p[key]), slices.Index(rests, restOf(p, key))
		s.style = &lineStyle{color: plotutil.Color(ci), width: vg.Points(1.5), dashes: plotutil.Dashes(di), shape: plotutil.Shape(ci)}
		s.noLegend = true
		out = append(out, s)
	}
	for ci, k := range keys {
		legend = append(legend, legendItem{key + "=" + k, (&lineStyle{color: plotutil.Color(ci), width: vg.Points(1.5), shape: plotutil.Shape(ci)}).thumbs()})
	}
	if dashed {
		for di, r := range rests {
			legend = append(legend, legendItem{r, (&lineStyle{color: color.Gray{Y: 90}, width: vg.Points(1.5), dashes: plotutil.Dashes(di)}).thumbs()})
		}
	}
	return out, legend
}

func allZero(vs []float64) bool {
	for _, v := range vs {
		if v != 0 {
			return false
		}
	}
	return true
}

// withLegend draws series with lineChart and appends legend, keeping the
// whiskers' note last.
func withLegend(o lineOpts, series []lineSeries, legend []legendItem) *chart {
	ch := lineChart(o, series)
	ch.legend = append(ch.legend, legend...)
	ch.whiskersLast()
	return ch
}
