package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// The kernel-series experiment runs the 2022 series' own benchmark
// (Elver, "perf/hw_breakpoint: Optimize for thousands of tasks":
// `perf bench -r 30 breakpoint thread -b 4 -p 64 -t 64` on 256 CPUs,
// 236 s before and 0.067 s after) and its Go twin (the kernel
// experiment's thread case), with the parallelism and the threads per
// batch scaled to this machine's CPUs, so that a kernel booted at 2, 8
// or 32 vCPUs runs the series' shape at its own size.
var kernelSeriesExperiment = Experiment{
	Name:     "kernel-series",
	Question: "What does the 2022 series' own benchmark (perf bench breakpoint thread -b 4, parallelism and threads scaled to the CPU count) cost on this kernel, from perf bench and from Go, against the same run without breakpoints?",
	Cases:    kernelSeriesCases,
}

// kernelSeriesParams returns the thread-benchmark parameters for a
// machine of cpus CPUs: parallelism = cpus (the series used a quarter of
// its 256 CPUs; here every CPU creates threads), threads per batch =
// cpus up to 8 (the full form adds cpus, or 2 x cpus when that is 8 or
// fewer), and one batch for each parallel thread, or more to create at
// least seriesMinThreads threads. Before 6.1 a thread
// created with 4 inherited breakpoints walks every live task breakpoint
// on every CPU, 4 times: at 32 emulated CPUs, -t 32 takes minutes a run.
func kernelSeriesParams(o Options, cpus int) []threadParams {
	ts := []int{min(cpus, 8)}
	if o.Full {
		if cpus > 8 {
			ts = append(ts, cpus)
		} else {
			ts = append(ts, 2*cpus)
		}
	}
	var ps []threadParams
	for _, t := range ts {
		// At least seriesMinThreads threads a run: at 2 CPUs, one batch
		// per parallel thread would be 4 threads, too few to time.
		ps = append(ps, threadParams{Breakpoints: 4, Parallelism: cpus, Threads: t, Repeat: max(cpus, (seriesMinThreads+t-1)/t)})
	}
	return ps
}

// seriesMinThreads is the fewest threads one run of the series'
// benchmark creates.
const seriesMinThreads = 128

func kernelSeriesCases(o Options) ([]Case, error) {
	var cs []Case
	for _, p := range kernelSeriesParams(o, runtime.NumCPU()) {
		c := threadCase(p)
		run := c.Run
		c.Run = func(ctx context.Context, n int64, t Timer) (Result, error) {
			res, err := run(ctx, n, t)
			res.Experiment = "kernel-series"
			if res.Params != nil {
				res.Params["cpus"] = fmt.Sprint(runtime.NumCPU())
			}
			return res, err
		}
		// Thread creation with inherited breakpoints is what the
		// pre-2022 walk makes O(threads x CPUs).
		c.Estimate = max(c.Estimate, time.Duration(p.Repeat*p.Threads)*4*kernelRounds*200*time.Microsecond)
		cs = append(cs, c)
	}
	return cs, nil
}
