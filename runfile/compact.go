package runfile

import (
	"math"
	"slices"

	"bpbench/bench"
	"bpbench/internal/present"
	"bpbench/stats"
)

// results.json must stay small enough to commit (a whole reference run,
// plots included, under 5 MB) while keeping every figure a report, a plot
// or compare reads. What is dropped or rounded is what no reader can
// tell: CDF points beyond what a plot resolves, CDFs of repetitions no
// plot draws, and digits below any measurement's noise.
const (
	// maxCDFPoints bounds the points kept per histogram's CDF.
	maxCDFPoints = 40
	// cdfDigits and batchDigits are the significant digits kept in CDF
	// points and batch values.
	cdfDigits   = 4
	batchDigits = 5
	// ciDigits and noiseDigits round the summaries' intervals and the
	// noise fractions.
	ciDigits    = 6
	noiseDigits = 3
)

// RunFile is results.json: a Run (which old readers load, ignoring
// the rest) and the summaries computed from it.
type RunFile struct {
	*Run
	// Summaries give every case's median and 95% interval per unit, the
	// headline figures with their uncertainty.
	Summaries []fileSummary `json:"summaries,omitempty"`
}

// fileSummary is one case of runFile.Summaries.
type fileSummary struct {
	Experiment string                    `json:"experiment"`
	Name       string                    `json:"name"`
	Reps       int                       `json:"reps"`
	CI         map[string]stats.Interval `json:"ci"`
}

func fileSummaries(r *Run) []fileSummary {
	var out []fileSummary
	for _, cs := range Summarize(r) {
		ci := make(map[string]stats.Interval, len(cs.CI))
		for u, iv := range cs.CI {
			iv.Median, iv.Lo, iv.Hi = present.RoundSig(iv.Median, ciDigits), present.RoundSig(iv.Lo, ciDigits), present.RoundSig(iv.Hi, ciDigits)
			iv.Coverage = present.RoundSig(iv.Coverage, 4)
			ci[u] = iv
		}
		out = append(out, fileSummary{Experiment: cs.Experiment, Name: cs.Name, Reps: cs.Reps, CI: ci})
	}
	return out
}

// compactRun returns a copy of r whose histograms hold at most
// maxCDFPoints rounded CDF points, only on the repetition of a case that
// summarize picks (the one with the most samples), and whose batch values
// are rounded, and kept only for cases run fewer than minSignificant
// times. It is idempotent, so results.json round-trips.
func compactRun(r *Run) *Run {
	c := *r
	c.Results = slices.Clone(r.Results)
	keepLat, keepWin, reps := map[string]int{}, map[string]int{}, map[string]int{}
	for i, res := range c.Results {
		reps[res.Name]++
		pick(keepLat, c.Results, i, res.Latency, func(x bench.Result) *bench.Histogram { return x.Latency })
		pick(keepWin, c.Results, i, res.Window, func(x bench.Result) *bench.Histogram { return x.Window })
	}
	for i := range c.Results {
		res := &c.Results[i]
		res.Latency = compactHist(res.Latency, keepLat[res.Name] == i)
		res.Window = compactHist(res.Window, keepWin[res.Name] == i)
		if n := res.Noise; n != nil {
			rn := *n
			rn.LoadAvg1, rn.Busy, rn.Steal = present.RoundSig(n.LoadAvg1, noiseDigits), present.RoundSig(n.Busy, noiseDigits), present.RoundSig(n.Steal, noiseDigits)
			res.Noise = &rn
		}
		// With enough runs, the runs are the samples (of the summaries'
		// intervals and of compare): nothing reads the batches.
		if reps[res.Name] >= stats.MinSignificant {
			res.Batches = nil
		}
		if res.Batches != nil {
			b := make(map[string][]float64, len(res.Batches))
			for u, vs := range res.Batches {
				b[u] = roundAll(vs, batchDigits)
			}
			res.Batches = b
		}
	}
	return &c
}

// pick records in keep the index of the result of res's name whose
// histogram has the most samples, first one on ties, as summarize does.
func pick(keep map[string]int, all []bench.Result, i int, h *bench.Histogram, of func(bench.Result) *bench.Histogram) {
	if h == nil {
		return
	}
	name := all[i].Name
	j, ok := keep[name]
	if !ok || h.Count > of(all[j]).Count {
		keep[name] = i
	}
}

func compactHist(h *bench.Histogram, withCDF bool) *bench.Histogram {
	if h == nil {
		return nil
	}
	c := *h
	if !withCDF {
		c.CDF = nil
		return &c
	}
	c.CDF = thinCDF(h.CDF, maxCDFPoints)
	return &c
}

// thinCDF keeps at most k points of cdf: the first and last, the first
// point at or past each tail fraction a plot labels (p50 ... p99.99), and
// points evenly spaced in index (the harness's buckets are log-spaced, so
// evenly in log ns) for the rest; values are rounded to cdfDigits.
func thinCDF(cdf []bench.CDFPoint, k int) []bench.CDFPoint {
	if len(cdf) == 0 {
		return nil
	}
	keep := map[int]bool{0: true, len(cdf) - 1: true}
	if len(cdf) > k {
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
			if i, ok := slices.BinarySearchFunc(cdf, q, func(p bench.CDFPoint, q float64) int {
				return cmpFloat(p.Fraction, q)
			}); ok || i < len(cdf) {
				keep[i] = true
			}
		}
		for j := 1; len(keep) < k && j < k; j++ {
			keep[int(math.Round(float64(j)*float64(len(cdf)-1)/float64(k-1)))] = true
		}
	} else {
		for i := range cdf {
			keep[i] = true
		}
	}
	idx := make([]int, 0, len(keep))
	for i := range keep {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	out := make([]bench.CDFPoint, 0, len(idx))
	for _, i := range idx {
		out = append(out, bench.CDFPoint{NS: present.RoundSig(cdf[i].NS, cdfDigits), Fraction: present.RoundSig(cdf[i].Fraction, cdfDigits+2)})
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func roundAll(vs []float64, digits int) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = present.RoundSig(v, digits)
	}
	return out
}
