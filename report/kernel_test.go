package report

import (
	"testing"

	"bpbench/bench"
	"bpbench/bench/harness"
	"bpbench/internal/fixtures"
	"bpbench/runfile"
)

// TestReportKernelSwitches: with the context switches per thread in the
// results, the kernel table shows them for both tools and the section says,
// with the run's counts, why the Go twin follows the load more, and which
// runs of the case were loaded.
func TestReportKernelSwitches(t *testing.T) {
	const name = "KernelThread/breakpoints=4/parallelism=2/threads=10"
	run := &runfile.Run{Machine: bench.Machine{NumCPU: 2}}
	run.Results = fixtures.Reps(name, []float64{180e3, 190e3, 200e3}, func(i int) map[string]float64 {
		return map[string]float64{
			bench.MetricUsecs: 180 + 10*float64(i), bench.MetricPerfUsecs: 90, bench.MetricSlowdown: 1.8, bench.MetricPerfSlowdown: 1.7,
			bench.MetricCswPerThread: 2.7, bench.MetricPerfCswPerThread: 1.1, bench.MetricIvcswPerThread: 1.3, bench.MetricPerfIvcswPerThread: 0.6,
		}
	})
	// One run shared the machine: 400 ticks, half of them others'.
	run.Results[1].Noise = &harness.Noise{Ticks: 400, CPUs: 2, Others: 0.5, Busy: 1}
	buildWant(t, run,
		"| voluntary switches per thread, Go / perf |",
		" | 2.70 [2.70, 2.70] / 1.10 [1.10, 1.10] |",
		"Why the Go twin is the more load-sensitive: in `"+name+"` it makes 2.70 [2.70, 2.70] voluntary context switches per created thread where perf bench makes 1.10 [1.10, 1.10] (involuntary, from preemption: 1.30 [1.30, 1.30] vs 0.6 [0.6, 0.6]).",
		"template thread",
		"In this run `"+name+"` ran under load in 1 of its 3 runs.",
	)
}
