package bench

import (
	"bpbench/bench/harness"
	"context"
	"fmt"
	"runtime"
	"time"

	"bpbench/alloc"
	"bpbench/internal/cpupin"
)

func init() {
	register(Experiment{
		Name:     "scaling",
		Question: "How does each allocation strategy's throughput scale with concurrent goroutines, and its per-reservation cost with the number of live task breakpoints?",
		Cases:    scalingCases,
	})
}

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

func scalingCases(o Options) ([]Case, error) {
	if err := checkOptions("scaling", o); err != nil {
		return nil, err
	}
	var cs []Case
	gs := scalingGoroutines()
	for _, s := range strategiesOf(o) {
		for _, g := range gs {
			cs = append(cs, Case{
				Name:     fmt.Sprintf("Scaling/strategy=%s/goroutines=%d", s, g),
				Estimate: 300 * time.Millisecond,
				Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
					return scalingRun(ctx, o, s, g, gs[len(gs)-1], n, t)
				},
			})
		}
	}
	for _, s := range strategiesOf(o) {
		for _, nt := range scalingTasks(o) {
			cs = append(cs, Case{
				Name:     fmt.Sprintf("Tasks/strategy=%s/tasks=%d", s, nt),
				Estimate: liveBudget(o) + 100*time.Millisecond,
				Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
					return tasksRun(ctx, o, s, nt, n, t)
				},
			})
		}
	}
	return cs, nil
}

// scalingMix is the request each Scaling worker makes on its i-th
// operation, on its own task id and its own model CPU: a task breakpoint
// on every CPU, a task breakpoint on one CPU, and a CPU-bound one. None of
// them can be refused: a worker holds at most one slot at a time.
func scalingMix(worker int, i int64) alloc.Request {
	switch i % 3 {
	case 0:
		return alloc.Request{Task: worker, CPU: alloc.AnyCPU}
	case 1:
		return alloc.Request{Task: worker, CPU: worker}
	}
	return alloc.Request{Task: alloc.NoTask, CPU: worker}
}

// scalingRun measures g workers, each pinned and reserving and releasing
// scalingMix on its own task and CPU of a model with cpus CPUs (the same
// for every g, so only the contention changes).
func scalingRun(ctx context.Context, o Options, s string, g, cpus int, n int64, t Timer) (Result, error) {
	t.StopTimer()
	name := fmt.Sprintf("Scaling/strategy=%s/goroutines=%d", s, g)
	spec := harness.WorkerSpec{Workers: g, Pin: true}
	if n > 0 {
		spec.Ops = n
	} else if o.Full {
		spec.Duration = 600 * time.Millisecond
	} else {
		spec.Duration = 200 * time.Millisecond
	}
	sc := harness.Scenario{Experiment: "scaling", Strategy: s, Backend: "model", CPUs: cpus, Slots: 4, Workers: g,
		Mix: "task,taskcpu,cpu", Ops: spec.Ops, Duration: spec.Duration, Seed: o.Seed, PinCPU: -1}
	res := Result{Experiment: "scaling", Name: name, Params: commonParams(sc, "goroutines", fmt.Sprint(g), "pinning", "worker i on CPU i mod NumCPU")}
	a, err := alloc.New(s, alloc.X86(cpus))
	if err != nil {
		return res, err
	}
	spec.Body = func(w *harness.Worker) error {
		w.Lap.Start()
		var i int64
		for ; i < w.N; i++ {
			if w.Stopped() {
				break
			}
			req := scalingMix(w.ID, i)
			sl, err := a.Reserve(req)
			if err != nil {
				w.Done = i
				return fmt.Errorf("reserve %v: %w", req, err)
			}
			if err := a.Release(sl); err != nil {
				w.Done = i
				return fmt.Errorf("release %v: %w", req, err)
			}
			w.Lap.Lap()
		}
		w.Done = i
		return nil
	}
	wr, err := harness.RunWorkers(ctx, t, spec)
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	if a.InUse() {
		return res, fmt.Errorf("%s: slots still held after every worker released its own", name)
	}
	res.Iterations = wr.Ops
	res.NsPerOp = wr.NsPerOp()
	setLatency(&res, wr.Latency)
	res.Metrics["ops/s"] = wr.OpsPerSec()
	if sr, ok := a.(alloc.SpuriousRefusals); ok {
		res.Metrics["spurious-refusals"] = float64(sr.SpuriousRefusals())
	}
	return res, nil
}

// liveBudget bounds a live-tasks case's measured loop when the case picks
// its own op count, so legacy's O(n) reservations at 65536 tasks stay
// affordable.
func liveBudget(o Options) time.Duration {
	if o.Full {
		return time.Second
	}
	return 150 * time.Millisecond
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
// thread, n in all, or, when n <= 0, until liveMaxOps or liveBudget,
// after liveWarmup untimed ones, recording each kind into its own
// harness.Recorder. It returns the elapsed time over all of them.
func liveLoop(ctx context.Context, o Options, t Timer, n int64, ops [2]func() error) (elapsed time.Duration, recs [2]*harness.Recorder, done int64, err error) {
	for i := 0; i < liveWarmup; i++ {
		if err := ops[i&1](); err != nil {
			return 0, recs, 0, fmt.Errorf("warm-up: %w", err)
		}
	}
	budget := time.Duration(0)
	if n <= 0 {
		n, budget = liveMaxOps(o), liveBudget(o)
	}
	recs = [2]*harness.Recorder{harness.NewRecorder(), harness.NewRecorder()}
	t.ResetTimer()
	t.StartTimer()
	begin := time.Now()
	prev := harness.Now()
	for ; done < n; done++ {
		if done%64 == 0 {
			if ctx.Err() != nil || (budget > 0 && time.Since(begin) > budget) {
				break
			}
			prev = harness.Now() // leave the checks out of the recorded latency
		}
		k := done & 1
		if err := ops[k](); err != nil {
			t.StopTimer()
			return 0, recs, done, fmt.Errorf("op %d: %w", done, err)
		}
		now := harness.Now()
		recs[k].Record(now - prev)
		prev = now
	}
	elapsed = time.Since(begin)
	t.StopTimer()
	return elapsed, recs, done, ctx.Err()
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

// liveResult fills res from a liveLoop run: ns/op over both kinds, the
// latency of both together and each kind's mean under its own metric.
func liveResult(res *Result, elapsed time.Duration, recs [2]*harness.Recorder, done int64, units [2]string) {
	res.Iterations = done
	res.NsPerOp = float64(elapsed.Nanoseconds()) / float64(done)
	all := harness.NewRecorder()
	all.Merge(recs[0])
	all.Merge(recs[1])
	setLatency(res, all)
	for k, u := range units {
		if h := recs[k].Summary(); h != nil {
			res.Metrics[u+"-ns/op"] = h.Mean
			res.Metrics[u+"-ns/p99"] = h.P99
		}
	}
}

// tasksRun measures, with nt tasks each holding a task breakpoint, the
// Reserve+Release of a CPU-bound breakpoint (where legacy walks every task
// breakpoint) alternating with that of a task breakpoint for a task that
// holds none, on one pinned thread.
func tasksRun(ctx context.Context, o Options, s string, nt int, n int64, t Timer) (Result, error) {
	t.StopTimer()
	name := fmt.Sprintf("Tasks/strategy=%s/tasks=%d", s, nt)
	cpus := runtime.NumCPU()
	sc := harness.Scenario{Experiment: "scaling", Strategy: s, Backend: "model", CPUs: cpus, Slots: 4, Tasks: nt, Mix: "cpu,task", Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	res := Result{Experiment: "scaling", Name: name, Params: commonParams(sc)}
	if n <= 0 {
		res.Params["duration"] = liveBudget(o).String()
	}
	unpin, err := cpupin.Pin(o.PinCPU)
	if err != nil {
		return res, err
	}
	defer unpin()
	a, err := alloc.New(s, alloc.X86(cpus))
	if err != nil {
		return res, err
	}
	held, err := holdTasks(nt, func(task int) (alloc.Slot, error) {
		return a.Reserve(alloc.Request{Task: task, CPU: alloc.AnyCPU})
	})
	defer func() { releaseAll(a.Release, held) }()
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
	elapsed, recs, done, err := liveLoop(ctx, o, t, n, [2]func() error{pair(cpuReq), pair(taskReq)})
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	if err := releaseAll(a.Release, held); err != nil {
		return res, fmt.Errorf("%s: releasing the live tasks: %w", name, err)
	}
	held = nil
	if a.InUse() {
		return res, fmt.Errorf("%s: slots still held after releasing every task", name)
	}
	liveResult(&res, elapsed, recs, done, [2]string{"cpu", "task"})
	return res, nil
}
