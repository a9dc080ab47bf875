package charts

import (
	"bytes"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
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
		for _, line := range wrapTitle(title, func(s string) vg.Length { return sty.Rectangle(s).Size().X }, w-2*pad) {
			dc.FillText(sty, vg.Point{X: dc.Center().X, Y: top + sty.FontExtents().Descent}, line)
			top -= sty.Rectangle(line).Size().Y
		}
		top -= pad
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
		lines := wrapTitle(xl, func(s string) vg.Length { return sty.Rectangle(s).Size().X }, area.Max.X-area.Min.X)
		for i := len(lines) - 1; i >= 0; i-- {
			dc.FillText(sty, vg.Point{X: area.Center().X, Y: area.Min.Y + sty.FontExtents().Descent}, lines[i])
			area.Min.Y += sty.Height(lines[i])
		}
		area.Min.Y += c.X.Label.Padding
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

// wrapTitle breaks a title too wide for width into lines at its clause
// breaks ("; ", ", ", ": ", " ("), as even as it can, so that no title is cut
// at both ends of the image.
func wrapTitle(title string, widthOf func(string) vg.Length, width vg.Length) []string {
	if widthOf(title) <= width {
		return []string{title}
	}
	best, bestW := -1, vg.Length(math.Inf(1))
	for i := range title {
		for _, sep := range []string{"; ", ", ", ": ", " ("} {
			if !strings.HasPrefix(title[i:], sep) {
				continue
			}
			cut := i + len(sep) - 1
			if sep == " (" {
				cut = i
			}
			w := max(widthOf(strings.TrimSpace(title[:cut+1])), widthOf(strings.TrimSpace(title[cut+1:])))
			if w < bestW {
				best, bestW = cut, w
			}
		}
	}
	if best < 0 {
		return []string{title}
	}
	first, rest := strings.TrimSpace(title[:best+1]), strings.TrimSpace(title[best+1:])
	if widthOf(rest) > width {
		return append([]string{first}, wrapTitle(rest, widthOf, width)...)
	}
	return []string{first, rest}
}

// drawLegend draws items in columns between x0 and x1 below top and
// returns the height it used. Items too wide to share a line with
// another (the whiskers' note, say) go full width below the columns, so
// one long label does not put every entry on a line of its own.
func drawLegend(dc draw.Canvas, items []legendItem, x0, x1, top vg.Length) vg.Length {
	if len(items) == 0 {
		return 0
	}
	proto := plot.NewLegend()
	proto.TextStyle.Font.Size = vg.Points(legendFontSize)
	proto.Top, proto.Left = true, true
	proto.Padding = vg.Points(2)
	gap := vg.Points(16)
	width := func(it legendItem) vg.Length {
		return proto.ThumbnailWidth + proto.TextStyle.Rectangle(" "+it.label).Max.X + gap
	}
	var short, long []legendItem
	for _, it := range items {
		if width(it) > (x1-x0)/2 {
			long = append(long, it)
		} else {
			short = append(short, it)
		}
	}
	var colW vg.Length
	for _, it := range short {
		colW = max(colW, width(it))
	}
	// The wide items continue the first column, below its rows, drawing
	// past its right edge into the others' empty space.
	n := len(short)
	cols, rows := 1, n
	if n > 0 {
		cols = max(1, min(n, int((x1-x0)/colW)))
		rows = (n + cols - 1) / cols
		cols = (n + rows - 1) / rows
	}
	var h vg.Length
	for j := range cols {
		l := proto
		for _, it := range short[min(j*rows, n):min((j+1)*rows, n)] {
			l.Add(it.label, it.thumbs...)
		}
		if j == 0 {
			for _, it := range long {
				l.Add(it.label, it.thumbs...)
			}
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
