package bench

// The code every experiment's cases share: options, op counts and
// budgets, the pinned allocator, the machine-wide lock, skipping, and the
// Result fields every case fills the same way.

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"bpbench/alloc"
	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/internal/cpupin"
	"bpbench/internal/kernlock"
	"bpbench/internal/support"
)

// checkOptions reports Options an experiment cannot run with, naming the
// bad field.
func checkOptions(exp string, o Options) error {
	if o.PinCPU < 0 || o.PinCPU >= runtime.NumCPU() {
		return fmt.Errorf("bench: %s: Options.PinCPU = %d out of range [0, %d)", exp, o.PinCPU, runtime.NumCPU())
	}
	return nil
}

// strategiesOf returns the strategies Options selects.
func strategiesOf(o Options) []string {
	if len(o.Strategies) > 0 {
		return o.Strategies
	}
	return alloc.Strategies()
}

// defaultOps picks a case's own op count for n <= 0: quick or full.
func defaultOps(n int64, o Options, quick, full int64) int64 {
	switch {
	case n > 0:
		return n
	case o.Full:
		return full
	}
	return quick
}

// liveBudget bounds a live-tasks case's measured loop when the case picks
// its own op count, so legacy's O(n) reservations at 65536 tasks stay
// affordable. The full form's 500 ms (1 s before the Tasks cases ran at
// two machine sizes) keeps the full suite near its budget.
func liveBudget(o Options) time.Duration {
	if o.Full {
		return 500 * time.Millisecond
	}
	return 150 * time.Millisecond
}

// pinnedAllocator pins the measuring thread and builds strategy s over
// cpus x86 CPUs; the returned function unpins.
func pinnedAllocator(o Options, s string, cpus int) (alloc.Allocator, func(), error) {
	unpin, err := cpupin.Pin(o.PinCPU)
	if err != nil {
		return nil, nil, err
	}
	a, err := alloc.New(s, alloc.X86(cpus))
	if err != nil {
		unpin()
		return nil, nil, err
	}
	return a, unpin, nil
}

// underKernlock runs f holding the machine-wide debug-register lock, so
// that other bpbench processes neither steal nor lend slots meanwhile.
// Tests take the lock themselves (testenv.LockDebugRegs) and call the unlocked
// function: flock does not nest within a process.
func underKernlock(f func() (Result, error)) (Result, error) {
	lock, err := kernlock.Acquire()
	if err != nil {
		return Result{}, err
	}
	defer lock.Unlock()
	return f()
}

// skipIfUnsupported turns an error that says this machine lacks a
// permission or support (support.Missing, the classification the tests
// skip by too) into a skip with the error as its reason; other errors,
// and skips already, pass through.
func skipIfUnsupported(err error) error {
	if support.Missing(err) && !errors.Is(err, ErrSkip) {
		return Skipf("%v", err)
	}
	return err
}

// startPtrace is hwregs.StartPtrace for a case: where this process may
// not trace a child, or ptrace has no debug registers, the case is skipped
// and says so.
func startPtrace(opts hwregs.PtraceOptions) (*hwregs.Ptrace, error) {
	p, err := hwregs.StartPtrace(opts)
	if support.Missing(err) {
		return nil, Skipf("cannot trace a child process: %v", err)
	}
	return p, err
}

// perfSupported is hwregs.PerfSupported for a case: where this process
// cannot open perf breakpoints, the case is skipped and says why.
func perfSupported() error {
	err := hwregs.PerfSupported()
	if support.Missing(err) {
		return Skipf("perf breakpoints: %v", err)
	}
	return err
}

// commonParams renders s as Result.Params with what every result records
// beyond the scenario: kernel release, GOMAXPROCS, and kv pairs.
func commonParams(s harness.Scenario, kv ...string) map[string]string {
	extra := map[string]string{
		"kernel":     harness.KernelRelease(),
		"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
	}
	for i := 0; i+1 < len(kv); i += 2 {
		extra[kv[i]] = kv[i+1]
	}
	return s.Params(extra)
}

// modelResult starts the Result of a model-backend case: sc's experiment,
// name, commonParams(sc, kv...), and the live budget as "duration" when
// the case runs by time (sc.Ops <= 0).
func modelResult(sc harness.Scenario, name string, o Options, kv ...string) Result {
	res := Result{Experiment: sc.Experiment, Name: name, Params: commonParams(sc, kv...)}
	if sc.Ops <= 0 {
		res.Params["duration"] = liveBudget(o).String()
	}
	return res
}

// setLatency fills res's latency fields from rec: the histogram and the
// "p50-ns" and "p99-ns" metrics that benchstat compares.
func setLatency(res *Result, rec *harness.Recorder) {
	if res.Metrics == nil {
		res.Metrics = map[string]float64{}
	}
	res.Latency = rec.Summary()
	if res.Latency != nil {
		res.Metrics[MetricP50] = res.Latency.P50
		res.Metrics[MetricP99] = res.Latency.P99
	}
}

// setLoop fills res from a TimeLoop: iterations, ns/op over the unsampled
// operations (no sampler cost in it), its per-batch values under "ns/op"
// in Batches, the latency histogram of the sampled ones (net of the
// sampler's tare), and the tare itself as "sampler-ns".
func setLoop(res *Result, s harness.LoopStats, rec *harness.Recorder) {
	res.Iterations = s.Done
	res.NsPerOp = s.NsPerOp()
	setLatency(res, rec)
	res.Metrics[MetricSamplerNs] = s.TareNs
	setFigures(res, harness.LoopNsFigure)
	addBatches(res, UnitNsPerOp, s.Batches)
}

// setFigures says in res's params what a timed loop's figures measure:
// ns/op as nsFigure says, and the sampled percentiles.
func setFigures(res *Result, nsFigure string) {
	if res.Params == nil {
		res.Params = map[string]string{}
	}
	res.Params[ParamFigures] = nsFigure + "; " + harness.SampledFigures
}

// addBatches records per-batch values of a unit in res.Batches.
func addBatches(res *Result, unit string, vs []float64) {
	if len(vs) < 2 {
		return
	}
	if res.Batches == nil {
		res.Batches = map[string][]float64{}
	}
	res.Batches[unit] = vs
}

// pinCheck records, after a measured loop on a thread pinned to cpu,
// whether the pin held (cpupin.Held: affinity still {cpu} and running
// there): a lost pin counts in res.Noise.PinLost, which the CLI merges
// with what it measures around the case.
func pinCheck(res *Result, cpu int) {
	if cpupin.Held(cpu) {
		return
	}
	if res.Noise == nil {
		res.Noise = &harness.Noise{}
	}
	res.Noise.PinLost++
}

// ctxCheckEvery is how many operations a single-threaded loop runs between
// checks of its context; a check per op would cost more than a model op.
const ctxCheckEvery = 1024

// ErrInvalidParam is wrapped by errors about bad experiment parameters.
var ErrInvalidParam = errors.New("invalid experiment parameter")
