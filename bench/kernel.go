package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"bpbench/bench/harness"
	"bpbench/stats"
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

var kernelExperiment = Experiment{Name: "kernel", Cases: kernelCases,
	Question: "How much do inherited hardware breakpoints slow down thread creation and how much does toggling one cost, measured from Go and by perf bench breakpoint on the same kernel?"}

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
			args := func(b int) []string {
				return []string{"thread", "-b", strconv.Itoa(b), "-p", strconv.Itoa(p.Parallelism), "-t", strconv.Itoa(p.Threads)}
			}
			goRun := func(p threadParams) func(context.Context) (kernelSample, error) {
				return func(ctx context.Context) (kernelSample, error) {
					run, err := runThread(ctx, p, false)
					if err != nil {
						return kernelSample{}, err
					}
					if run.DistinctOS != run.Workers {
						return kernelSample{}, fmt.Errorf("bench: %s: %d of %d workers ran on a thread id already used within the previous %d workers; threads were reused, not created", name, run.Workers-run.DistinctOS, run.Workers, run.Window)
					}
					return run.sample(), nil
				}
			}
			r := kernelRuns{goRun: goRun(p), perfArgs: args(p.Breakpoints), perOp: p.Repeat * p.Threads}
			if p.Breakpoints > 0 {
				base := p
				base.Breakpoints = 0
				r.goBase = goRun(base)
				r.perfBaseArgs = args(0)
			}
			f, err := r.alternate(ctx, t, p.Repeat)
			if err != nil {
				return Result{}, err
			}
			return f.result(name, int64(p.Repeat*p.Threads), kernelParams("breakpoints", strconv.Itoa(p.Breakpoints), "parallelism", strconv.Itoa(p.Parallelism),
				"threads", strconv.Itoa(p.Threads), ParamRepeat, strconv.Itoa(p.Repeat), "rounds", strconv.Itoa(kernelRounds))), nil
		},
	}
}

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
			r := kernelRuns{
				goRun: func(ctx context.Context) (kernelSample, error) {
					u, err := runEnable(ctx, p)
					return kernelSample{usecs: u}, err
				},
				perfArgs: []string{"enable", "-p", strconv.Itoa(p.Passive), "-a", strconv.Itoa(p.Active)},
			}
			f, err := r.alternate(ctx, t, p.Repeat)
			if err != nil {
				return Result{}, err
			}
			return f.result(name, int64(p.Repeat), kernelParams("passive", strconv.Itoa(p.Passive), "active", strconv.Itoa(p.Active), ParamRepeat, strconv.Itoa(p.Repeat), "rounds", strconv.Itoa(kernelRounds))), nil
		},
	}
}

// kernelRounds is how many times each case alternates its Go and perf
// bench runs: each tool's figures are medians over the rounds with their
// intervals (Result.Batches), perf bench's included, so that even a
// single run of the suite compares intervals, not single values. Five
// rounds make the median's interval from the extreme rounds a 94% one.
const kernelRounds = 5

// kernelSample is one run of a kernel workload: its µs per operation and,
// for a thread run, the context switches it made per thread created.
type kernelSample struct {
	usecs float64
	// csw and ivcsw are the voluntary and involuntary context switches
	// per thread created (0 for an enable run, which does not count
	// them).
	csw, ivcsw float64
}

// kernelRuns are the runs a kernel case alternates: its Go run and perf
// bench's (perfArgs after `perf bench -r N breakpoint`) of the same
// workload and, for a thread case with breakpoints, the same two without
// them (goBase and perfBaseArgs, nil otherwise). perOp is the operations
// a run makes (threads created), which perf bench's context switches are
// divided by; 0 when they are not counted.
type kernelRuns struct {
	goRun, goBase          func(context.Context) (kernelSample, error)
	perfArgs, perfBaseArgs []string
	perOp                  int
}

// kernelFigures are each of a case's runs, one per round.
type kernelFigures struct {
	goU, goBase, perfU, perfBase []kernelSample
	havePerf                     bool // perf bench ran every round
}

// alternate runs r for kernelRounds rounds, in the same order each round:
// the machine is shared and noisy, so the ratios compare runs made at
// nearly the same time. perf bench runs with -r repeat; once it is missing
// or skips (no hardware support), the rounds go on without it. t runs
// around the first Go run only: go test's ns/op is one Go run, child start
// included.
func (r kernelRuns) alternate(ctx context.Context, t Timer, repeat int) (kernelFigures, error) {
	f := kernelFigures{havePerf: true}
	perf := func(args []string) (kernelSample, bool, error) {
		pr, ok, err := runPerfBench(ctx, repeat, args...)
		ks := kernelSample{usecs: pr.Usecs}
		if r.perOp > 0 {
			ks.csw = float64(pr.Switches.Voluntary) / float64(r.perOp)
			ks.ivcsw = float64(pr.Switches.Involuntary) / float64(r.perOp)
		}
		return ks, ok, err
	}
	for round := 0; round < kernelRounds; round++ {
		if round == 0 {
			t.StartTimer()
		}
		u, err := r.goRun(ctx)
		t.StopTimer()
		if err != nil {
			return f, err
		}
		f.goU = append(f.goU, u)
		if r.goBase != nil {
			b0, err := r.goBase(ctx)
			if err != nil {
				return f, err
			}
			f.goBase = append(f.goBase, b0)
		}
		if !f.havePerf {
			continue
		}
		pu, ok, err := perf(r.perfArgs)
		if err != nil || !ok {
			if err = ignoreSkip(err); err != nil {
				return f, err
			}
			f.havePerf = false
			continue
		}
		f.perfU = append(f.perfU, pu)
		if r.perfBaseArgs != nil {
			pb0, _, err := perf(r.perfBaseArgs)
			if err != nil {
				return f, err
			}
			f.perfBase = append(f.perfBase, pb0)
		}
	}
	return f, nil
}

// result is the case's Result: the median Go usecs/op as the headline
// and, where they ran, the baseline's ("b0-usecs/op"), the slowdown
// against it ("slowdown"), perf bench's figures ("perf-usecs/op",
// "go/perf", "perf-b0-usecs/op", "perf-slowdown") and the context
// switches per thread created ("csw/thread", "perf-csw/thread" and their
// involuntary "ivcsw/thread", "perf-ivcsw/thread"). Each is the median
// over the rounds, a ratio the median of the rounds' ratios (the two
// runs of a round ran back to back, so a burst of load lands on both),
// and every round's value is a batch, so that each figure has an
// interval.
func (f kernelFigures) result(name string, iterations int64, params map[string]string) Result {
	res := Result{
		Experiment: "kernel",
		Name:       name,
		Params:     params,
		Iterations: iterations,
		Metrics:    map[string]float64{},
		Batches:    map[string][]float64{},
	}
	put := func(unit string, vs []float64) {
		if len(vs) == 0 {
			return
		}
		res.Metrics[unit] = stats.Median(vs)
		if len(vs) > 1 {
			res.Batches[unit] = vs
		}
	}
	goU := usecsOf(f.goU)
	put(MetricUsecs, goU)
	res.NsPerOp = res.Metrics[MetricUsecs] * 1e3
	if len(goU) > 1 {
		ns := make([]float64, len(goU))
		for i, u := range goU {
			ns[i] = u * 1e3
		}
		res.Batches[UnitNsPerOp] = ns
	}
	if len(f.goBase) > 0 {
		put(MetricB0Usecs, usecsOf(f.goBase))
		put(MetricSlowdown, ratios(f.goU, f.goBase))
	}
	if anyCsw(f.goU) {
		put(MetricCswPerThread, cswOf(f.goU, false))
		put(MetricIvcswPerThread, cswOf(f.goU, true))
	}
	if f.havePerf && len(f.perfU) > 0 {
		put(MetricPerfUsecs, usecsOf(f.perfU))
		put(MetricGoPerPerf, ratios(f.goU, f.perfU))
		if len(f.perfBase) > 0 {
			put(MetricPerfB0Usecs, usecsOf(f.perfBase))
			put(MetricPerfSlowdown, ratios(f.perfU, f.perfBase))
		}
		if anyCsw(f.perfU) {
			put(MetricPerfCswPerThread, cswOf(f.perfU, false))
			put(MetricPerfIvcswPerThread, cswOf(f.perfU, true))
		}
	}
	if len(res.Batches) == 0 {
		res.Batches = nil
	}
	return res
}

func usecsOf(ks []kernelSample) []float64 {
	out := make([]float64, len(ks))
	for i, k := range ks {
		out[i] = k.usecs
	}
	return out
}

func cswOf(ks []kernelSample, involuntary bool) []float64 {
	out := make([]float64, len(ks))
	for i, k := range ks {
		out[i] = k.csw
		if involuntary {
			out[i] = k.ivcsw
		}
	}
	return out
}

func anyCsw(ks []kernelSample) bool {
	for _, k := range ks {
		if k.csw > 0 || k.ivcsw > 0 {
			return true
		}
	}
	return false
}

// ratios are the rounds' a/b, as many as both have.
func ratios(a, b []kernelSample) []float64 {
	out := make([]float64, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i].usecs / b[i].usecs
	}
	return out
}

// ignoreSkip drops a perf bench skip (no hardware support): the Go figures
// still stand.
func ignoreSkip(err error) error {
	if errors.Is(err, ErrSkip) {
		return nil
	}
	return err
}
