package report

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"bpbench/charts"
	"bpbench/internal/present"
	"bpbench/runfile"
	"bpbench/stats"
)

// achievedRate is a race case's competitor attempt rate as achieved
// (rate-achieved/s, or competitor-attempts/s in older results).
func achievedRate(c *runfile.Case) (stats.Interval, bool) {
	for _, u := range []string{"rate-achieved/s", "competitor-attempts/s"} {
		if _, ok := c.Metric(u); ok {
			return runfile.IvOf(c, u), true
		}
	}
	return stats.Interval{}, false
}

func (w *reportWriter) sectionRace() {
	w.p("## How often does re-registering lose the slot to a competitor?\n")
	cases := runfile.Family(w.all, "Race")
	if len(cases) == 0 {
		w.absent("Race")
		return
	}
	w.p("Slots lost are pooled over every competitor count and rate; brackets are the 95%% Wilson interval of the loss rate.\n")
	backends := map[string]bool{}
	for _, c := range cases {
		backends[runfile.NameParams(c.Name)["backend"]] = true
	}
	places := runfile.ParamValues(cases, "place")
	for _, be := range present.OrderedBackends(backends) {
		for _, pl := range places {
			want := map[string]string{"backend": be}
			label := be
			if pl != "" {
				want["place"] = pl
				label += ", " + present.PlaceLabel(pl)
			}
			lm, lr := w.losses(mergeParams(want, "mode", "modify")), w.losses(mergeParams(want, "mode", "reregister"))
			if lm.cases+lr.cases == 0 {
				continue
			}
			var parts []string
			if lm.cases > 0 {
				parts = append(parts, "modify in place lost "+lm.String())
			}
			if lr.cases > 0 {
				parts = append(parts, "re-register lost "+lr.String())
			}
			w.p("- **%s**: %s, over %d cases.", label, strings.Join(parts, "; "), lm.cases+lr.cases)
		}
	}
	// The worst case per backend, mode and place: where the window matters most.
	type key struct{ be, mode, place string }
	worst := map[key]*runfile.Case{}
	var keys []key
	for _, c := range cases {
		p := runfile.NameParams(c.Name)
		k := key{p["backend"], p["mode"], p["place"]}
		// Cases without steals show no window worth citing.
		if s, _ := c.Metric("steals/op"); s > 0 {
			b := worst[k]
			if b == nil {
				keys = append(keys, k)
			}
			if b == nil || s > runfile.MustMetric(b, "steals/op") {
				worst[k] = c
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].be+keys[i].mode+keys[i].place < keys[j].be+keys[j].mode+keys[j].place
	})
	for _, k := range keys {
		c := worst[k]
		si := runfile.StealsIv(c)
		line := fmt.Sprintf("- worst %s/%s case `%s`: %s steals/op", k.be, k.mode, c.Name, fmtIv(si, plainUnit))
		if ch, ok := c.Metric("changes"); ok {
			line += fmt.Sprintf(" over %.0f changes", ch)
		}
		if r, ok := achievedRate(c); ok {
			line += fmt.Sprintf(", competitor achieved %s attempts/s", fmtIv(r, countUnit))
		}
		if pr, ok := c.Metric("steals-predicted/op"); ok {
			if pr >= si.Lo && pr <= si.Hi {
				line += fmt.Sprintf(", as predicted (%s)", present.TrimFloat(pr))
			} else {
				line += fmt.Sprintf(", predicted %s: outside the interval, %s", present.TrimFloat(pr), raceGapCause(c, si, pr))
			}
		}
		if _, ok := c.Metric("window-ns/p50"); ok {
			line += ", race window p50 " + fmtIv(runfile.IvOf(c, "window-ns/p50"), nsUnit)
		}
		if v, ok := c.Metric("window-ns/p99"); ok {
			line += ", p99 " + present.FmtNs(v)
		}
		// The window is the model's release -> reserve time; unarmed adds
		// the register writes around it (results before it was measured
		// lack the metric).
		if _, ok := c.Metric("unarmed-ns/p50"); ok {
			line += ", unarmed p50 " + fmtIv(runfile.IvOf(c, "unarmed-ns/p50"), nsUnit)
			if p99, ok := c.Metric("unarmed-ns/p99"); ok {
				line += ", p99 " + present.FmtNs(p99)
			}
		}
		w.p("%s.", line)
	}
	w.spurious("Race", "race")
	for _, be := range present.OrderedBackends(backends) {
		for _, pl := range places {
			w.plotLink(charts.RaceStealsStem(be, pl), "steals vs achieved competitor rate, backend="+be+placeAlt(pl))
		}
	}
	w.plotLink("race-window-cdf", "race window CDF")
	w.p("")
}

func placeAlt(pl string) string {
	if pl == "" {
		return ""
	}
	return ", place=" + pl
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
		k, ok := r.Metrics["spurious-refusals"]
		if !ok {
			v, ok2 := r.Metrics["spurious/op"]
			if !ok2 {
				continue
			}
			k = v * float64(r.Iterations)
		}
		st := runfile.NameParams(r.Name)["strategy"]
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
	for _, st := range slices.Sorted(maps.Keys(by)) {
		a := by[st]
		if a.k == 0 {
			w.p("- %s: no spurious refusals in %d %s runs (%.0f operations).", st, a.runs, what, a.n)
			continue
		}
		w.p("- %s refused %.0f reservations spuriously (a slot was free; the caller retries) over %d %s runs of %.0f operations; worst run: %.0f in %d operations (`%s`).",
			st, a.k, a.runs, what, a.n, a.worst, a.worstOps, a.worstName)
	}
}

// raceGapCause says why a race case's measured steal rate is outside what
// its own window and competitor rate predict, where the cause is known from
// how the case runs (see bench/race_predict.go), and marks it unexplained
// otherwise.
func raceGapCause(c *runfile.Case, measured stats.Interval, predicted float64) string {
	p := runfile.NameParams(c.Name)
	switch {
	case p["place"] == "same" && measured.Hi < predicted:
		return "because holder and competitor share one CPU: the competitor runs only when the scheduler preempts the holder, so its attempts almost never land inside the window, while the prediction assumes they arrive independently of it"
	case p["strategy"] == "mutex" && measured.Hi < predicted:
		return "because the holder releases and re-reserves under one mutex and gets it straight back: the competitor's attempts queue behind the lock instead of landing in the window"
	case p["rate"] == "max" && measured.Lo > predicted:
		cause := "because an unlimited competitor that wins keeps re-taking the slot, and while it is preempted holding it the holder makes no changes at all, so the competitor's on-CPU share understates its presence in the windows that remain"
		if p["backend"] == "perf" {
			cause += "; on perf its CPU-bound opens also take the write side of bp_cpuinfo_sem, which holds back the holder's re-open"
		}
		return cause
	}
	return "**unexplained**"
}
