package bench

import (
	"bpbench/bench/harness"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/hwregs"
)

// The kernel-tasks experiment is the real kernel's twin of the model's
// Tasks cases: what one more breakpoint costs to reserve and release
// (perf_event_open + close) while N task breakpoints are held, one each
// on N other threads.
//
// Before Linux 6.1 (Elver's "perf/hw_breakpoint: Optimize for thousands
// of tasks", 2022) every reservation of a task breakpoint walked a list
// of every task breakpoint in the system (task_bp_pinned in
// kernel/events/hw_breakpoint.c iterates bp_task_head, filtering by
// owner), once per CPU in fetch_bp_busy_slots and again in
// toggle_bp_slot: O(#task breakpoints x #CPUs). A CPU-bound reservation
// never walked it (max_task_bp_pinned reads a per-CPU histogram). From
// 6.1 a per-task rhashtable and global histograms make all three flat.
//
// The held breakpoints sit on N threads, one each, as the issue asks and
// as a debugger's threads hold them. Since 5.10's walk visits every task
// breakpoint whatever its owner, N breakpoints on fewer threads would
// show the same walk; one per thread keeps each owner's own count at 1,
// so no held thread is near its 4-slot limit.
var kernelTasksExperiment = Experiment{
	Name:     "kernel-tasks",
	Question: "How does the real kernel's cost of reserving one more breakpoint (perf_event_open + close) grow with the task breakpoints held by other threads: the pre-2022 list walk, or flat as in 6.x?",
	Cases:    kernelTasksCases,
}

// kernelTasksTargets are what the measured breakpoint is bound to: the
// measuring thread on every CPU, the same thread on its one CPU, and a
// CPU (no task).
var kernelTasksTargets = []string{"task", "taskcpu", "cpu"}

// KernelTasksHeld returns the held-breakpoint counts of the cases.
func KernelTasksHeld(o Options) []int {
	if o.Full {
		return []int{0, 64, 256, 1024, 4096, 16384}
	}
	return []int{0, 64, 256, 1024, 4096}
}

func kernelTasksCases(o Options) ([]Case, error) {
	if err := checkOptions("kernel-tasks", o); err != nil {
		return nil, err
	}
	var cs []Case
	for _, held := range KernelTasksHeld(o) {
		for _, tg := range kernelTasksTargets {
			cs = append(cs, Case{
				Name: KernelTasksName(tg, held),
				// Holding N breakpoints costs O(N^2) on a pre-6.1
				// kernel; on this host (6.x) it is about 10 us each.
				Estimate: 300*time.Millisecond + time.Duration(held)*20*time.Microsecond,
				Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
					return kernelTasksRun(ctx, o, tg, held, n, t)
				},
			})
		}
	}
	return cs, nil
}

// KernelTasksName is the name of the case for target with held
// breakpoints held.
func KernelTasksName(target string, held int) string {
	return fmt.Sprintf("KernelTasks/target=%s/held=%d", target, held)
}

// kernelTasksBudget is the measured loop's time when the case picks its
// own op count; kernelTasksMinOps keeps enough batches for an interval
// (64 unsampled ops: 8 batches) however slow one op is.
func kernelTasksBudget(o Options) time.Duration {
	if o.Full {
		return 1500 * time.Millisecond
	}
	return 400 * time.Millisecond
}

const (
	kernelTasksMinOps = 256
	kernelTasksMaxOps = 50_000
	// kernelTasksRecs is how many interleaved recorders the sampled ops
	// go to: each gives a median, and their spread is the interval of
	// the case's p50 (robust to the stalls of an emulated or shared
	// machine, which move the mean).
	kernelTasksRecs = 16
)

// kernelTasksSetupBudget bounds holding the breakpoints. On a pre-6.1
// kernel each hold walks every held one on every CPU, O(N^2 x CPUs) in
// all: 4096 on 32 emulated CPUs would take many minutes. Past the budget
// the case is skipped, saying how far it got, and so are the later cases
// of this process that would hold as many or more.
func kernelTasksSetupBudget(o Options) time.Duration {
	if o.Full {
		return 5 * time.Minute
	}
	return 40 * time.Second
}

// kernelTasksTooSlow remembers the first held count whose setup blew the
// budget, and why.
var kernelTasksTooSlow struct {
	sync.Mutex
	held   int
	reason string
}

// kernelTasksVar is the measured breakpoint's address; held ones watch
// kernelTasksHeldVar. Nothing touches either.
var kernelTasksVar, kernelTasksHeldVar uint64

func kernelTasksRun(ctx context.Context, o Options, target string, held int, n int64, t Timer) (Result, error) {
	t.StopTimer()
	name := KernelTasksName(target, held)
	sc := harness.Scenario{Experiment: "kernel-tasks", Backend: "perf", Slots: 4, Tasks: held, Mix: target, Seed: o.Seed, PinCPU: o.PinCPU}
	res := Result{Experiment: "kernel-tasks", Name: name,
		Params: commonParams(sc, "target", target, "held", strconv.Itoa(held), "admission", "kernel", "cpus", strconv.Itoa(runtime.NumCPU()))}
	if err := hwregs.PerfSupported(); err != nil {
		return res, skipIfUnsupported(err)
	}
	pid, cpu := 0, -1
	switch target {
	case "task":
	case "taskcpu":
		cpu = o.PinCPU
	case "cpu":
		pid, cpu = -1, o.PinCPU
	default:
		return res, fmt.Errorf("bench: kernel-tasks target %q: unknown (want one of %v)", target, kernelTasksTargets)
	}
	restore, err := raiseLimits(held)
	if err != nil {
		return res, err
	}
	defer restore()
	done, err := realPrologue(o)
	if err != nil {
		return res, err
	}
	defer done()

	kernelTasksTooSlow.Lock()
	slow, why := kernelTasksTooSlow.held, kernelTasksTooSlow.reason
	kernelTasksTooSlow.Unlock()
	if slow > 0 && held >= slow {
		return res, Skipf("%s (an earlier case)", why)
	}
	hattr := hwregs.PerfAttr(hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&kernelTasksHeldVar))), Len: 8, Type: hwregs.Write})
	budget := kernelTasksSetupBudget(o)
	h, err := holdTaskBreakpoints(ctx, held, &hattr, time.Now().Add(budget))
	if errors.Is(err, errSetupSlow) {
		why := fmt.Sprintf("holding %d task breakpoints on %d CPUs takes over %v: %v", held, runtime.NumCPU(), budget, err)
		kernelTasksTooSlow.Lock()
		if kernelTasksTooSlow.held == 0 || held < kernelTasksTooSlow.held {
			kernelTasksTooSlow.held, kernelTasksTooSlow.reason = held, why
		}
		kernelTasksTooSlow.Unlock()
		return res, Skipf("%s", why)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, skipIfUnsupported(err))
	}
	defer h.release()

	attr := hwregs.PerfAttr(hwregs.Attr{Addr: uint64(uintptr(unsafe.Pointer(&kernelTasksVar))), Len: 8, Type: hwregs.Write})
	pidArg, cpuArg := uintptr(pid), uintptr(cpu)
	if pid < 0 {
		pidArg = ^uintptr(0)
	}
	if cpu < 0 {
		cpuArg = ^uintptr(0)
	}
	openClose := func(pidArg, cpuArg uintptr) func(int64) error {
		return func(int64) error {
			fd, _, e := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&attr)), pidArg, cpuArg, ^uintptr(0), unix.PERF_FLAG_FD_CLOEXEC, 0)
			if e != 0 {
				return e
			}
			unix.Syscall(unix.SYS_CLOSE, fd, 0, 0)
			return nil
		}
	}
	op := openClose(pidArg, cpuArg)
	// The reference is a CPU-bound open+close on the same CPU, which no
	// kernel's accounting makes depend on task breakpoints. It runs
	// between every two measured ops, so both see the machine at the
	// same speed (a shared host, and emulation, halve it for stretches),
	// and cost/reference compares cases run at different times.
	ref := openClose(^uintptr(0), uintptr(o.PinCPU))
	// Warm up, and time a few pairs to size the loop to its budget: one
	// op ranges from microseconds (6.x, native) to milliseconds (5.10
	// with thousands held, under emulation).
	const warmOps, probeOps = 8, 16
	for i := int64(0); i < warmOps; i++ {
		if err := op(i); err != nil {
			return res, fmt.Errorf("%s: warm-up: %w", name, skipIfUnsupported(fmt.Errorf("perf_event_open: %w", classifyOpen(err))))
		}
		if err := ref(i); err != nil {
			return res, fmt.Errorf("%s: reference warm-up: %w", name, skipIfUnsupported(fmt.Errorf("perf_event_open: %w", classifyOpen(err))))
		}
	}
	start := time.Now()
	for i := int64(0); i < probeOps; i++ {
		if err := op(i); err != nil {
			return res, fmt.Errorf("%s: warm-up: %w", name, err)
		}
		if err := ref(i); err != nil {
			return res, fmt.Errorf("%s: reference warm-up: %w", name, err)
		}
	}
	if n <= 0 {
		per := time.Since(start) / probeOps
		n = int64(kernelTasksBudget(o) / max(per, time.Nanosecond))
		n = min(max(n, kernelTasksMinOps), kernelTasksMaxOps)
	}
	res.Params["ops"] = strconv.FormatInt(n, 10)
	pl, err := pairedLoop(ctx, t, n, op, ref)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", name, err)
	}
	pinCheck(&res, o.PinCPU)
	if err := h.release(); err != nil {
		return res, fmt.Errorf("%s: releasing the held breakpoints: %w", name, err)
	}
	pl.fill(&res)
	return res, nil
}

// pairedStats is what pairedLoop measured.
type pairedStats struct {
	done  int64
	total harness.Ticks // the measured ops' time, tare removed
	tare  harness.Ticks
	op    [kernelTasksRecs]*harness.Recorder
	ref   [kernelTasksRecs]*harness.Recorder
	log   harness.BatchLog
}

// pairedLoop runs op and ref alternately n times each (which of the two
// goes first alternates too), timing each op alone (its ops are tens of
// microseconds and up, so a clock read per op is noise) into
// kernelTasksRecs interleaved sub-samples.
func pairedLoop(ctx context.Context, t Timer, n int64, op, ref func(int64) error) (*pairedStats, error) {
	ps := &pairedStats{tare: harness.MeasureTare()}
	for i := range ps.op {
		ps.op[i], ps.ref[i] = harness.NewRecorder(), harness.NewRecorder()
	}
	net := func(d harness.Ticks) harness.Ticks { return max(d-ps.tare, 0) }
	t.ResetTimer()
	t.StartTimer()
	defer t.StopTimer()
	for i := int64(0); i < n; i++ {
		if i%16 == 0 && ctx.Err() != nil {
			return ps, ctx.Err()
		}
		k := i % kernelTasksRecs
		var dOp, dRef harness.Ticks
		if i&1 == 0 {
			t0 := harness.Now()
			if err := op(i); err != nil {
				return ps, fmt.Errorf("op %d: %w", i, err)
			}
			t1 := harness.Now()
			if err := ref(i); err != nil {
				return ps, fmt.Errorf("reference %d: %w", i, err)
			}
			dOp, dRef = net(t1-t0), net(harness.Now()-t1)
		} else {
			t0 := harness.Now()
			if err := ref(i); err != nil {
				return ps, fmt.Errorf("reference %d: %w", i, err)
			}
			t1 := harness.Now()
			if err := op(i); err != nil {
				return ps, fmt.Errorf("op %d: %w", i, err)
			}
			dRef, dOp = net(t1-t0), net(harness.Now()-t1)
		}
		ps.op[k].Record(dOp)
		ps.ref[k].Record(dRef)
		ps.log.Add(dOp, 1)
		ps.total += dOp
		ps.done++
	}
	return ps, nil
}

// fill writes the loop's figures into res: ns/op (mean) with its
// consecutive batches, the latency histogram and p50/p99, the p50 of
// each sub-sample ("p50-ns" batches), the reference's p50 and each
// sub-sample's p50 over its reference's ("p50/ref").
func (ps *pairedStats) fill(res *Result) {
	if res.Metrics == nil {
		res.Metrics = map[string]float64{}
	}
	res.Iterations = ps.done
	if ps.done > 0 {
		res.NsPerOp = harness.TicksToNs(ps.total) / float64(ps.done)
	}
	all, refAll := harness.NewRecorder(), harness.NewRecorder()
	var p50s, rel []float64
	for k := range ps.op {
		all.Merge(ps.op[k])
		refAll.Merge(ps.ref[k])
		if ps.op[k].Count() >= 4 {
			p, r := ps.op[k].Quantile(0.5), ps.ref[k].Quantile(0.5)
			p50s = append(p50s, p)
			if r > 0 {
				rel = append(rel, p/r)
			}
		}
	}
	setLatency(res, all)
	res.Metrics["sampler-ns"] = harness.TicksToNs(ps.tare)
	addBatches(res, "ns/op", ps.log.NsPerOp())
	addBatches(res, "p50-ns", p50s)
	if r := refAll.Quantile(0.5); r > 0 {
		res.Metrics["ref-p50-ns"] = r
		res.Metrics["p50/ref"] = res.Metrics["p50-ns"] / r
		addBatches(res, "p50/ref", rel)
	}
}

// errSetupSlow is holdTaskBreakpoints' error past its deadline.
var errSetupSlow = errors.New("setup deadline passed")

// taskHolder is n threads, each holding one task breakpoint (every CPU)
// opened on it by this process.
type taskHolder struct {
	fds  []int
	tids []int
	stop chan struct{}
	wg   sync.WaitGroup
	done bool
}

// holdTaskBreakpoints starts n threads parked in the kernel and opens
// one breakpoint with attr on each.
// Past deadline it gives up with errSetupSlow, saying how many it held.
func holdTaskBreakpoints(ctx context.Context, n int, attr *unix.PerfEventAttr, deadline time.Time) (*taskHolder, error) {
	h := &taskHolder{stop: make(chan struct{}), fds: make([]int, 0, n)}
	tids := make(chan int, n)
	for i := 0; i < n; i++ {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			// Never unlocked: the thread is this goroutine's alone while
			// it holds the breakpoint, and dies with it.
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-h.stop
		}()
	}
	for i := 0; i < n; i++ {
		tid := <-tids
		if i%64 == 0 {
			if ctx.Err() != nil {
				h.release()
				return nil, ctx.Err()
			}
			if time.Now().After(deadline) {
				h.release()
				return nil, fmt.Errorf("%w: %d of %d held", errSetupSlow, i, n)
			}
		}
		fd, err := unix.PerfEventOpen(attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			h.release()
			return nil, fmt.Errorf("holding breakpoint %d of %d (thread %d): perf_event_open: %w", i+1, n, tid, classifyOpen(err))
		}
		h.fds = append(h.fds, fd)
		h.tids = append(h.tids, tid)
	}
	return h, nil
}

// classifyOpen maps perf_event_open's errors to hwregs' sentinels where
// they mean the machine cannot run the case.
func classifyOpen(err error) error {
	switch {
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w: %v", hwregs.ErrPermission, err)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w: %v", hwregs.ErrUnsupported, err)
	}
	return err
}

// release closes every held breakpoint and ends the threads; it is safe
// to call more than once.
func (h *taskHolder) release() error {
	if h.done {
		return nil
	}
	h.done = true
	var first error
	for _, fd := range h.fds {
		if err := unix.Close(fd); err != nil && first == nil {
			first = err
		}
	}
	h.fds = nil
	close(h.stop)
	h.wg.Wait()
	return first
}

// raiseLimits makes room for held threads and their breakpoints' fds:
// RLIMIT_NOFILE (the kernel starts processes at 1024 soft, 4096 hard, and
// each held breakpoint is an fd) and Go's thread limit (10000 by default:
// past it the runtime aborts), and checks the kernel's threads-max and
// pid_max. It returns
// the function that puts the process's own limits back; it never lowers
// anything, and it says why when the machine cannot give the room.
func raiseLimits(held int) (func(), error) {
	var undo []func()
	restore := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	need := uint64(held + 256)
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("bench: getrlimit: %w", err)
	}
	if lim.Cur < need {
		old := lim
		nl := unix.Rlimit{Cur: need, Max: max(lim.Max, need)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &nl); err != nil {
			return nil, Skipf("holding %d breakpoints needs %d open files; RLIMIT_NOFILE is %d (hard %d) and cannot be raised: %v", held, need, lim.Cur, lim.Max, err)
		}
		undo = append(undo, func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
	}
	threads := held + 1024
	if threads > 10000 {
		old := debug.SetMaxThreads(threads)
		undo = append(undo, func() { debug.SetMaxThreads(old) })
	}
	// A clone refused by threads-max would abort the Go runtime, not
	// return an error: check first. (A bpbench guest's init raises it;
	// on a user's machine the sysctl is theirs to change.)
	if max, err := readInt("/proc/sys/kernel/threads-max"); err == nil && max < threads+1024 {
		restore()
		return nil, Skipf("holding %d breakpoints needs %d threads; kernel.threads-max is %d", held, threads, max)
	}
	if max, err := readInt("/proc/sys/kernel/pid_max"); err == nil && max < threads+1024 {
		restore()
		return nil, Skipf("holding %d breakpoints needs %d threads; kernel.pid_max is %d", held, threads, max)
	}
	return restore, nil
}

func readInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// ModelTasksCase is the model's twin of a kernel-tasks case, for putting
// a kernel's curve next to the model's: the Tasks case of the scaling
// experiment (a task breakpoint's reservation and release, alternating
// with a CPU-bound one's, while tasks other tasks each hold one) for
// strategy s on cpus simulated CPUs. Its "task-ns/op" metric is the
// task reservation's cost.
func ModelTasksCase(o Options, s string, cpus, tasks int) Case {
	return Case{
		Name:     fmt.Sprintf("Tasks/strategy=%s/cpus=%d/tasks=%d", s, cpus, tasks),
		Estimate: liveBudget(o),
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			return tasksRun(ctx, o, s, cpus, tasks, n, t)
		},
	}
}
