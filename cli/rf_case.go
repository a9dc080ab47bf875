package cli

import (
	"bpbench/bench"
	"slices"
	"strings"
)

// caseSummary is one case of a run with its repetitions folded together:
// the median of every figure, the latency and window histograms with the
// most samples.
type caseSummary struct {
	Experiment string
	Name       string
	Params     map[string]string // key=value parts of Name, then Result.Params
	Reps       int
	Iterations int64 // summed over repetitions
	NsPerOp    float64
	// NsMin and NsMax are the extremes of NsPerOp over the repetitions:
	// the run-to-run spread that update-cost draws as whiskers.
	NsMin, NsMax float64
	Metrics      map[string]float64
	// CI holds, per unit ("ns/op" and every metric), the median and its
	// interval: over runs when the case ran more than once, else over
	// the run's batches (bench.Result.Batches), else a single value.
	CI      map[string]Interval
	Latency *bench.Histogram
	Window  *bench.Histogram
}

// Family returns the first element of the name ("Update", "Race", ...).
func (c *caseSummary) Family() string {
	f, _, _ := strings.Cut(c.Name, "/")
	return f
}

// Metric returns a metric, and whether the case reported it.
func (c *caseSummary) Metric(unit string) (float64, bool) {
	v, ok := c.Metrics[unit]
	return v, ok
}

// nameParams parses the key=value elements of a benchmark name.
func nameParams(name string) map[string]string {
	p := map[string]string{}
	for _, part := range strings.Split(name, "/")[1:] {
		if k, v, ok := strings.Cut(part, "="); ok {
			p[k] = v
		}
	}
	return p
}

// summarize folds repetitions of the same case, keeping first-seen order.
func summarize(r *bench.Run) []*caseSummary {
	byName := map[string][]bench.Result{}
	var order []string
	for _, res := range r.Results {
		if _, ok := byName[res.Name]; !ok {
			order = append(order, res.Name)
		}
		byName[res.Name] = append(byName[res.Name], res)
	}
	out := make([]*caseSummary, 0, len(order))
	for _, name := range order {
		reps := byName[name]
		cs := &caseSummary{Experiment: reps[0].Experiment, Name: name, Reps: len(reps), Metrics: map[string]float64{}}
		cs.Params = map[string]string{}
		for k, v := range reps[0].Params {
			cs.Params[k] = v
		}
		for k, v := range nameParams(name) {
			cs.Params[k] = v
		}
		var ns []float64
		units := map[string][]float64{}
		for _, res := range reps {
			cs.Iterations += res.Iterations
			ns = append(ns, res.NsPerOp)
			for u, v := range res.Metrics {
				units[u] = append(units[u], v)
			}
			if h := res.Latency; h != nil && (cs.Latency == nil || h.Count > cs.Latency.Count) {
				cs.Latency = h
			}
			if h := res.Window; h != nil && (cs.Window == nil || h.Count > cs.Window.Count) {
				cs.Window = h
			}
		}
		cs.NsPerOp = median(ns)
		cs.NsMin, cs.NsMax = slices.Min(ns), slices.Max(ns)
		for u, vs := range units {
			cs.Metrics[u] = median(vs)
		}
		units["ns/op"] = ns
		cs.CI = map[string]Interval{}
		for u, vs := range units {
			switch b := reps[0].Batches[u]; {
			case len(vs) > 1:
				cs.CI[u] = medianInterval(vs, "runs")
			case len(b) > 1:
				cs.CI[u] = medianInterval(b, "batches")
			default:
				cs.CI[u] = medianInterval(vs, "runs")
			}
		}
		out = append(out, cs)
	}
	return out
}

// family returns the summaries whose name starts with fam + "/".
func family(all []*caseSummary, fam string) []*caseSummary {
	var out []*caseSummary
	for _, c := range all {
		if c.Family() == fam {
			out = append(out, c)
		}
	}
	return out
}

// unitIn returns the first of units that some case in cs reports, so that
// readers follow a renamed metric (Apply's ns/thread became
// ns/change-thread) and still read older result files; "" if none.
func unitIn(cs []*caseSummary, units ...string) string {
	for _, u := range units {
		for _, c := range cs {
			if _, ok := c.Metrics[u]; ok {
				return u
			}
		}
	}
	return ""
}

// ivOf returns c's interval for unit ("ns/op" or a metric unit); a
// figure without one is a single value.
func ivOf(c *caseSummary, unit string) Interval {
	if iv, ok := c.CI[unit]; ok && iv.N > 0 {
		return iv
	}
	v := c.NsPerOp
	if unit != "ns/op" {
		v = c.Metrics[unit]
	}
	return Interval{Median: v, Lo: v, Hi: v, N: 1, From: "runs"}
}

func hasParams(c *caseSummary, want map[string]string) bool {
	p := nameParams(c.Name)
	for k, v := range want {
		if p[k] != v {
			return false
		}
	}
	return true
}

// paramValues returns the values a name parameter takes over cases, in
// sortedCategories order ("" for cases without it).
func paramValues(cases []*caseSummary, key string) []string {
	set := map[string]bool{}
	for _, c := range cases {
		set[nameParams(c.Name)[key]] = true
	}
	return sortedCategories(set)
}

func mustMetric(c *caseSummary, unit string) float64 {
	v, _ := c.Metric(unit)
	return v
}

// stealsIv is a race case's steals per update with its interval: over
// runs when it ran several times, else the case's Wilson interval
// (steals-lo/op, steals-hi/op), else Wilson's from the pooled count.
func stealsIv(c *caseSummary) Interval {
	iv := ivOf(c, "steals/op")
	if iv.N > 1 {
		return iv
	}
	lo, lok := c.Metric("steals-lo/op")
	hi, hok := c.Metric("steals-hi/op")
	if !lok || !hok {
		lo, hi = Wilson(iv.Median*float64(c.Iterations), float64(c.Iterations))
	}
	return Interval{Median: iv.Median, Lo: lo, Hi: hi, N: int(c.Iterations), From: "updates (Wilson)", Coverage: Confidence}
}

// tputIv is a scaling case's throughput with its interval, from ops/s or
// else from the inverse of ns/op.
func tputIv(c *caseSummary) Interval {
	if _, ok := c.Metric("ops/s"); ok {
		return ivOf(c, "ops/s")
	}
	iv := ivOf(c, "ns/op")
	inv := func(v float64) float64 {
		if v <= 0 {
			return 0
		}
		return 1e9 / v
	}
	iv.Median, iv.Lo, iv.Hi = inv(iv.Median), inv(iv.Hi), inv(iv.Lo)
	return iv
}

// subset returns the cases whose name parameter key is v ("" also
// matching cases without it).
func subset(cases []*caseSummary, key, v string) []*caseSummary {
	var out []*caseSummary
	for _, c := range cases {
		if nameParams(c.Name)[key] == v {
			out = append(out, c)
		}
	}
	return out
}
