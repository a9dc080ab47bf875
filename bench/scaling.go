package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"sync/atomic"
	"time"

	"bpbench/bench/harness"

	"bpbench/alloc"
	"bpbench/internal/cpupin"
)

// scalingGoroutines returns the worker counts of the Scaling cases: powers
// of two from 1 up to 4x GOMAXPROCS, and 4x GOMAXPROCS itself.
func scalingGoroutines() []int {
	max := 4 * runtime.GOMAXPROCS(0)
	var gs []int
	for g := 1; g < max; g *= 2 {
		gs = append(gs, g)
	}
	return append(gs, max)
}

// scalingTasks returns the live-task counts of the Tasks cases.
func scalingTasks(o Options) []int {
	if o.Full {
		return []int{16, 64, 256, 1024, 4096, 16384, 65536}
	}
	return []int{16, 256, 4096}
}

// tasksAt returns the live-task counts of the Tasks cases on a model of
// cpus CPUs: scalingTasks, thinned to every other size from 16 (plus the
// largest) on tasksBigCPUs in the full form, to keep the full suite in
// its budget.
func tasksAt(o Options, cpus int) []int {
	ts := scalingTasks(o)
	if !o.Full || cpus != tasksBigCPUs {
		return ts
	}
	var out []int
	for i, n := range ts {
		if i%2 == 0 || i == len(ts)-1 {
			out = append(out, n)
		}
	}
	return out
}

// tasksBigCPUs is the simulated machine size the Tasks cases are run at
// besides the host's own: Elver's 2022 series was measured on 256 CPUs,
// and designs must be judged there too (shared/anchors.md).
const tasksBigCPUs = 256

// tasksCPUs returns the simulated CPU counts of the Tasks cases: the
// host's and tasksBigCPUs.
func tasksCPUs() []int {
	if n := runtime.NumCPU(); n != tasksBigCPUs {
		return []int{n, tasksBigCPUs}
	}
	return []int{tasksBigCPUs}
}

// A scaling mix is what each Scaling worker reserves and releases, one
// pair per op, on its own model CPU and its own tasks.
type scalingMix struct {
	name string
	// live is how many long-lived task breakpoints (every CPU) each
	// worker's population holds before the clock starts; 0: none.
	live int
	// doc is the declared distribution of the op kinds, for Params.
	doc string
	// draw returns the kinds of a worker's ops in a cycle.
	draw func(rng *rand.Rand) []mixKind
}

// mixKind is one kind of request of a mix.
type mixKind uint8

const (
	kindTask    mixKind = iota // a task breakpoint on every CPU
	kindTaskCPU                // a task breakpoint on the worker's CPU
	kindCPU                    // a CPU-bound breakpoint on the worker's CPU
)

// scalingSeqLen is the length of a worker's pre-drawn cycle of requests,
// so the measured loop only indexes an array.
const scalingSeqLen = 4096

// scalingLive is the long-lived population of the debugger mix: tasks per
// worker, each holding one task breakpoint on every CPU.
const scalingLive = 16

// scalingMixes are the mixes, default first.
//
//   - debugger: each worker (a CPU) runs a population of scalingLive
//     long-lived tasks, each holding a watchpoint on every CPU, as the
//     threads of debugged processes do; each op is one reserve+release
//     for one of them or for the CPU, drawn per op from the seed: 80% a
//     task breakpoint on every CPU (a debugger setting a watchpoint on a
//     thread, perf_event_open(pid, -1)), 10% a task breakpoint on the
//     worker's CPU, 10% a CPU-bound one on the worker's CPU (perf -a).
//   - toggle: the earlier mix, kept for comparison: no population, and
//     every op cycles one task of the worker through a breakpoint on
//     every CPU, one on its CPU, and a CPU-bound one, every three ops,
//     which no debugger does and which penalises the strategies that
//     keep per-CPU state (percpu, linux).
//
// Neither can be refused: a task holds at most 2 slots, a CPU at most
// one CPU-bound one, and each worker has its own CPU.
var scalingMixes = []scalingMix{
	{name: "debugger", live: scalingLive, doc: "task=80/taskcpu=10/cpu=10", draw: func(rng *rand.Rand) []mixKind {
		seq := make([]mixKind, scalingSeqLen)
		for i := range seq {
			switch r := rng.Intn(100); {
			case r < 80:
				seq[i] = kindTask
			case r < 90:
				seq[i] = kindTaskCPU
			default:
				seq[i] = kindCPU
			}
		}
		return seq
	}},
	{name: "toggle", doc: "task,taskcpu,cpu in turn", draw: func(*rand.Rand) []mixKind {
		seq := make([]mixKind, scalingSeqLen-scalingSeqLen%3)
		for i := range seq {
			seq[i] = mixKind(i % 3)
		}
		return seq
	}},
}

// scalingMixesOf returns the mixes a run measures: the default one in the
// quick form, every one in the full form.
func scalingMixesOf(o Options) []scalingMix {
	if o.Full {
		return scalingMixes
	}
	return scalingMixes[:1]
}

// scalingDuration is how long a Scaling case runs when it picks its own
// op count.
func scalingDuration(o Options) time.Duration {
	if o.Full {
		return 600 * time.Millisecond
	}
	return 200 * time.Millisecond
}

// schedOf says whether g goroutines run in parallel on this machine or
// are time-sliced on fewer CPUs (Params "sched").
func schedOf(g int) string {
	if g > runtime.NumCPU() {
		return "time-sliced"
	}
	return "parallel"
}

func scalingCases(o Options) ([]Case, error) {
	if err := checkOptions("scaling", o); err != nil {
		return nil, err
	}
	var cs []Case
	gs := scalingGoroutines()
	for _, s := range strategiesOf(o) {
		for _, mx := range scalingMixesOf(o) {
			for _, g := range gs {
				cs = append(cs, Case{
					Name:     fmt.Sprintf("Scaling/strategy=%s/mix=%s/goroutines=%d", s, mx.name, g),
					Estimate: scalingDuration(o) + 50*time.Millisecond,
					Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
						return scalingRun(ctx, o, s, mx, g, gs[len(gs)-1], n, t)
					},
				})
			}
		}
	}
	for _, s := range strategiesOf(o) {
		for _, cpus := range tasksCPUs() {
			for _, nt := range tasksAt(o, cpus) {
				cs = append(cs, Case{
					Name:     fmt.Sprintf("Tasks/strategy=%s/cpus=%d/tasks=%d", s, cpus, nt),
					Estimate: liveBudget(o)/2 + time.Duration(nt*cpus/64)*time.Microsecond,
					Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
						return tasksRun(ctx, o, s, cpus, nt, n, t)
					},
				})
			}
		}
	}
	return cs, nil
}

var scalingExperiment = Experiment{Name: "scaling", Cases: scalingCases, Check: scalingCheck,
	Question: "How does each allocation strategy's throughput scale with concurrent goroutines, and its per-reservation cost with the number of live task breakpoints?"}

// scalingRequests turns a worker's drawn kinds into its requests: task
// requests go round its population (or to its one task without one), CPU
// requests to its own model CPU.
func scalingRequests(mx scalingMix, worker int, kinds []mixKind) []alloc.Request {
	reqs := make([]alloc.Request, len(kinds))
	pop := max(1, mx.live)
	for i, k := range kinds {
		task := worker*pop + i%pop
		switch k {
		case kindTask:
			reqs[i] = alloc.Request{Task: task, CPU: alloc.AnyCPU}
		case kindTaskCPU:
			reqs[i] = alloc.Request{Task: task, CPU: worker}
		default:
			reqs[i] = alloc.Request{Task: alloc.NoTask, CPU: worker}
		}
	}
	return reqs
}

// scalingRun measures g workers, each pinned and reserving and releasing
// mx's requests on its own tasks and CPU of a model with cpus CPUs (the
// same for every g, so only the contention changes). Each worker's
// population is reserved in Setup, before the clock, and released after.
func scalingRun(ctx context.Context, o Options, s string, mx scalingMix, g, cpus int, n int64, t Timer) (Result, error) {
	t.StopTimer()
	name := fmt.Sprintf("Scaling/strategy=%s/mix=%s/goroutines=%d", s, mx.name, g)
	spec := harness.WorkerSpec{Workers: g, Pin: true}
	if n > 0 {
		spec.Ops = n
	} else {
		spec.Duration = scalingDuration(o)
	}
	sc := harness.Scenario{Experiment: "scaling", Strategy: s, Backend: "model", CPUs: cpus, Slots: 4, Workers: g,
		Tasks: g * mx.live, Mix: mx.name, Ops: spec.Ops, Duration: spec.Duration, Seed: o.Seed, PinCPU: -1}
	res := Result{Experiment: "scaling", Name: name, Params: commonParams(sc, "goroutines", fmt.Sprint(g),
		"mix_kinds", mx.doc, "live_per_worker", fmt.Sprint(mx.live), "sched", schedOf(g),
		"pinning", "worker i on CPU i mod NumCPU")}
	a, err := alloc.New(s, alloc.X86(cpus))
	if err != nil {
		return res, err
	}
	var pinLost atomic.Int32
	held := make([][]alloc.Slot, g) // each worker's population, by ID
	spec.Setup = func(w *harness.Worker) error {
		w.State = scalingRequests(mx, w.ID, mx.draw(rand.New(rand.NewSource(o.Seed+int64(w.ID)))))
		var err error
		held[w.ID], err = holdTasks(mx.live, func(j int) (alloc.Slot, error) {
			return a.Reserve(alloc.Request{Task: w.ID*mx.live + j, CPU: alloc.AnyCPU})
		})
		return err
	}
	spec.Body = func(w *harness.Worker) error {
		reqs := w.State.([]alloc.Request)
		m := int64(len(reqs))
		err := w.Loop(func(i int64) error {
			req := reqs[i%m]
			sl, err := a.Reserve(req)
			if err != nil {
				return fmt.Errorf("reserve %v: %w", req, err)
			}
			if err := a.Release(sl); err != nil {
				return fmt.Errorf("release %v: %w", req, err)
			}
			return nil
		})
		if !cpupin.Held(w.CPU) {
			pinLost.Add(1)
		}
		return err
	}
	wr, err := harness.RunWorkers(ctx, t, spec)
	for _, h := range held { // no worker runs any more
		if rerr := releaseAll(a.Release, h); rerr != nil && err == nil {
			err = fmt.Errorf("releasing the live tasks: %w", rerr)
		}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	if a.InUse() {
		return res, fmt.Errorf("%s: slots still held after every worker released its own", name)
	}
	res.Iterations = wr.Ops
	res.NsPerOp = wr.LoopNsPerOp()
	setLatency(&res, wr.Latency)
	// Throughput is what the machine delivered: operations completed over
	// the shared wall-clock interval, not a sum of each worker's rate over
	// its own timed chunks (which counts a preempted worker's absence as
	// nobody's time and once claimed 5.47x at 8 goroutines on 2 vCPUs).
	// ns/op stays the per-op latency of one worker's unsampled chunks.
	res.Metrics[MetricOpsPerSec] = wr.WallOpsPerSec
	res.Metrics[MetricSamplerShare] = wr.SamplerShare
	res.Metrics[MetricSamplerNs] = wr.TareNs
	setFigures(&res, harness.WorkersNsFigure)
	addBatches(&res, UnitNsPerOp, wr.BatchNsPerOp())
	addBatches(&res, MetricOpsPerSec, wr.WallBatches)
	if sr, ok := a.(alloc.SpuriousRefusals); ok {
		res.Metrics[MetricSpurious] = float64(sr.SpuriousRefusals())
	}
	if k := pinLost.Load(); k > 0 {
		res.Noise = &harness.Noise{PinLost: int(k)}
	}
	return res, nil
}

// tasksSetupBudget bounds the untimed setup of a Tasks case (holding its
// population), so that the full suite stays near its budget.
func tasksSetupBudget(o Options) time.Duration {
	if o.Full {
		return 10 * time.Second
	}
	return 5 * time.Second
}

// liveMaxOps is the op count of a live-tasks case left to its own devices;
// liveBudget usually ends it earlier for the slow strategies.
func liveMaxOps(o Options) int64 {
	if o.Full {
		return 1_000_000
	}
	return 100_000
}

// liveWarmup is how many operations run before the clock starts.
const liveWarmup = 256

// liveLoop runs ops[0] and ops[1] alternately on the calling (pinned)
// thread in a harness.TimeLoop, n in all, or, when n <= 0, until
// liveMaxOps or liveBudget, after liveWarmup untimed ones, sampling each
// kind into its own Recorder.
func liveLoop(ctx context.Context, o Options, t Timer, n int64, ops [2]func() error) (st harness.LoopStats, recs [2]*harness.Recorder, err error) {
	for i := 0; i < liveWarmup; i++ {
		if err := ops[i&1](); err != nil {
			return st, recs, fmt.Errorf("warm-up: %w", err)
		}
	}
	budget := time.Duration(0)
	if n <= 0 {
		n, budget = liveMaxOps(o), liveBudget(o)
	}
	recs = [2]*harness.Recorder{harness.NewRecorder(), harness.NewRecorder()}
	st, err = harness.TimeLoop(ctx, t, n, 64, budget, func(i int64) error { return ops[i&1]() }, recs[0], recs[1])
	if err != nil && ctx.Err() == nil {
		err = fmt.Errorf("op %d: %w", st.Done, err)
	}
	return st, recs, err
}

// holdTasks reserves one task breakpoint (every CPU) for each of tasks
// 0..n-1 with reserve and returns the slots.
func holdTasks(n int, reserve func(task int) (alloc.Slot, error)) ([]alloc.Slot, error) {
	held := make([]alloc.Slot, 0, n)
	for i := 0; i < n; i++ {
		s, err := reserve(i)
		if err != nil {
			return held, fmt.Errorf("holding task %d's breakpoint: %w", i, err)
		}
		held = append(held, s)
	}
	return held, nil
}

// releaseAll releases every slot, returning the first error.
func releaseAll(release func(alloc.Slot) error, held []alloc.Slot) error {
	var first error
	for _, s := range held {
		if err := release(s); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// liveResult fills res from a liveLoop run: ns/op over both kinds (timed
// in bulk), the sampled latency of both together and each kind's sampled
// mean and p99 under its own metric.
func liveResult(res *Result, st harness.LoopStats, recs [2]*harness.Recorder, units [2]string) {
	all := harness.NewRecorder()
	all.Merge(recs[0])
	all.Merge(recs[1])
	setLoop(res, st, all)
	for k, u := range units {
		if h := recs[k].Summary(); h != nil {
			res.Metrics[u+"-ns/op"] = h.Mean
			res.Metrics[u+"-ns/p99"] = h.P99
		}
	}
}

// tasksRun measures, on a model of cpus CPUs with nt tasks each holding a
// task breakpoint, the Reserve+Release of a CPU-bound breakpoint (where
// legacy walks every task breakpoint) alternating with that of a task
// breakpoint for a task that holds none, on one pinned thread.
func tasksRun(ctx context.Context, o Options, s string, cpus, nt int, n int64, t Timer) (Result, error) {
	t.StopTimer()
	name := fmt.Sprintf("Tasks/strategy=%s/cpus=%d/tasks=%d", s, cpus, nt)
	sc := harness.Scenario{Experiment: "scaling", Strategy: s, Backend: "model", CPUs: cpus, Slots: 4, Tasks: nt, Mix: "cpu,task", Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	res := modelResult(sc, name, o)
	a, unpin, err := pinnedAllocator(o, s, cpus)
	if err != nil {
		return res, err
	}
	defer unpin()
	// A strategy whose task reservations are O(tasks x CPUs) (legacy)
	// would need minutes to build the largest populations on 256 CPUs:
	// past tasksSetupBudget the case is skipped and says so.
	deadline := time.Now().Add(tasksSetupBudget(o))
	held, err := holdTasks(nt, func(task int) (alloc.Slot, error) {
		if task%256 == 255 && time.Now().After(deadline) {
			return alloc.Slot{}, Skipf("strategy %s: holding %d task breakpoints on %d CPUs takes over %v (%d held)", s, nt, cpus, tasksSetupBudget(o), task)
		}
		return a.Reserve(alloc.Request{Task: task, CPU: alloc.AnyCPU})
	})
	defer func() { releaseAll(a.Release, held) }()
	if errors.Is(err, ErrSkip) {
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	cpuReq := alloc.Request{Task: alloc.NoTask, CPU: 0}
	taskReq := alloc.Request{Task: nt, CPU: alloc.AnyCPU}
	pair := func(req alloc.Request) func() error {
		return func() error {
			sl, err := a.Reserve(req)
			if err != nil {
				return fmt.Errorf("reserve %v: %w", req, err)
			}
			return a.Release(sl)
		}
	}
	st, recs, err := liveLoop(ctx, o, t, n, [2]func() error{pair(cpuReq), pair(taskReq)})
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	pinCheck(&res, o.PinCPU)
	if err := releaseAll(a.Release, held); err != nil {
		return res, fmt.Errorf("%s: releasing the live tasks: %w", name, err)
	}
	held = nil
	if a.InUse() {
		return res, fmt.Errorf("%s: slots still held after releasing every task", name)
	}
	liveResult(&res, st, recs, [2]string{"cpu", "task"})
	return res, nil
}
