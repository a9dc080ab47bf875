package runfile

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"bpbench/bench"
	"bpbench/stats"
)

// Case is one case of a run with its repetitions folded together:
// the median of every figure, the latency and window histograms with the
// most samples.
type Case struct {
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
	CI      map[string]stats.Interval
	Latency *bench.Histogram
	Window  *bench.Histogram
}

// Family returns the first element of the name ("Update", "Race", ...).
func (c *Case) Family() string {
	f, _, _ := strings.Cut(c.Name, "/")
	return f
}

// Metric returns a metric, and whether the case reported it.
func (c *Case) Metric(unit string) (float64, bool) {
	v, ok := c.Metrics[unit]
	return v, ok
}

// Summarize folds repetitions of the same case, keeping first-seen order.
func Summarize(r *Run) []*Case {
	byName := map[string][]bench.Result{}
	var order []string
	for _, res := range r.Results {
		if _, ok := byName[res.Name]; !ok {
			order = append(order, res.Name)
		}
		byName[res.Name] = append(byName[res.Name], res)
	}
	out := make([]*Case, 0, len(order))
	for _, name := range order {
		reps := byName[name]
		cs := &Case{Experiment: reps[0].Experiment, Name: name, Reps: len(reps), Metrics: map[string]float64{}}
		cs.Params = map[string]string{}
		for k, v := range reps[0].Params {
			cs.Params[k] = v
		}
		for k, v := range bench.NameParams(name) {
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
		cs.NsPerOp = stats.Median(ns)
		cs.NsMin, cs.NsMax = slices.Min(ns), slices.Max(ns)
		for u, vs := range units {
			cs.Metrics[u] = stats.Median(vs)
		}
		units[bench.UnitNsPerOp] = ns
		cs.CI = map[string]stats.Interval{}
		for u, vs := range units {
			switch b := reps[0].Batches[u]; {
			case len(vs) > 1:
				cs.CI[u] = stats.MedianInterval(vs, "runs")
			case len(b) > 1:
				cs.CI[u] = stats.MedianInterval(b, "batches")
			default:
				cs.CI[u] = stats.MedianInterval(vs, "runs")
			}
		}
		out = append(out, cs)
	}
	return out
}

// Family returns the summaries whose name starts with fam + "/".
func Family(all []*Case, fam string) []*Case {
	var out []*Case
	for _, c := range all {
		if c.Family() == fam {
			out = append(out, c)
		}
	}
	return out
}

// IvOf returns c's interval for unit ("ns/op" or a metric unit); a
// figure without one is a single value.
func IvOf(c *Case, unit string) stats.Interval {
	if iv, ok := c.CI[unit]; ok && iv.N > 0 {
		return iv
	}
	v := c.NsPerOp
	if unit != bench.UnitNsPerOp {
		v = c.Metrics[unit]
	}
	return stats.Interval{Median: v, Lo: v, Hi: v, N: 1, From: "runs"}
}

func HasParams(c *Case, want map[string]string) bool {
	p := bench.NameParams(c.Name)
	for k, v := range want {
		if p[k] != v {
			return false
		}
	}
	return true
}

// ParamValues returns the values a name parameter takes over cases, in
// sortedCategories order ("" for cases without it).
func ParamValues(cases []*Case, key string) []string {
	set := map[string]bool{}
	for _, c := range cases {
		set[bench.NameParams(c.Name)[key]] = true
	}
	return SortedCategories(set)
}

func MustMetric(c *Case, unit string) float64 {
	v, _ := c.Metric(unit)
	return v
}

// StealsIv is a race case's steals per update with its interval: over
// runs when it ran several times, else the run's Wilson interval
// (steals-lo/op, steals-hi/op, widened by the batches' dispersion).
func StealsIv(c *Case) stats.Interval {
	iv := IvOf(c, bench.MetricSteals)
	if iv.N > 1 {
		return iv
	}
	lo, lok := c.Metric(bench.MetricStealsLo)
	hi, hok := c.Metric(bench.MetricStealsHi)
	if !lok || !hok {
		return iv
	}
	return stats.Interval{Median: iv.Median, Lo: lo, Hi: hi, N: int(c.Iterations), From: "updates (Wilson)", Coverage: stats.Confidence}
}

// TputIv is a scaling case's throughput (ops/s) with its interval.
func TputIv(c *Case) stats.Interval { return IvOf(c, bench.MetricOpsPerSec) }

// Subset returns the cases whose name parameter key is v ("" also
// matching cases without it).
func Subset(cases []*Case, key, v string) []*Case {
	var out []*Case
	for _, c := range cases {
		if bench.NameParams(c.Name)[key] == v {
			out = append(out, c)
		}
	}
	return out
}

// SortedCategories orders numeric-looking values numerically, then the rest.
func SortedCategories(set map[string]bool) []string {
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
