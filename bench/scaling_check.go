package bench

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"bpbench/internal/present"
	"bpbench/stats"
)

// scalingCheck holds Scaling's throughput to what the machine can do: at g
// goroutines on c CPUs a strategy completes at most min(g, c) times its
// single-goroutine throughput, since g goroutines can use no more than
// min(g, c) CPUs and sharing the allocator only costs. A case whose
// interval lies wholly above that bound (its low end above min(g, c)
// times the single goroutine's high end, so the excess is beyond the
// noise both intervals show) measured something else: the per-worker sum
// of rates once reported 5.47x at 8 goroutines on 2 vCPUs. Load only
// slows a case down, so what other processes took of the machine while
// the single goroutine ran (its Noise) widens the bound: at most that
// share of all CPUs could have been taken from its one CPU. An interval
// of one value has no spread to judge by and is not judged.
func scalingCheck(rs []Result) []Violation {
	return throughputBound(rs, runtime.NumCPU())
}

// throughputBound is scalingCheck on a machine of ncpu CPUs.
func throughputBound(rs []Result, ncpu int) []Violation {
	type key struct{ strategy, mix string }
	runs := map[string][]Result{} // by case name, repetitions in order
	var names []string
	one := map[key]string{} // the single-goroutine case of each strategy and mix
	for _, r := range rs {
		p := NameParams(r.Name)
		if !strings.HasPrefix(r.Name, "Scaling/") || p[ParamGoroutines] == "" {
			continue
		}
		if _, seen := runs[r.Name]; !seen {
			names = append(names, r.Name)
		}
		runs[r.Name] = append(runs[r.Name], r)
		if p[ParamGoroutines] == "1" {
			one[key{p[ParamStrategy], p[ParamMix]}] = r.Name
		}
	}
	var out []Violation
	for _, name := range names {
		p := NameParams(name)
		g, err := strconv.Atoi(p[ParamGoroutines])
		base, ok := one[key{p[ParamStrategy], p[ParamMix]}]
		if err != nil || g <= 1 || !ok {
			continue
		}
		iv, bv := throughputInterval(runs[name]), throughputInterval(runs[base])
		if iv.N < 2 || bv.N < 2 {
			continue
		}
		k := float64(min(g, ncpu))
		taken := loadTaken(runs[base], ncpu)
		if taken >= 0.95 {
			continue // the single goroutine may have had nearly nothing
		}
		if iv.Lo > k*bv.Hi/(1-taken) {
			load := ""
			if taken > 0 {
				load = fmt.Sprintf(", even if other processes took %.0f%% of its CPU", 100*taken)
			}
			out = append(out, Violation{Name: name, Reason: fmt.Sprintf(
				"throughput %s ops/s [%s, %s] at %d goroutines exceeds %d × the single goroutine's %s ops/s [%s, %s] beyond both intervals%s: %d goroutines on %d CPUs can use at most %d of them",
				present.TrimFloat(iv.Median), present.TrimFloat(iv.Lo), present.TrimFloat(iv.Hi), g,
				int(k), present.TrimFloat(bv.Median), present.TrimFloat(bv.Lo), present.TrimFloat(bv.Hi), load, g, ncpu, int(k))})
		}
	}
	return out
}

// throughputInterval is the interval of the median ops/s of a case's
// repetitions: over the repetitions when there are several, else over the
// one run's wall-clock batches.
func throughputInterval(reps []Result) stats.Interval {
	var vs []float64
	for _, r := range reps {
		if v, ok := r.Metrics[MetricOpsPerSec]; ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 1 && len(reps[0].Batches[MetricOpsPerSec]) > 1 {
		return stats.MedianInterval(reps[0].Batches[MetricOpsPerSec], "batches")
	}
	return stats.MedianInterval(vs, "runs")
}

// loadTaken is the most that other processes (and the hypervisor) can have
// taken from one CPU during any of reps: their share of all CPUs' time
// times the CPUs, at most 1.
func loadTaken(reps []Result, ncpu int) float64 {
	taken := 0.0
	for _, r := range reps {
		if r.Noise != nil {
			taken = max(taken, min(1, (r.Noise.Others+r.Noise.Steal)*float64(ncpu)))
		}
	}
	return taken
}
