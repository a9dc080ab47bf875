package report

import (
	"fmt"
	"math"
	"strings"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/runfile"
)

// predictionTolerance is how far from the measured steal rate a
// prediction may be and still count as holding.
const predictionTolerance = 0.25

// predictionApplies reports whether the steal-rate model of
// bench/race_predict.go describes a race case: it assumes competitors
// whose attempts arrive at their achieved rate independently of the
// holder. That holds for a paced competitor on the other CPU. A
// competitor on the holder's CPU runs only when the holder is preempted,
// so its attempts are not independent of the window; an unlimited
// competitor that wins keeps re-taking the slot and, preempted while
// holding it, stops the holder's changes altogether, so its presence in
// the windows that remain is not its on-CPU share.
func predictionApplies(c *runfile.Case) bool {
	p := bench.NameParams(c.Name)
	_, ok := c.Metric(bench.MetricStealsPredicted)
	return ok && p[bench.ParamMode] == "reregister" && p[bench.ParamPlace] == "other" && p[bench.ParamRate] != "max" && atoiOr(p[bench.ParamCompetitors], 0) > 0
}

// predictionHolds reports whether a case's predicted steal rate is
// within predictionTolerance of the measured one, or, where nothing was
// stolen, below the measured rate's upper bound.
func predictionHolds(measured, predicted, hi float64) bool {
	if measured == 0 {
		return predicted <= hi
	}
	return math.Abs(predicted-measured) <= predictionTolerance*measured
}

// racePrediction checks the steal-rate model where it applies and says
// where it holds, per backend and strategy, instead of printing a
// prediction next to every case: one that is far off in most cases it is
// printed for is noise.
func (w *reportWriter) racePrediction(cases []*runfile.Case) {
	type group struct {
		be, st       string
		n, holds     int
		within2      int     // cases within a factor 2
		lo, hi       float64 // measured/predicted over cases with both > 0
		ratios, none int
	}
	var groups []*group
	byKey := map[string]*group{}
	skipped := 0
	for _, c := range cases {
		p := bench.NameParams(c.Name)
		if p[bench.ParamMode] != "reregister" || atoiOr(p[bench.ParamCompetitors], 0) == 0 {
			continue
		}
		if !predictionApplies(c) {
			if _, ok := c.Metric(bench.MetricStealsPredicted); ok {
				skipped++
			}
			continue
		}
		k := p[bench.ParamBackend] + "/" + p[bench.ParamStrategy]
		g := byKey[k]
		if g == nil {
			g = &group{be: p[bench.ParamBackend], st: p[bench.ParamStrategy]}
			byKey[k] = g
			groups = append(groups, g)
		}
		si := runfile.StealsIv(c)
		pr := runfile.MustMetric(c, bench.MetricStealsPredicted)
		g.n++
		if predictionHolds(si.Median, pr, si.Hi) {
			g.holds++
		}
		if si.Median > 0 && pr > 0 && si.Median/pr <= 2 && pr/si.Median <= 2 {
			g.within2++
		}
		if si.Median > 0 && pr > 0 {
			r := si.Median / pr
			if g.ratios == 0 || r < g.lo {
				g.lo = r
			}
			if g.ratios == 0 || r > g.hi {
				g.hi = r
			}
			g.ratios++
		}
	}
	if len(groups) == 0 {
		return
	}
	w.p("**Predicted steal rate.** The window model (bench/race_predict.go: each competitor attempts at its achieved rate, independently of the holder, and steals the slot when an attempt lands in a window) applies to paced competitors on the other CPU, and is checked there: it holds in a case when it is within %s of the measured rate (or, where nothing was stolen, below the measured upper bound).", pct(predictionTolerance, 1))
	if skipped > 0 {
		w.p("No prediction is given for the other %s, whose competitor ran on the holder's CPU or without a pace: a competitor on the holder's CPU runs only when the holder is preempted, so its attempts are not independent of the window (it steals far less than predicted); an unlimited competitor that wins keeps re-taking the slot, and while it is preempted holding it the holder makes no changes, so it is present in more of the remaining windows than its on-CPU share (it steals more than predicted).", present.Plural(skipped, "re-register case"))
	}
	spanOf := func(lo, hi float64, n int) string {
		switch {
		case n == 0:
			return "n/a"
		case present.TrimFloat(lo) == present.TrimFloat(hi):
			return present.TrimFloat(lo) + "×"
		}
		return present.TrimFloat(lo) + "–" + present.TrimFloat(hi) + "×"
	}
	var ok, off []string
	all := group{}
	for _, g := range groups {
		name := g.be + "/" + w.strat(g.st)
		if 2*g.holds > g.n {
			ok = append(ok, name)
		} else {
			off = append(off, fmt.Sprintf("%s (%s)", name, spanOf(g.lo, g.hi, g.ratios)))
		}
		all.n, all.holds = all.n+g.n, all.holds+g.holds
		if g.ratios > 0 {
			if all.ratios == 0 || g.lo < all.lo {
				all.lo = g.lo
			}
			if all.ratios == 0 || g.hi > all.hi {
				all.hi = g.hi
			}
			all.ratios += g.ratios
		}
	}
	if len(ok) == 0 {
		w.p("\nWhere it applies, it holds in %d of %s (measured/predicted %s where both are above 0): in this run the model holds for no strategy, **unexplained**, and no prediction is quoted.\n", all.holds, present.Plural(all.n, "case"), spanOf(all.lo, all.hi, all.ratios))
		return
	}
	w.p("\n| backend | strategy | prediction holds | within 2× | measured / predicted |\n|---|---|---|---|---|")
	for _, g := range groups {
		w.p("| %s | %s | %d of %d | %d | %s |", g.be, w.strat(g.st), g.holds, g.n, g.within2, spanOf(g.lo, g.hi, g.ratios))
	}
	w.gap()
	if len(off) == 0 {
		w.p("The model holds in most paced cases on the other CPU for every strategy and backend.\n")
		return
	}
	w.p("The model holds in most paced cases on the other CPU for %s. It is off in most cases for %s: **unexplained**, so the model is not a description of them.\n", strings.Join(ok, ", "), strings.Join(off, ", "))
}
