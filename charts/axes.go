package charts

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

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

func yFmtOr(f func(float64) string) func(float64) string {
	if f == nil {
		return plainTick
	}
	return f
}

// aboveBreak drops the ticks below a log axis' break: the band under it
// holds the zeros, which a log scale has no value for, so no tick may
// pretend to measure them.
type aboveBreak struct {
	plot.Ticker
	brk float64
}

func (a aboveBreak) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range a.Ticker.Ticks(lo, hi) {
		if t.Value >= a.brk*(1-1e-9) {
			out = append(out, t)
		}
	}
	return out
}
