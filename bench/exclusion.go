package bench

import (
	"bpbench/bench/harness"
	"context"
	"fmt"
	"runtime"

	"bpbench/alloc"
)

// exclusionStrategy is the allocator under the Exclusion decorator, and the
// plain allocator of mode=off: the same strategy both ways, so the
// difference is the exclusion alone.
const exclusionStrategy = "linux"

// Addresses of the exclusion workload. Live tasks' breakpoints sit on
// distinct doublewords from exclusionBase on; the measured ones sit below,
// so nothing is ever refused and every check walks the whole list.
const (
	exclusionBase    = 0x100000
	exclusionCPUAddr = 0x1000
	exclusionPtAddr  = 0x2000
)

func exclusionCases(o Options) ([]Case, error) {
	if err := checkOptions("exclusion", o); err != nil {
		return nil, err
	}
	var cs []Case
	for _, mode := range []string{"on", "off"} {
		for _, nt := range scalingTasks(o) {
			cs = append(cs, Case{
				Name:     fmt.Sprintf("Exclusion/mode=%s/tasks=%d", mode, nt),
				Estimate: liveBudget(o) / 3,
				Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
					return exclusionRun(ctx, o, mode == "on", nt, n, t)
				},
			})
		}
	}
	return cs, nil
}

var exclusionExperiment = Experiment{Name: "exclusion", Cases: exclusionCases,
	Question: "What did powerpc's ptrace/perf exclusion (a global list of breakpoints checked under one lock, removed in 2023) cost per reservation as live tasks grow?"}

// exclusionRun holds nt task breakpoints, ptrace ones on even tasks and
// perf ones on odd tasks, then measures alternately the Reserve+Release of
// a perf CPU-bound breakpoint (checked against every task breakpoint) and
// of a ptrace breakpoint for a new task (checked against every CPU's list
// and its own task's), with the exclusion on or with the plain allocator.
func exclusionRun(ctx context.Context, o Options, on bool, nt int, n int64, t Timer) (Result, error) {
	t.StopTimer()
	mode := "off"
	if on {
		mode = "on"
	}
	name := fmt.Sprintf("Exclusion/mode=%s/tasks=%d", mode, nt)
	cpus := runtime.NumCPU()
	sc := harness.Scenario{Experiment: "exclusion", Strategy: exclusionStrategy, Backend: "model", CPUs: cpus, Slots: 4, Tasks: nt, Mix: "perf-cpu,ptrace-task", Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	res := modelResult(sc, name, o, "mode", mode)
	inner, unpin, err := pinnedAllocator(o, exclusionStrategy, cpus)
	if err != nil {
		return res, err
	}
	defer unpin()
	ex := alloc.NewExclusion(inner)
	reserve := func(req alloc.Request, owner alloc.Owner, addr uint64) (alloc.Slot, error) {
		if on {
			return ex.ReserveRange(req, owner, addr, 8)
		}
		return inner.Reserve(req)
	}
	release := inner.Release
	if on {
		release = ex.Release
	}
	held, err := holdTasks(nt, func(task int) (alloc.Slot, error) {
		owner := alloc.Ptrace
		if task%2 == 1 {
			owner = alloc.Perf
		}
		return reserve(alloc.Request{Task: task, CPU: alloc.AnyCPU}, owner, exclusionBase+8*uint64(task))
	})
	defer func() { releaseAll(release, held) }()
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	pair := func(req alloc.Request, owner alloc.Owner, addr uint64) func() error {
		return func() error {
			sl, err := reserve(req, owner, addr)
			if err != nil {
				return fmt.Errorf("reserve %v %v: %w", owner, req, err)
			}
			return release(sl)
		}
	}
	st, recs, err := liveLoop(ctx, o, t, n, [2]func() error{
		pair(alloc.Request{Task: alloc.NoTask, CPU: 0}, alloc.Perf, exclusionCPUAddr),
		pair(alloc.Request{Task: nt, CPU: alloc.AnyCPU}, alloc.Ptrace, exclusionPtAddr),
	})
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	pinCheck(&res, o.PinCPU)
	if err := releaseAll(release, held); err != nil {
		return res, fmt.Errorf("%s: releasing the live tasks: %w", name, err)
	}
	held = nil
	if inner.InUse() || ex.Tracked() != 0 {
		return res, fmt.Errorf("%s: state left after releasing everything (in use %v, tracked %d)", name, inner.InUse(), ex.Tracked())
	}
	liveResult(&res, st, recs, [2]string{"perf-cpu", "ptrace"})
	return res, nil
}
