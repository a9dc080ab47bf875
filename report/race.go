package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"bpbench/bench"
	"bpbench/charts"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// tally is a count of events (slots lost, spurious refusals) out of a
// number of operations, pooled over every run of the cases it covers.
type tally struct {
	k, n  float64
	cases int
}

func (t tally) String() string { return count(t.k, t.n) }

// separated reports whether the Wilson intervals of two tallies do not
// overlap.
func (t tally) separated(o tally) bool {
	lo, hi := stats.Wilson(t.k, t.n)
	olo, ohi := stats.Wilson(o.k, o.n)
	return hi < olo || ohi < lo
}

// losses pools the slots lost by Race cases matching want over every
// competitor count and rate.
func (w *reportWriter) losses(want map[string]string) tally {
	var t tally
	for _, c := range runfile.Family(w.all, "Race") {
		if !runfile.HasParams(c, want) {
			continue
		}
		s, ok := c.Metric(bench.MetricSteals)
		if !ok {
			continue
		}
		t.k += s * float64(c.Iterations)
		t.n += float64(c.Iterations)
		t.cases++
	}
	return t
}

// placeCell names a race's placement in a table.
func placeCell(pl string) string {
	switch pl {
	case "none":
		return "no competitor"
	case "":
		return "any"
	}
	return present.PlaceLabel(pl)
}

// sectionRace answers how often re-registering loses the slot, from the
// Race cases: losses per backend and placement, the model's prediction,
// the worst windows and spurious refusals.
func (w *reportWriter) sectionRace(cases []*runfile.Case) {
	backends := backendsOf(cases)
	places := runfile.ParamValues(cases, bench.ParamPlace)
	w.p("Slots lost to a competitor that reserves on the holder's CPU, pooled over every competitor count and rate, with the 95%% Wilson interval of the rate:\n")
	w.p("| backend | competitor | modify in place lost | re-register lost | cases |\n|---|---|---|---|---|")
	type row struct {
		be     string
		lm, lr tally
	}
	var other []row
	for _, be := range backends {
		for _, pl := range places {
			want := map[string]string{bench.ParamBackend: be}
			if pl != "" {
				want[bench.ParamPlace] = pl
			}
			lm, lr := w.losses(mergeParams(want, bench.ParamMode, "modify")), w.losses(mergeParams(want, bench.ParamMode, "reregister"))
			if lm.cases+lr.cases == 0 {
				continue
			}
			w.p("| %s | %s | %s | %s | %d |", be, placeCell(pl), lm, lr, lm.cases+lr.cases)
			if pl == "other" || (pl == "" && len(places) == 1) {
				other = append(other, row{be, lm, lr})
			}
		}
	}
	w.gap()
	w.racePrediction(cases)
	w.raceWorst(cases)
	w.spurious("Race", "race")
	for _, be := range backends {
		for _, pl := range places {
			if pl != "none" {
				w.plotLink(charts.RaceStealsStem(be, pl), "steals vs achieved competitor rate, backend="+be+placeAlt(pl))
			}
		}
	}
	w.plotLink("race-window-cdf", "race window CDF")
	w.gap()
	if len(other) > 0 {
		var figs []string
		var mod tally
		modBound := 0.0
		res, order := map[string]string{}, []string{}
		for _, r := range other {
			lo, hi := stats.Wilson(r.lr.k, r.lr.n)
			figs = append(figs, fmt.Sprintf("%s %s [%s, %s]", r.be, pct(r.lr.k, r.lr.n), pct(lo, 1), pct(hi, 1)))
			mod.k, mod.n = mod.k+r.lm.k, mod.n+r.lm.n
			_, mhi := stats.Wilson(r.lm.k, r.lm.n)
			modBound = max(modBound, mhi)
			order = append(order, r.be)
			res[r.be] = "yes"
			if !r.lr.separated(r.lm) {
				res[r.be] = "no: the Wilson intervals overlap"
			}
		}
		q := "Is the slot stolen in the window? (competitor on the other CPU)"
		if len(places) == 1 && places[0] == "" {
			q = "Is the slot stolen in the window?"
		}
		answer := "re-register loses it; modify in place lost " + present.Count(mod.k) + " of " + present.Count(mod.n)
		if mod.k == 0 {
			answer = fmt.Sprintf("re-register loses it; modify in place never did (0 of %s)", present.Count(mod.n))
		}
		w.verdict(verdict{
			question: q,
			answer:   answer,
			figure:   fmt.Sprintf("re-register lost %s of updates; modify at most %s on any backend (95%% upper bound)", strings.Join(figs, ", "), pct(modBound, 1)),
			resolved: allResolved(res, order),
		})
	}
}

func placeAlt(pl string) string {
	if pl == "" {
		return ""
	}
	return ", place=" + pl
}

// raceWorst tables, per backend and placement, the re-register case that
// lost most, with its window: where the window matters most.
func (w *reportWriter) raceWorst(cases []*runfile.Case) {
	type key struct{ be, place string }
	worst := map[key]*runfile.Case{}
	var keys []key
	for _, c := range cases {
		p := bench.NameParams(c.Name)
		if p[bench.ParamMode] != "reregister" {
			continue
		}
		k := key{p[bench.ParamBackend], p[bench.ParamPlace]}
		if s, _ := c.Metric(bench.MetricSteals); s > 0 {
			b := worst[k]
			if b == nil {
				keys = append(keys, k)
			}
			if b == nil || s > runfile.MustMetric(b, bench.MetricSteals) {
				worst[k] = c
			}
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].be+keys[i].place < keys[j].be+keys[j].place })
	w.p("The re-register case that lost most, per backend and placement; the window runs from the holder's release to its next reserve, unarmed adds the register writes around it:\n")
	w.p("| case | steals/op | competitor attempts/s | window p50 | window p99 | unarmed p50 | unarmed p99 |\n|---|---|---|---|---|---|---|")
	for _, k := range keys {
		c := worst[k]
		rate := "n/a"
		if _, ok := c.Metric(bench.MetricRateAchieved); ok {
			rate = w.iv(runfile.IvOf(c, bench.MetricRateAchieved), countUnit)
		}
		q := func(u string) string {
			if _, ok := c.Metric(u); !ok {
				return "n/a"
			}
			if strings.HasSuffix(u, "p50") {
				return w.iv(runfile.IvOf(c, u), nsUnit)
			}
			return present.FmtNs(runfile.MustMetric(c, u))
		}
		w.p("| %s | %s | %s | %s | %s | %s | %s |", w.markName(c.Name), w.iv(runfile.StealsIv(c), plainUnit), rate,
			q(bench.MetricWindowP50), q(bench.MetricWindowP99), q(bench.MetricUnarmedP50), q(bench.MetricUnarmedP99))
	}
	w.gap()
}

// markName quotes a case name, marked when its strategy broke the rules.
func (w *reportWriter) markName(name string) string {
	if st := bench.NameParams(name)[bench.ParamStrategy]; st != "" {
		if _, ok := w.broken[st]; ok {
			return "`" + name + "` †"
		}
	}
	return "`" + name + "`"
}

// spurious reports the refusals a lock-free strategy made with a slot
// free (alloc.SpuriousRefusals), pooled per strategy over fam's runs:
// they are not lost slots but retries the caller must make.
func (w *reportWriter) spurious(fam, what string) {
	type agg struct {
		k, n      float64
		runs      int
		worst     float64
		worstOps  int64
		worstName string
	}
	by := map[string]*agg{}
	for _, r := range w.run.Results {
		if f, _, _ := strings.Cut(r.Name, "/"); f != fam {
			continue
		}
		k, ok := r.Metrics[bench.MetricSpurious]
		if !ok {
			continue
		}
		st := bench.NameParams(r.Name)[bench.ParamStrategy]
		a := by[st]
		if a == nil {
			a = &agg{}
			by[st] = a
		}
		a.k += k
		a.n += float64(r.Iterations)
		a.runs++
		if k > a.worst {
			a.worst, a.worstOps, a.worstName = k, r.Iterations, r.Name
		}
	}
	var none []string
	for _, st := range slices.Sorted(maps.Keys(by)) {
		a := by[st]
		if a.k == 0 {
			none = append(none, fmt.Sprintf("%s (%s operations)", w.strat(st), present.Count(a.n)))
			continue
		}
		w.p("- %s refused %s reservations spuriously (a slot was free; the caller retries) over %s of %s operations; worst: %s in %s operations (`%s`).",
			w.strat(st), present.Count(a.k), present.Plural(a.runs, what+" run"), present.Count(a.n), present.Count(a.worst), present.Count(float64(a.worstOps)), a.worstName)
	}
	if len(none) > 0 {
		w.p("- No spurious refusals in the %s runs of %s.", what, strings.Join(none, ", "))
	}
}
