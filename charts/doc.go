// Package charts draws the plots of a run as PNG and SVG with
// gonum.org/v1/plot: one file per chart family (update, race, scaling,
// threads, switch), built from chart.go (a chart and its legend), axes.go
// (ticks and scales), series.go (shaping cases into lines and bars) and
// marks.go (whiskers, bars and reference lines).
package charts
