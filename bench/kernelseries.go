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
// fewer), and enough repeats to create at least seriesMinThreads
// threads a run, at least seriesMinRepeat. Before 6.1 a thread created
// with 4 inherited breakpoints walks every live task breakpoint on every
// CPU, 4 times: the live breakpoints, and so each thread's cost, depend
// on the parallelism and the threads per batch, not on the repeats,
// which only set how many threads the figure averages over. At 32
// emulated CPUs one repeat of -p 32 -t 8 creates 256 threads, and 5.10
// takes about 25 s for every 1000 of them.
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
		perRepeat := cpus * t
		ps = append(ps, threadParams{Breakpoints: 4, Parallelism: cpus, Threads: t, Repeat: max(seriesMinRepeat, (seriesMinThreads+perRepeat-1)/perRepeat)})
	}
	return ps
}

// seriesMinThreads is the fewest threads one run of the series'
// benchmark creates (parallelism x threads x repeats), and
// seriesMinRepeat the fewest repeats.
const (
	seriesMinThreads = 512
	seriesMinRepeat  = 4
)

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
