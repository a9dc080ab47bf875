package charts

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"bpbench/internal/present"
	"bpbench/stats"
)

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
func whiskerNote(ivs []stats.Interval) string {
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
			s := src{iv.N, present.OrRuns(iv.From), math.Round(100 * iv.Coverage)}
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
		parts = append(parts, fmt.Sprintf("min–max of %s covers %.0f%%", present.Values(s.n, s.from), s.cov))
	}
	if len(low) == 1 && len(ivs) > 0 && allLow(ivs) {
		return "whiskers: " + parts[0] + " (fewer than 6 values cannot reach 95%)"
	}
	return "whiskers: 95% interval of the median; " + strings.Join(parts, ", ")
}

func allLow(ivs []stats.Interval) bool {
	for _, iv := range ivs {
		if iv.N > 1 && iv.Resolved() {
			return false
		}
	}
	return true
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

// downTriangle is the glyph of a zero on a log axis: it points down, off
// the scale.
type downTriangle struct{}

func (downTriangle) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: vg.Points(1)})
	r := sty.Radius
	var p vg.Path
	p.Move(vg.Point{X: pt.X, Y: pt.Y - r})
	p.Line(vg.Point{X: pt.X - r, Y: pt.Y + r*0.7})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y + r*0.7})
	p.Close()
	c.Stroke(p)
}

// zeroThumb is the legend entry of zeros on a log axis.
type zeroThumb struct{}

func (zeroThumb) Thumbnail(c *draw.Canvas) {
	downTriangle{}.DrawGlyph(c, draw.GlyphStyle{Color: color.Gray{Y: 60}, Radius: vg.Points(4)}, c.Center())
}

// rule is a line across the data area at one value of an axis: of y (a
// log axis' break) or, when vertical, of x (the vCPU count on scaling
// charts).
type rule struct {
	at       float64
	vertical bool
	style    draw.LineStyle
}

func (r rule) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	if r.vertical {
		x := trX(r.at)
		c.StrokeLines(r.style, []vg.Point{{X: x, Y: trY(p.Y.Min)}, {X: x, Y: trY(p.Y.Max)}})
		return
	}
	y := trY(r.at)
	c.StrokeLines(r.style, []vg.Point{{X: trX(p.X.Min), Y: y}, {X: trX(p.X.Max), Y: y}})
}

// Thumbnail draws the rule across the middle of its legend entry.
func (r rule) Thumbnail(c *draw.Canvas) {
	if r.vertical {
		x := (c.Min.X + c.Max.X) / 2
		c.StrokeLine2(r.style, x, c.Min.Y, x, c.Max.Y)
		return
	}
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(r.style, c.Min.X, y, c.Max.X, y)
}
