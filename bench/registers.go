package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"time"

	"bpbench/alloc"
	"bpbench/bench/harness"
	"bpbench/hwregs"
)

// The registers experiment compares the Writer's update policies: write
// only the registers that changed (GDB, rr) against write all six, DR0-DR3,
// DR6 and DR7, on every change (Delve). A holder with four breakpoints
// changes one of them over and over through a Writer of each policy, on
// the simulated registers and on a real tracee through ptrace, where every
// write is a PTRACE_POKEUSER.

// registersMix documents the change mix: what a debugger does to a watch
// it keeps, drawn per change from the seed.
//   - 60% move: same type and length, a new address (stepping a watch
//     along an array); WriteChanged writes DRi only.
//   - 20% resize: same address and type, a new length (8 <-> 4 <-> 2 <-> 1
//     bytes, the address being 8-aligned); DR7 only.
//   - 10% retype: write <-> read/write at the same place; DR7 only.
//   - 10% move and resize: DRi and DR7.
//
// So WriteChanged averages about 1.1 writes per change, WriteAll 6.
const registersMix = "move=60/resize=20/retype=10/move+resize=10"

// registersSeqLen is the length of the pre-drawn cycle of changes, so the
// measured loop only indexes an array.
const registersSeqLen = 4096

// registersSeq draws the cycle of attributes the changing breakpoint goes
// through, starting from start; addrs are the 8-aligned places it may
// watch. Every step differs from the one before.
func registersSeq(seed int64, start hwregs.Attr, addrs []uint64) []hwregs.Attr {
	rng := rand.New(rand.NewSource(seed))
	lens := [...]int{1, 2, 4, 8}
	seq := make([]hwregs.Attr, registersSeqLen)
	cur := start
	newAddr := func() uint64 {
		for {
			if a := addrs[rng.Intn(len(addrs))]; a != cur.Addr {
				return a
			}
		}
	}
	newLen := func() int {
		for {
			if l := lens[rng.Intn(len(lens))]; l != cur.Len {
				return l
			}
		}
	}
	for i := range seq {
		switch r := rng.Intn(100); {
		case r < 60:
			cur.Addr = newAddr()
		case r < 80:
			cur.Len = newLen()
		case r < 90:
			if cur.Type == hwregs.Write {
				cur.Type = hwregs.ReadWrite
			} else {
				cur.Type = hwregs.Write
			}
		default:
			cur.Addr, cur.Len = newAddr(), newLen()
		}
		seq[i] = cur
	}
	return seq
}

// registersStrategy is the model allocator that picks the registers; the
// policies do not touch it after setup, so any strategy gives the same
// writes.
const registersStrategy = "linux"

// Default numbers of changes per case.
const (
	registersSimQuick    = 100_000
	registersSimFull     = 1_000_000
	registersPtraceQuick = 5_000
	registersPtraceFull  = 50_000
)

func registersCases(opts Options) ([]Case, error) {
	if opts.PinCPU < 0 || opts.PinCPU >= runtime.NumCPU() {
		return nil, fmt.Errorf("bench: registers: Options.PinCPU = %d out of range [0, %d)", opts.PinCPU, runtime.NumCPU())
	}
	pols, err := policiesOf(opts)
	if err != nil {
		return nil, err
	}
	var cases []Case
	for _, backend := range []string{"sim", "ptrace"} {
		for _, pol := range pols {
			name := fmt.Sprintf("Registers/backend=%s/policy=%s", backend, hwregs.PolicyName(pol))
			cases = append(cases, Case{
				Name:     name,
				Estimate: 80 * time.Millisecond,
				Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
					if backend == "ptrace" {
						return underKernlock(func() (Result, error) { return registersPtrace(ctx, opts, pol, n, t) })
					}
					return registersSim(ctx, opts, pol, n, t)
				},
			})
		}
	}
	return cases, nil
}

var registersExperiment = Experiment{Name: "registers", Cases: registersCases,
	Question: "How many debug-register writes, and how much time, does writing only the changed registers save over writing all six per change?"}

// registersResult starts the Result of a case.
func registersResult(opts Options, backend string, pol hwregs.WritePolicy, n int64) Result {
	sc := harness.Scenario{Experiment: "registers", Strategy: registersStrategy, Backend: backend,
		CPUs: runtime.NumCPU(), Slots: hwregs.NumSlots, Mix: registersMix, Ops: n, Seed: opts.Seed, PinCPU: opts.PinCPU}
	return Result{
		Experiment: "registers",
		Name:       fmt.Sprintf("Registers/backend=%s/policy=%s", backend, hwregs.PolicyName(pol)),
		Params:     commonParams(sc, "policy", hwregs.PolicyName(pol), "change", "modify", "breakpoints", "4"),
		Metrics:    map[string]float64{},
	}
}

// registersSim runs one policy on the simulated registers.
func registersSim(ctx context.Context, opts Options, pol hwregs.WritePolicy, n int64, t Timer) (Result, error) {
	t.StopTimer()
	n = defaultOps(n, opts, registersSimQuick, registersSimFull)
	res := registersResult(opts, "sim", pol, n)
	addrs := make([]uint64, 8)
	for i := range addrs {
		addrs[i] = 0x20000 + 8*uint64(i)
	}
	return registersRun(ctx, res, opts.Seed, pol, hwregs.NewSim(), addrs, n, t, -1, func(f func()) error { f(); return nil })
}

// registersPtrace runs one policy on a real one-thread tracee: the tracer
// thread is pinned to opts.PinCPU (hwregs pins it) and the whole loop runs
// inside one Ptrace.Do on it. The caller holds the kernlock. The
// breakpoints watch the tracee's own variables.
func registersPtrace(ctx context.Context, opts Options, pol hwregs.WritePolicy, n int64, t Timer) (Result, error) {
	t.StopTimer()
	n = defaultOps(n, opts, registersPtraceQuick, registersPtraceFull)
	res := registersResult(opts, "ptrace", pol, n)
	p, err := startPtrace(hwregs.PtraceOptions{Threads: 1, CPU: opts.PinCPU})
	if err != nil {
		return res, err
	}
	h := p.Hello()
	var addrs []uint64
	for v := 0; v < 4; v++ {
		addrs = append(addrs, h.VarAddr(0, v), h.SharedVarAddr(v))
	}
	res, err = registersRun(ctx, res, opts.Seed, pol, p, addrs, n, t, opts.PinCPU, p.Do)
	if cerr := p.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("%s: closing tracee: %w", res.Name, cerr)
	}
	return res, err
}

// registersRun registers four breakpoints on task 0 of be, then changes
// the fourth n times through a Writer with policy pol along the cycle drawn
// from seed, inside do (on the tracer thread for ptrace). It reports the backend's writes per change.
// pinCPU is the CPU the loop's thread is pinned to, checked afterwards
// (-1: not pinned).
func registersRun(ctx context.Context, res Result, seed int64, pol hwregs.WritePolicy, be hwregs.Backend, addrs []uint64, n int64, t Timer, pinCPU int, do func(func()) error) (Result, error) {
	a, err := alloc.New(registersStrategy, alloc.X86(runtime.NumCPU()))
	if err != nil {
		return res, fmt.Errorf("%s: %w", res.Name, err)
	}
	w := hwregs.NewWriter(a, be, pol)
	req := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}
	start := hwregs.Attr{Addr: addrs[3], Len: 8, Type: hwregs.Write}
	seq := registersSeq(seed, start, addrs)
	rec := harness.NewRecorder()
	var (
		bps     [hwregs.NumSlots]hwregs.Breakpoint
		st      harness.LoopStats
		writes  uint64
		loopErr error
	)
	derr := do(func() {
		for i := range bps {
			at := hwregs.Attr{Addr: addrs[i], Len: 8, Type: hwregs.Write}
			if i == 3 {
				at = start
			}
			if bps[i], loopErr = w.Register(req, at); loopErr != nil {
				loopErr = fmt.Errorf("breakpoint %d: %w", i, loopErr)
				return
			}
		}
		defer func() {
			for i := range bps {
				if bps[i].Slot.Valid() {
					if err := w.Unregister(bps[i]); err != nil && loopErr == nil {
						loopErr = fmt.Errorf("teardown: %w", err)
					}
				}
			}
		}()
		bp := &bps[3]
		w0 := be.Writes()
		st, loopErr = harness.TimeLoop(ctx, t, n, ctxCheckEvery, 0, func(i int64) error {
			return w.Modify(bp, seq[i%registersSeqLen])
		}, rec)
		if loopErr != nil && ctx.Err() == nil {
			loopErr = fmt.Errorf("change %d to %v: %w", st.Done, seq[st.Done%registersSeqLen], loopErr)
		}
		writes = be.Writes() - w0
		if pinCPU >= 0 {
			pinCheck(&res, pinCPU)
		}
	})
	if err := errors.Join(derr, loopErr); err != nil {
		return res, fmt.Errorf("%s: %w", res.Name, err)
	}
	if a.InUse() {
		return res, fmt.Errorf("%s: model allocator still holds a slot after teardown", res.Name)
	}
	setLoop(&res, st, rec)
	res.Metrics[MetricWrites] = float64(writes) / float64(max(st.Done, 1))
	return res, nil
}

// policiesOf returns the write policies Options names, or every
// registered one (the built-ins and any a user's package registered with
// hwregs.RegisterPolicy): a policy of one's own is measured, and checked
// by the Writer against the registers it must reach, like the built-ins.
func policiesOf(o Options) ([]hwregs.WritePolicy, error) {
	names := o.Policies
	if names == nil {
		names = hwregs.PolicyNames()
	}
	out := make([]hwregs.WritePolicy, 0, len(names))
	for _, n := range names {
		wp, err := hwregs.ParsePolicy(n)
		if err != nil {
			return nil, fmt.Errorf("bench: registers: %w", err)
		}
		out = append(out, wp)
	}
	return out, nil
}
