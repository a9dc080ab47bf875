package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"bpbench/bench/harness"
)

// The kernel experiment re-implements `perf bench breakpoint thread` and
// `perf bench breakpoint enable` (tools/perf/bench/breakpoint.c) in Go.
//
// perf bench opens inheritable breakpoints on its main thread before it
// creates any thread, so every thread of the process carries them. A Go
// process has runtime threads before main runs, and the runtime clones new
// threads from whichever thread needs one, so opening the breakpoints in
// the measuring process would leave most threads without them. Instead the
// workload runs in a child (this binary re-executed in a child mode): it is
// stopped by ptrace at exec, the breakpoints are opened on its only thread
// with inherit = 1, and it is released; every thread the Go runtime then
// creates inherits them, and the parent's fds are the parents of all the
// inherited events, as in perf bench.

var kernelExperiment = Experiment{
	Name:     "kernel",
	Question: "How much do inherited hardware breakpoints slow down thread creation and how much does toggling one cost, measured from Go and by perf bench breakpoint on the same kernel?",
	Cases:    kernelCases,
}

// kernelCases lists the quick or full cases. Full matches the reference
// `perf bench -r 200 breakpoint thread -p 2 -t 10` with -b 0 and 4.
func kernelCases(o Options) ([]Case, error) {
	repeat, enableRepeat := 50, 2000
	bps := []int{0, 4}
	enables := [][2]int{{0, 0}, {16, 0}, {0, 1}}
	if o.Full {
		repeat, enableRepeat = 200, 4000
		bps = []int{0, 1, 4}
		enables = append(enables, [2]int{64, 0}, [2]int{16, 1})
	}
	var cs []Case
	for _, b := range bps {
		cs = append(cs, threadCase(threadParams{Breakpoints: b, Parallelism: 2, Threads: 10, Repeat: repeat}))
	}
	for _, pa := range enables {
		cs = append(cs, enableCase(enableParams{Passive: pa[0], Active: pa[1], Repeat: enableRepeat}))
	}
	return cs, nil
}

func kernelParams(kv ...string) map[string]string {
	m := map[string]string{"backend": "perf", "kernel": harness.KernelRelease(), "gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0))}
	if v := perfVersion(); v != "" {
		m["perf"] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// threadCase measures p with breakpoints and, for Breakpoints > 0, with
// none in the same case, from Go and from perf bench when installed.
// n > 0 sets the number of threads created (Repeat = n / Threads).
func threadCase(p threadParams) Case {
	name := fmt.Sprintf("KernelThread/breakpoints=%d/parallelism=%d/threads=%d", p.Breakpoints, p.Parallelism, p.Threads)
	return Case{
		Name:     name,
		Estimate: time.Duration(4*kernelRounds*p.Repeat*p.Threads) * 100 * time.Microsecond,
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			t.StopTimer()
			p := p // n must not change the case's own default
			if n > 0 {
				p.Repeat = max(1, int(n)/p.Threads)
			}
			base := p
			base.Breakpoints = 0
			args := func(b int) []string {
				return []string{"thread", "-b", strconv.Itoa(b), "-p", strconv.Itoa(p.Parallelism), "-t", strconv.Itoa(p.Threads)}
			}
			// The machine is shared and noisy: alternate the four runs for
			// kernelRounds rounds and report medians, so the ratios compare
			// runs made at nearly the same time.
			var goB, go0, perfB, perf0 []float64
			havePerf := true
			for r := 0; r < kernelRounds; r++ {
				if r == 0 { // go test's ns/op: one Go run, child start included
					t.StartTimer()
				}
				run, err := runThread(ctx, p, false)
				t.StopTimer()
				if err != nil {
					return Result{}, err
				}
				if run.DistinctOS != run.Workers {
					return Result{}, fmt.Errorf("bench: %s: %d of %d workers ran on a thread id already used within the previous %d workers; threads were reused, not created", name, run.Workers-run.DistinctOS, run.Workers, run.Window)
				}
				goB = append(goB, run.UsecsPerOp)
				if p.Breakpoints > 0 {
					b0, err := runThread(ctx, base, false)
					if err != nil {
						return Result{}, err
					}
					go0 = append(go0, b0.UsecsPerOp)
				}
				if !havePerf {
					continue
				}
				pu, ok, err := runPerfBench(ctx, p.Repeat, args(p.Breakpoints)...)
				if err != nil || !ok {
					if err = ignoreSkip(err); err != nil {
						return Result{}, err
					}
					havePerf = false
					continue
				}
				perfB = append(perfB, pu)
				if p.Breakpoints > 0 {
					pb0, _, err := runPerfBench(ctx, p.Repeat, args(0)...)
					if err != nil {
						return Result{}, err
					}
					perf0 = append(perf0, pb0)
				}
			}
			batches := roundBatches(goB)
			u := median(goB)
			res := Result{
				Experiment: "kernel",
				Name:       name,
				Params: kernelParams("breakpoints", strconv.Itoa(p.Breakpoints), "parallelism", strconv.Itoa(p.Parallelism),
					"threads", strconv.Itoa(p.Threads), "repeat", strconv.Itoa(p.Repeat), "rounds", strconv.Itoa(kernelRounds)),
				Iterations: int64(p.Repeat * p.Threads),
				NsPerOp:    u * 1e3,
				Metrics:    map[string]float64{"usecs/op": u},
				Batches:    batches,
			}
			if len(go0) > 0 {
				res.Metrics["b0-usecs/op"] = median(go0)
				res.Metrics["slowdown"] = u / median(go0)
			}
			if havePerf && len(perfB) > 0 {
				res.Metrics["perf-usecs/op"] = median(perfB)
				res.Metrics["go/perf"] = u / median(perfB)
				if len(perf0) > 0 {
					res.Metrics["perf-b0-usecs/op"] = median(perf0)
					res.Metrics["perf-slowdown"] = median(perfB) / median(perf0)
				}
			}
			return res, nil
		},
	}
}

// roundBatches returns the Go runs' usecs/op, one per round, as the case's
// batches: each round is a separate child process, as independent as
// runs of the case get.
func roundBatches(usecs []float64) map[string][]float64 {
	if len(usecs) < 2 {
		return nil
	}
	ns := make([]float64, len(usecs))
	for i, u := range usecs {
		ns[i] = u * 1e3
	}
	return map[string][]float64{"usecs/op": append([]float64(nil), usecs...), "ns/op": ns}
}

// kernelRounds is how many times each case alternates its Go and perf
// bench runs; results are medians.
const kernelRounds = 3

// enableCase measures p from Go and from perf bench when installed.
// n > 0 sets Repeat.
func enableCase(p enableParams) Case {
	name := fmt.Sprintf("KernelEnable/passive=%d/active=%d", p.Passive, p.Active)
	return Case{
		Name:     name,
		Estimate: kernelRounds * (time.Duration(2*p.Repeat)*100*time.Microsecond + 200*time.Millisecond),
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			t.StopTimer()
			p := p // n must not change the case's own default
			if n > 0 {
				p.Repeat = int(n)
			}
			var goU, perfU []float64
			havePerf := true
			for r := 0; r < kernelRounds; r++ {
				if r == 0 {
					t.StartTimer()
				}
				u, err := runEnable(ctx, p)
				t.StopTimer()
				if err != nil {
					return Result{}, err
				}
				goU = append(goU, u)
				if !havePerf {
					continue
				}
				pu, ok, err := runPerfBench(ctx, p.Repeat, "enable", "-p", strconv.Itoa(p.Passive), "-a", strconv.Itoa(p.Active))
				if err != nil || !ok {
					if err = ignoreSkip(err); err != nil {
						return Result{}, err
					}
					havePerf = false
					continue
				}
				perfU = append(perfU, pu)
			}
			batches := roundBatches(goU)
			u := median(goU)
			res := Result{
				Experiment: "kernel",
				Name:       name,
				Params:     kernelParams("passive", strconv.Itoa(p.Passive), "active", strconv.Itoa(p.Active), "repeat", strconv.Itoa(p.Repeat), "rounds", strconv.Itoa(kernelRounds)),
				Iterations: int64(p.Repeat),
				NsPerOp:    u * 1e3,
				Metrics:    map[string]float64{"usecs/op": u},
				Batches:    batches,
			}
			if havePerf && len(perfU) > 0 {
				res.Metrics["perf-usecs/op"] = median(perfU)
				res.Metrics["go/perf"] = u / median(perfU)
			}
			return res, nil
		},
	}
}

// ignoreSkip drops a perf bench skip (no hardware support): the Go figures
// still stand.
func ignoreSkip(err error) error {
	if errors.Is(err, ErrSkip) {
		return nil
	}
	return err
}
