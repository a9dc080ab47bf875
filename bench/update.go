package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bpbench/alloc"
	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/internal/cpupin"
	"bpbench/internal/kernlock"
)

// updateOps are the ways of changing a held breakpoint, in the order the
// cases run; "modify" and "reregister" give the headline ratio.
var updateOps = []string{"modify", "disable-enable", "reregister"}

// updateSimCPUs is the model machine of the sim cases: the holder's task
// breakpoint follows it on every CPU, so two CPUs already exercise the
// every-CPU admission path.
const updateSimCPUs = 2

// updatePtraceStrategy is the model allocator that does admission for the
// ptrace cases' Writer: the kernel admits too (on the DR writes), but the
// Writer needs a model slot to pick the register index.
const updatePtraceStrategy = "linux"

// updateAttrs are the two places a held breakpoint alternates between, so
// every change really changes DR0-DR3 (and, for perf, the kernel's attr).
var updateVars [2]uint64

func updateAttrs() [2]hwregs.Attr {
	return [2]hwregs.Attr{
		{Addr: uint64(uintptr(unsafe.Pointer(&updateVars[0]))), Len: 8, Type: hwregs.Write},
		{Addr: uint64(uintptr(unsafe.Pointer(&updateVars[1]))), Len: 8, Type: hwregs.Write},
	}
}

func updateCases(o Options) ([]Case, error) {
	if err := checkOptions("update", o); err != nil {
		return nil, err
	}
	var cs []Case
	for _, s := range strategiesOf(o) {
		for _, op := range updateOps {
			cs = append(cs, Case{
				Name:     fmt.Sprintf("Update/backend=sim/strategy=%s/op=%s", s, op),
				Estimate: 150 * time.Millisecond,
				Run:      func(ctx context.Context, n int64, t Timer) (Result, error) { return updateSim(ctx, o, s, op, n, t) },
			})
		}
	}
	for _, op := range updateOps {
		cs = append(cs, Case{
			Name:     "Update/backend=ptrace/op=" + op,
			Estimate: 250 * time.Millisecond,
			Run:      func(ctx context.Context, n int64, t Timer) (Result, error) { return updatePtrace(ctx, o, op, n, t) },
		})
	}
	for _, op := range updateOps {
		cs = append(cs, Case{
			Name:     "Update/backend=perf/op=" + op,
			Estimate: 250 * time.Millisecond,
			Run:      func(ctx context.Context, n int64, t Timer) (Result, error) { return updatePerf(ctx, o, op, n, t) },
		})
	}
	return cs, nil
}

var updateExperiment = Experiment{Name: "update", Cases: updateCases,
	Question: "How much does changing a held breakpoint in place (modify) save over disable-modify-enable and over unregister-then-register, on the model and on the real kernel?"}

// validUpdateOp reports an op name that is not one of updateOps.
func validUpdateOp(op string) error {
	for _, o := range updateOps {
		if o == op {
			return nil
		}
	}
	return fmt.Errorf("bench: update op %q: unknown (want one of %v)", op, updateOps)
}

// writerOp returns the Writer method behind an update op name.
func writerOp(w *hwregs.Writer, op string) (func(*hwregs.Breakpoint, hwregs.Attr) error, error) {
	switch op {
	case "modify":
		return w.Modify, nil
	case "disable-enable":
		return w.DisableModifyEnable, nil
	case "reregister":
		return func(bp *hwregs.Breakpoint, a hwregs.Attr) error {
			_, err := w.Reregister(bp, a)
			return err
		}, nil
	}
	return nil, fmt.Errorf("bench: update op %q: unknown (want one of %v)", op, updateOps)
}

// writerLoop registers a breakpoint for task 0 through w, changes it n
// times with op (alternating between the two update attrs) in a TimeLoop,
// and unregisters it. It returns the loop's figures, the sampled
// latencies and the backend writes the changes made.
func writerLoop(ctx context.Context, t Timer, w *hwregs.Writer, op string, n int64) (st harness.LoopStats, rec *harness.Recorder, writes uint64, err error) {
	change, err := writerOp(w, op)
	if err != nil {
		return st, nil, 0, err
	}
	attrs := updateAttrs()
	req := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}
	bp, err := w.Register(req, attrs[0])
	if err != nil {
		return st, nil, 0, err
	}
	defer func() {
		if bp.Slot.Valid() {
			if uerr := w.Unregister(bp); uerr != nil && err == nil {
				err = uerr
			}
		}
	}()
	// Warm caches, the mirror and the allocator's per-task state.
	for i := 0; i < 64; i++ {
		if err := change(&bp, attrs[(i+1)&1]); err != nil {
			return st, nil, 0, fmt.Errorf("warm-up %s: %w", op, err)
		}
	}
	rec = harness.NewRecorder()
	w0 := w.Backend().Writes()
	st, err = harness.TimeLoop(ctx, t, n, ctxCheckEvery, 0, func(i int64) error { return change(&bp, attrs[(i+1)&1]) }, rec)
	if err != nil && ctx.Err() == nil {
		return st, nil, 0, fmt.Errorf("%s #%d: %w", op, st.Done, err)
	}
	return st, rec, w.Backend().Writes() - w0, err
}

// updateSim measures op on the Writer over strategy s and the Sim backend.
func updateSim(ctx context.Context, o Options, s, op string, n int64, t Timer) (Result, error) {
	t.StopTimer()
	n = defaultOps(n, o, 200_000, 2_000_000)
	sc := harness.Scenario{Experiment: "update", Strategy: s, Backend: "sim", CPUs: updateSimCPUs, Slots: 4, Mix: op, Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	res := Result{Experiment: "update", Name: fmt.Sprintf("Update/backend=sim/strategy=%s/op=%s", s, op),
		Params: commonParams(sc, "op", op, "policy", hwregs.PolicyName(hwregs.WriteChanged))}
	a, unpin, err := pinnedAllocator(o, s, updateSimCPUs)
	if err != nil {
		return res, err
	}
	defer unpin()
	w := hwregs.NewWriter(a, hwregs.NewSim(), hwregs.WriteChanged)
	st, rec, writes, err := writerLoop(ctx, t, w, op, n)
	if err != nil {
		return res, fmt.Errorf("%s: %w", res.Name, err)
	}
	if a.InUse() {
		return res, fmt.Errorf("%s: strategy %s still holds a slot after Unregister", res.Name, s)
	}
	setLoop(&res, st, rec)
	res.Metrics[MetricWrites] = float64(writes) / float64(st.Done)
	pinCheck(&res, o.PinCPU)
	return res, nil
}

// realPrologue pins the measuring thread and takes the machine-wide
// debug-register lock; the returned function undoes both.
func realPrologue(o Options) (func(), error) {
	unpin, err := cpupin.Pin(o.PinCPU)
	if err != nil {
		return nil, err
	}
	l, err := kernlock.Acquire()
	if err != nil {
		unpin()
		return nil, err
	}
	return func() { l.Unlock(); unpin() }, nil
}

// updatePerf measures op on a perf_event_open breakpoint on the calling
// (pinned) thread, and, in the same case, the bare syscalls that op makes
// as the floor: IOC_MODIFY_ATTRIBUTES; IOC_DISABLE + MODIFY + IOC_ENABLE;
// close + perf_event_open.
func updatePerf(ctx context.Context, o Options, op string, n int64, t Timer) (Result, error) {
	t.StopTimer()
	n = defaultOps(n, o, 20_000, 200_000)
	sc := harness.Scenario{Experiment: "update", Backend: "perf", Slots: 4, Mix: op, Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	res := Result{Experiment: "update", Name: "Update/backend=perf/op=" + op,
		Params: commonParams(sc, "op", op, "admission", "kernel")}
	if err := perfSupported(); err != nil {
		return res, err
	}
	done, err := realPrologue(o)
	if err != nil {
		return res, err
	}
	defer done()

	attrs := updateAttrs()
	if err := validUpdateOp(op); err != nil {
		return res, err
	}
	// The floor runs in two halves, before and after the op's loop, so a
	// drift of the machine during the case weighs on both alike; each
	// half runs alone on the thread, as the op does (a second breakpoint
	// on the thread makes every change dearer).
	f1, frec, err := perfFloor(ctx, op, attrs, (n+1)/2)
	if err != nil {
		return res, fmt.Errorf("%s: floor: %w", res.Name, skipIfUnsupported(err))
	}
	e, err := hwregs.OpenPerf(attrs[0], 0, -1)
	if err != nil {
		return res, skipIfUnsupported(err)
	}
	defer e.Close()
	var change func(a hwregs.Attr) error
	switch op {
	case "modify":
		change = e.Modify
	case "disable-enable":
		change = func(a hwregs.Attr) error {
			if err := e.Disable(); err != nil {
				return err
			}
			if err := e.Modify(a); err != nil {
				return err
			}
			return e.Enable()
		}
	case "reregister":
		change = e.Reregister
	default:
		return res, fmt.Errorf("bench: update op %q: unknown (want one of %v)", op, updateOps)
	}
	for i := 0; i < 64; i++ {
		if err := change(attrs[(i+1)&1]); err != nil {
			return res, fmt.Errorf("%s: warm-up: %w", res.Name, err)
		}
	}
	rec := harness.NewRecorder()
	st, err := harness.TimeLoop(ctx, t, n, ctxCheckEvery, 0, func(i int64) error { return change(attrs[(i+1)&1]) }, rec)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("%s #%d: %w", res.Name, st.Done, err)
	}
	e.Close()
	f2, frec2, err := perfFloor(ctx, op, attrs, (n+1)/2)
	if err != nil {
		return res, fmt.Errorf("%s: floor: %w", res.Name, err)
	}
	frec.Merge(frec2)
	setLoop(&res, st, rec)
	setFloor(&res, f1, f2, frec)
	pinCheck(&res, o.PinCPU)
	return res, nil
}

// perfFloor returns the loop figures and the latencies of the bare
// syscalls behind op, issued with prebuilt attrs on the calling thread,
// n times after a warm-up, measured by the same TimeLoop as the op.
func perfFloor(ctx context.Context, op string, attrs [2]hwregs.Attr, n int64) (harness.LoopStats, *harness.Recorder, error) {
	raw := [2]unix.PerfEventAttr{hwregs.PerfAttr(attrs[0]), hwregs.PerfAttr(attrs[1])}
	// A disabled event is modified with the disabled bit set, or the kernel
	// would re-enable it before the explicit IOC_ENABLE.
	rawOff := raw
	rawOff[0].Bits |= unix.PerfBitDisabled
	rawOff[1].Bits |= unix.PerfBitDisabled
	fd, err := unix.PerfEventOpen(&raw[0], 0, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return harness.LoopStats{}, nil, err
	}
	defer func() { unix.Close(fd) }()
	ioctl := func(req uint, arg unsafe.Pointer) unix.Errno {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
		return e
	}
	// The op is chosen before the loop, so the floor pays no dispatch the
	// measured case does not pay too.
	var step func(i int64) unix.Errno
	switch op {
	case "modify":
		step = func(i int64) unix.Errno {
			return ioctl(unix.PERF_EVENT_IOC_MODIFY_ATTRIBUTES, unsafe.Pointer(&raw[(i+1)&1]))
		}
	case "disable-enable":
		step = func(i int64) unix.Errno {
			e := ioctl(unix.PERF_EVENT_IOC_DISABLE, nil)
			if e == 0 {
				if e = ioctl(unix.PERF_EVENT_IOC_MODIFY_ATTRIBUTES, unsafe.Pointer(&rawOff[(i+1)&1])); e == 0 {
					e = ioctl(unix.PERF_EVENT_IOC_ENABLE, nil)
				}
			}
			return e
		}
	case "reregister":
		step = func(i int64) unix.Errno {
			unix.Close(fd)
			r, _, e := unix.Syscall6(unix.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&raw[(i+1)&1])), 0, ^uintptr(0), ^uintptr(0), unix.PERF_FLAG_FD_CLOEXEC, 0)
			if e == 0 {
				fd = int(r)
			} else {
				fd = -1
			}
			return e
		}
	default:
		return harness.LoopStats{}, nil, fmt.Errorf("raw %s: unknown op (want one of %v)", op, updateOps)
	}
	stepErr := func(i int64) error {
		if e := step(i); e != 0 {
			return e
		}
		return nil
	}
	for i := int64(0); i < 64; i++ {
		if err := stepErr(i); err != nil {
			return harness.LoopStats{}, nil, fmt.Errorf("raw %s warm-up: %w", op, err)
		}
	}
	rec := harness.NewRecorder()
	st, err := harness.TimeLoop(ctx, NopTimer, n, ctxCheckEvery, 0, stepErr, rec)
	if err := ctx.Err(); err != nil {
		return st, nil, err
	}
	if err != nil {
		return st, nil, fmt.Errorf("raw %s #%d: %w", op, st.Done, err)
	}
	return st, rec, nil
}

// updatePtrace measures op through the Writer on a real tracee's debug
// registers. Admission happens twice, as it would in a debugger: the model
// allocator (strategy "linux") picks the register, and the kernel admits
// the write.
func updatePtrace(ctx context.Context, o Options, op string, n int64, t Timer) (Result, error) {
	t.StopTimer()
	n = defaultOps(n, o, 20_000, 200_000)
	sc := harness.Scenario{Experiment: "update", Strategy: updatePtraceStrategy, Backend: "ptrace", CPUs: runtime.NumCPU(), Slots: 4, Mix: op, Ops: n, Seed: o.Seed, PinCPU: o.PinCPU}
	res := Result{Experiment: "update", Name: "Update/backend=ptrace/op=" + op,
		Params: commonParams(sc, "op", op, "policy", hwregs.PolicyName(hwregs.WriteChanged), "admission", "model+kernel")}
	return ptraceUpdate(ctx, o, op, n, t, res)
}

// ptraceDR0 is offsetof(struct user, u_debugreg[0]) on amd64, for the raw
// POKEUSER floor (shared/anchors.md, "x86 debug registers through ptrace").
const ptraceDR0 = 848

// ptraceUpdate runs the ptrace case: a one-thread tracee whose tracer
// thread hwregs pins to o.PinCPU; the changes run inside one Ptrace.Do on
// that thread. The floor, measured first in the same Do, is the same
// register writes as bare PTRACE_POKEUSER calls on an enabled breakpoint
// in DR0: DR0 for modify; DR7 off, DR0, DR7 on for disable-enable and for
// reregister (whose kernel work is the same; the rest is the Writer and the
// model allocator).
func ptraceUpdate(ctx context.Context, o Options, op string, n int64, t Timer, res Result) (Result, error) {
	l, err := kernlock.Acquire()
	if err != nil {
		return res, err
	}
	defer l.Unlock()
	p, err := startPtrace(hwregs.PtraceOptions{Threads: 1, CPU: o.PinCPU})
	if err != nil {
		return res, err
	}
	defer p.Close()
	a, err := alloc.New(updatePtraceStrategy, alloc.X86(runtime.NumCPU()))
	if err != nil {
		return res, err
	}
	w := hwregs.NewWriter(a, p, hwregs.WriteChanged)
	var (
		st      harness.LoopStats
		rec     *harness.Recorder
		writes  uint64
		f1, f2  harness.LoopStats
		frec    *harness.Recorder
		loopErr error
	)
	// The floor runs in two halves, before and after the op's loop, so a
	// drift of the machine during the case weighs on both alike.
	if derr := p.Do(func() {
		if f1, frec, loopErr = ptraceFloor(ctx, p.Tids()[0], op, (n+1)/2); loopErr != nil {
			return
		}
		if st, rec, writes, loopErr = writerLoop(ctx, t, w, op, n); loopErr != nil {
			return
		}
		var frec2 *harness.Recorder
		if f2, frec2, loopErr = ptraceFloor(ctx, p.Tids()[0], op, (n+1)/2); loopErr != nil {
			return
		}
		frec.Merge(frec2)
		pinCheck(&res, o.PinCPU)
	}); derr != nil {
		return res, fmt.Errorf("%s: %w", res.Name, derr)
	}
	if loopErr != nil {
		return res, fmt.Errorf("%s: %w", res.Name, loopErr)
	}
	if a.InUse() {
		return res, fmt.Errorf("%s: model allocator still holds a slot after Unregister", res.Name)
	}
	setLoop(&res, st, rec)
	res.Metrics[MetricWrites] = float64(writes) / float64(st.Done)
	setFloor(&res, f1, f2, frec)
	return res, nil
}

// setFloor records the raw-syscall floor measured in the same case, in
// two halves before (f1) and after (f2) the op's loop with the same
// TimeLoop: its unsampled mean ("floor-ns/op") and its median
// ("floor-p50-ns", net of the sampler's tare like the op's), and the
// case's ratio to each ("x-floor", "x-floor-p50"; the median ratio is the
// one to trust on a noisy machine).
func setFloor(res *Result, f1, f2 harness.LoopStats, rec *harness.Recorder) {
	mean := 0.0
	if u := f1.Unsampled + f2.Unsampled; u > 0 {
		mean = (f1.UnsampledNs + f2.UnsampledNs) / float64(u)
	}
	res.Metrics[MetricFloorNs] = mean
	if mean > 0 {
		res.Metrics[MetricXFloor] = res.NsPerOp / mean
	}
	if p50 := rec.Quantile(0.5); p50 > 0 {
		res.Metrics["floor-p50-ns"] = p50
		res.Metrics[MetricXFloorP50] = res.Metrics[MetricP50] / p50
	}
}

// ptraceFloor returns the loop figures and the latencies of op's register
// writes issued as bare PTRACE_POKEUSER calls on thread tid, n times after
// a warm-up, with the same TimeLoop as the op, starting from and ending
// with DR0-DR3 and DR7 cleared. It must run on the tracer thread.
func ptraceFloor(ctx context.Context, tid int, op string, n int64) (harness.LoopStats, *harness.Recorder, error) {
	attrs := updateAttrs()
	on := [2]uint64{uint64(hwregs.DR7(0).WithSlot(0, attrs[0])), uint64(hwregs.DR7(0).WithSlot(0, attrs[1]))}
	poke := func(reg int, v uint64) error {
		_, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_POKEUSR, uintptr(tid), uintptr(ptraceDR0+8*reg), uintptr(v), 0, 0)
		if e != 0 {
			return fmt.Errorf("raw POKEUSER DR%d = %#x: %w", reg, v, e)
		}
		return nil
	}
	if err := poke(0, attrs[0].Addr); err != nil {
		return harness.LoopStats{}, nil, err
	}
	if err := poke(hwregs.RegDR7, on[0]); err != nil {
		return harness.LoopStats{}, nil, err
	}
	// The op is chosen before the loop, so the floor pays no dispatch the
	// measured case does not pay too.
	step := func(i int64) error { return poke(0, attrs[(i+1)&1].Addr) }
	if op != "modify" {
		step = func(i int64) error {
			k := (i + 1) & 1
			err := poke(hwregs.RegDR7, 0)
			if err == nil {
				if err = poke(0, attrs[k].Addr); err == nil {
					err = poke(hwregs.RegDR7, on[k])
				}
			}
			return err
		}
	}
	for i := int64(0); i < 64; i++ {
		if err := step(i); err != nil {
			return harness.LoopStats{}, nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	rec := harness.NewRecorder()
	st, err := harness.TimeLoop(ctx, NopTimer, n, ctxCheckEvery, 0, step, rec)
	if err := ctx.Err(); err != nil {
		return st, nil, err
	}
	if err != nil {
		return st, nil, fmt.Errorf("#%d: %w", st.Done, err)
	}
	if err := poke(hwregs.RegDR7, 0); err != nil {
		return st, nil, err
	}
	return st, rec, poke(0, 0)
}
