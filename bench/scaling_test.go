package bench

import (
	"bpbench/bench/harness"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"bpbench/alloc"
	"bpbench/internal/cpupin"
)

func BenchmarkScaling(b *testing.B) { runCases(b, "Scaling", scalingOnly(b, "Scaling/")) }

func BenchmarkTasks(b *testing.B) { runCases(b, "Tasks", scalingOnly(b, "Tasks/")) }

// scalingOnly returns the scaling experiment's cases under one prefix.
func scalingOnly(b *testing.B, prefix string) []Case {
	var cs []Case
	for _, c := range casesOf(b, "scaling", Options{}) {
		if strings.HasPrefix(c.Name, prefix) {
			cs = append(cs, c)
		}
	}
	return cs
}

// TestScalingCases runs every quick Scaling and Tasks case with a small op
// count: every op of every worker succeeds (a worker on its own task and
// CPU can never be refused), the allocator is empty afterwards (the case
// checks), and the results are named and described completely.
func TestScalingCases(t *testing.T) {
	ss := alloc.Strategies()
	if len(ss) == 0 {
		t.Fatal("no alloc strategies registered")
	}
	cs := experimentCases(t, "scaling", Options{})
	gs := scalingGoroutines()
	nTasks := 0
	for _, c := range tasksCPUs() {
		nTasks += len(tasksAt(Options{}, c))
	}
	if want := len(ss) * (len(gs)*len(scalingMixesOf(Options{})) + nTasks); len(cs) != want {
		t.Fatalf("%d scaling cases, want %d", len(cs), want)
	}
	if gs[0] != 1 || gs[len(gs)-1] != 4*runtime.GOMAXPROCS(0) {
		t.Errorf("goroutine counts %v, want 1 .. 4x GOMAXPROCS", gs)
	}
	const n = 999 // not a multiple of every worker count: the split must still add up
	for _, c := range cs {
		t.Run(c.Name, func(t *testing.T) {
			res := runCaseOrSkip(t, c, n)
			if strings.HasPrefix(c.Name, "Scaling/") {
				g, _ := strconv.Atoi(res.Params[ParamGoroutines])
				var samples int64
				for w := 0; w < g; w++ {
					samples += harness.Sampled(n/int64(g)+b2i(int64(w) < n%int64(g)), 1)
				}
				checkResult(t, c, res, n, samples, "scaling", "strategy", "workers", "cpus", "mix", "sched")
				if res.Metrics[MetricOpsPerSec] <= 0 || len(res.Batches[MetricOpsPerSec]) < 2 {
					t.Errorf("ops/s = %v, batches %v", res.Metrics[MetricOpsPerSec], res.Batches[MetricOpsPerSec])
				}
				if want := schedOf(g); res.Params[ParamSched] != want {
					t.Errorf("sched = %q, want %q", res.Params[ParamSched], want)
				}
				return
			}
			checkResult(t, c, res, n, harness.Sampled(n, 2), "scaling", "strategy", "tasks", "cpus", "mix")
			for _, m := range []string{"cpu-ns/op", "task-ns/op"} {
				if res.Metrics[m] <= 0 {
					t.Errorf("metric %s = %v (have %v)", m, res.Metrics[m], res.Metrics)
				}
			}
		})
	}
}

// TestTasksAt checks the full form's thinned sweep on 256 CPUs keeps the
// smallest and largest sizes and the host's sweep whole.
func TestTasksAt(t *testing.T) {
	full := Options{Full: true}
	big := tasksAt(full, tasksBigCPUs)
	all := scalingTasks(full)
	if big[0] != all[0] || big[len(big)-1] != all[len(all)-1] || len(big) >= len(all) {
		t.Errorf("full sweep on %d CPUs %v from %v", tasksBigCPUs, big, all)
	}
	if got := tasksAt(Options{}, tasksBigCPUs); len(got) != len(scalingTasks(Options{})) {
		t.Errorf("quick sweep on %d CPUs %v, want all of %v", tasksBigCPUs, got, scalingTasks(Options{}))
	}
}

// TestLiveLoopBudget checks that a live-tasks loop left to pick its own
// op count stops at its time budget: with ops that each take at least a
// millisecond (a sleep never returns early), the budget allows at most
// budget/1ms ops plus one check interval and one chunk, far below
// liveMaxOps, however slow the machine is.
func TestLiveLoopBudget(t *testing.T) {
	o := Options{}
	slow := false
	op := func() error {
		if slow {
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	warm := 0
	ops := [2]func() error{func() error { warm++; slow = warm >= liveWarmup/2; return op() }, op}
	st, _, err := liveLoop(context.Background(), o, NopTimer, 0, ops)
	if err != nil {
		t.Fatal(err)
	}
	if limit := int64(liveBudget(o)/time.Millisecond) + 64 + 128; st.Done > limit {
		t.Fatalf("%d ops of >= 1 ms in a %v budget, want <= %d", st.Done, liveBudget(o), limit)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// TestRunWorkers checks the runner's bookkeeping: ops split over the
// workers add up, workers are pinned when asked, recorders are merged,
// Setup runs before Body, and one worker's error stops the rest and is
// returned.
func TestRunWorkers(t *testing.T) {
	ncpu := runtime.NumCPU()
	pin := true
	spec := harness.WorkerSpec{Workers: 3, Pin: pin, Ops: 100,
		Setup: func(w *harness.Worker) error { w.State = w.ID * 10; return nil },
		Body: func(w *harness.Worker) error {
			if w.State != w.ID*10 {
				return fmt.Errorf("worker %d: Setup did not run first", w.ID)
			}
			if got := cpupin.Current(); pin && (got != w.CPU || w.CPU != w.ID%ncpu) {
				return fmt.Errorf("worker %d: on CPU %d, pinned to %d", w.ID, got, w.CPU)
			}
			w.Lap.Start()
			for ; w.Done < w.N; w.Done++ {
				w.Lap.Lap()
			}
			return nil
		}}
	r, err := harness.RunWorkers(context.Background(), nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 100 || r.Latency.Count() != 100 || r.PerWorker[0] != 34 || r.PerWorker[2] != 33 {
		t.Fatalf("ops %d, samples %d, per worker %v; want 100, 100, [34 33 33]", r.Ops, r.Latency.Count(), r.PerWorker)
	}

	// More workers than ops: the idle workers get N = 0 and return.
	spec.Ops, spec.Pin, pin = 1, false, false
	if r, err := harness.RunWorkers(context.Background(), nil, spec); err != nil || r.Ops != 1 {
		t.Fatalf("1 op over 3 workers: %d ops, %v", r.Ops, err)
	}

	// Duration mode: a failing worker stops the others early (if it did
	// not, the test would hang for an hour: no clock is the verdict).
	spec = harness.WorkerSpec{Workers: 4, Duration: time.Hour, Body: func(w *harness.Worker) error {
		if w.ID == 2 {
			return fmt.Errorf("boom")
		}
		for !w.Stopped() {
			w.Done++
		}
		return nil
	}}
	if _, err := harness.RunWorkers(context.Background(), nil, spec); err == nil || !strings.Contains(err.Error(), "worker 2: boom") {
		t.Fatalf("err = %v, want worker 2's", err)
	}

	// A cancelled context stops a duration run too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	spec.Body = func(w *harness.Worker) error {
		for !w.Stopped() {
		}
		return nil
	}
	if _, err := harness.RunWorkers(ctx, nil, spec); err != nil {
		t.Fatalf("cancelled duration run: %v", err)
	}

	for _, bad := range []harness.WorkerSpec{{Workers: 0, Ops: 1, Body: spec.Body}, {Workers: 1, Body: spec.Body}, {Workers: 1, Ops: -1, Body: spec.Body}, {Workers: 1, Ops: 1}} {
		if _, err := harness.RunWorkers(context.Background(), nil, bad); err == nil {
			t.Errorf("RunWorkers(%+v) accepted", bad)
		}
	}
}
