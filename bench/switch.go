package bench

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bpbench/bench/harness"
	"bpbench/hwregs"
	"bpbench/hwregs/tracee"
	"bpbench/stats"
)

// The switch experiment measures what task breakpoints cost at a context
// switch on the running kernel. Two threads of a tracee hand a token back
// and forth through a futex (tracee.OpPingPong), both pinned to one CPU, so
// every hand-off is a context switch, the shape of `perf bench sched pipe`;
// B task breakpoints (write, 8 bytes, on variables the threads never touch,
// so the cost is the switch and not traps) sit on one or on both threads,
// set with perf_event_open (pid = tid, cpu = -1) or written by the tracer
// through ptrace (DR0..DR{B-1}, then DR7). One op is a round trip: two
// context switches. Each case runs a second, breakpoint-free tracee on the
// same CPU and alternates batches between the two, so slowdown is a ratio
// of figures taken in the same run.
//
// What x86 Linux does at a switch (6.x; kernel/events/core.c,
// kernel/events/hw_breakpoint.c, arch/x86/kernel/hw_breakpoint.c). Every
// breakpoint is a perf event in its task's perf_event_context, ptrace's
// too (ptrace_register_breakpoint → register_user_hw_breakpoint), and the
// breakpoint PMU (perf_breakpoint, task_ctx_nr = perf_sw_context) has
// .add = hw_breakpoint_add and .del = hw_breakpoint_del. At switch-out,
// prepare_task_switch → perf_event_task_sched_out →
// __perf_event_task_sched_out → perf_event_context_sched_out (which swaps
// whole contexts without touching the PMU only when the next task's
// context is an equivalent inherited clone, context_equiv; per-thread
// breakpoints are not) → task_ctx_sched_out → ctx_sched_out →
// __pmu_ctx_sched_out → group_sched_out → event_sched_out → pmu->del =
// hw_breakpoint_del → arch_uninstall_hw_breakpoint, which frees the
// event's per-CPU bp_per_reg[i], clears its bits in the per-CPU cpu_dr7
// and writes DR7 (set_debugreg(dr7, 7)). At switch-in, finish_task_switch
// → perf_event_task_sched_in → perf_event_context_sched_in → ctx_sched_in
// → __pmu_ctx_sched_in → visit_groups_merge → merge_sched_in →
// group_sched_in → event_sched_in → pmu->add = hw_breakpoint_add →
// arch_install_hw_breakpoint, which takes the first
// free bp_per_reg slot, writes DRi (set_debugreg(addr, i), mirrored in
// cpu_debugreg[i]) and ORs the slot into cpu_dr7 and writes DR7. So today's
// kernel is eager per breakpoint: 3 debug-register writes per breakpoint
// per switch pair (DR7 out; DRi and DR7 in), with no comparison against
// what the CPU already holds and no lazy switching (every switch-out
// clears the task's registers, whatever the next task holds), plus the perf
// context work (ctx lock, perf_ctx_disable/enable, time accounting) that
// any task with a perf context pays. The debug exception handler
// (hw_breakpoint_handler) finds the event through the per-CPU bp_per_reg,
// the per-CPU state the 2009 review asked for.
//
// On a KVM guest, a MOV to a debug register is intercepted until the
// guest first touches one; KVM (handle_dr on VMX, dr_interception on SVM)
// then stops intercepting (KVM_DEBUGREG_WONT_EXIT), loads the guest's
// registers at every VM entry and saves them at the next exit, where
// interception is re-armed (sync_dirty_debug_regs). A debug-register
// write therefore costs a VM exit whenever it is the first since the last
// exit, and the per-breakpoint cost here includes that share; on bare
// metal a MOV to DR7 is a serialising instruction, tens of cycles.
const (
	switchQuickTrips   = 3000  // round trips per batch, quick form
	switchFullTrips    = 10000 // full form
	switchQuickBatches = 11    // batch pairs (anchor, subject), quick form
	switchFullBatches  = 41    // full form
)

// Switch backends.
const (
	SwitchPerf      = "perf"      // perf_event_open task breakpoints
	SwitchPtrace    = "ptrace"    // DR0-DR3 and DR7 written through ptrace
	SwitchPerfBench = "perfbench" // `perf bench sched pipe`, the anchor
)

// SwitchParams is one case of the switch experiment.
type SwitchParams struct {
	Backend     string // SwitchPerf or SwitchPtrace
	Breakpoints int    // per debugged thread, 0-4
	ThreadsWith int    // threads carrying them: 1 or 2 (0 when Breakpoints = 0)
	Trips       int    // round trips per batch
	Batches     int    // batch pairs
	CPU         int    // the CPU both ping-pong threads are pinned to
}

// Validate names the first bad field, wrapping ErrInvalidParam.
func (p SwitchParams) Validate() error {
	switch {
	case p.Backend != SwitchPerf && p.Backend != SwitchPtrace:
		return fmt.Errorf("%w: SwitchParams.Backend = %q, want %q or %q", ErrInvalidParam, p.Backend, SwitchPerf, SwitchPtrace)
	case p.Breakpoints < 0 || p.Breakpoints > hwregs.NumSlots:
		return fmt.Errorf("%w: SwitchParams.Breakpoints = %d, want 0..%d", ErrInvalidParam, p.Breakpoints, hwregs.NumSlots)
	case p.Breakpoints == 0 && p.ThreadsWith != 0:
		return fmt.Errorf("%w: SwitchParams.ThreadsWith = %d with no breakpoints, want 0", ErrInvalidParam, p.ThreadsWith)
	case p.Breakpoints > 0 && (p.ThreadsWith < 1 || p.ThreadsWith > 2):
		return fmt.Errorf("%w: SwitchParams.ThreadsWith = %d, want 1 or 2", ErrInvalidParam, p.ThreadsWith)
	case p.Trips < 1:
		return fmt.Errorf("%w: SwitchParams.Trips = %d, want >= 1", ErrInvalidParam, p.Trips)
	case p.Batches < 1:
		return fmt.Errorf("%w: SwitchParams.Batches = %d, want >= 1", ErrInvalidParam, p.Batches)
	case p.CPU < 0 || p.CPU >= runtime.NumCPU():
		return fmt.Errorf("%w: SwitchParams.CPU = %d out of range [0, %d)", ErrInvalidParam, p.CPU, runtime.NumCPU())
	}
	return nil
}

// Name is the case's benchmark name without "Benchmark".
func (p SwitchParams) Name() string {
	return fmt.Sprintf("Switch/backend=%s/breakpoints=%d/threads-with=%d", p.Backend, p.Breakpoints, p.ThreadsWith)
}

// pingPong is a two-thread tracee whose threads are pinned to one CPU,
// with the breakpoints it was armed with.
type pingPong struct {
	p      *hwregs.Ptrace
	events []*hwregs.PerfEvent
}

// startPingPong starts a two-thread tracee, its tracer thread pinned to
// tracerCPU (or hwregs.NoPin) and both workers to cpu.
func startPingPong(cpu, tracerCPU int) (*pingPong, error) {
	p, err := startPtrace(hwregs.PtraceOptions{Threads: 2, CPU: tracerCPU})
	if err != nil {
		return nil, err
	}
	var set unix.CPUSet
	set.Set(cpu)
	for _, tid := range p.Tids() {
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			p.Close()
			return nil, fmt.Errorf("bench: pin tracee thread %d to CPU %d: %w", tid, cpu, err)
		}
	}
	return &pingPong{p: p}, nil
}

// switchAttr is breakpoint v of worker i: a write watch on one of the
// worker's watched variables, which OpPingPong never touches.
func switchAttr(h *tracee.Hello, i, v int) hwregs.Attr {
	return hwregs.Attr{Addr: h.VarAddr(i, v), Len: 8, Type: hwregs.Write}
}

// arm gives each of the first threads workers nbp breakpoints through
// backend; the workers must be parked.
func (pp *pingPong) arm(backend string, nbp, threads int) error {
	h := pp.p.Hello()
	switch backend {
	case SwitchPerf:
		for i := 0; i < threads; i++ {
			for v := 0; v < nbp; v++ {
				e, err := hwregs.OpenPerf(switchAttr(h, i, v), h.Tids[i], -1)
				if err != nil {
					return skipIfUnsupported(fmt.Errorf("bench: switch: breakpoint %d on thread %d: %w", v, i, err))
				}
				pp.events = append(pp.events, e)
			}
		}
		return nil
	case SwitchPtrace:
		var err error
		derr := pp.p.Do(func() {
			for i := 0; i < threads && err == nil; i++ {
				t := hwregs.Target{Task: i}
				var dr7 hwregs.DR7
				for v := 0; v < nbp && err == nil; v++ {
					a := switchAttr(h, i, v)
					err = pp.p.WriteDR(t, hwregs.RegDR0+v, a.Addr)
					dr7 = dr7.WithSlot(v, a)
				}
				if err == nil && nbp > 0 {
					err = pp.p.WriteDR(t, hwregs.RegDR7, uint64(dr7))
				}
			}
		})
		if derr != nil {
			return derr
		}
		if err != nil {
			return fmt.Errorf("bench: switch: ptrace breakpoints: %w", err)
		}
		return nil
	}
	return fmt.Errorf("%w: switch backend %q", ErrInvalidParam, backend)
}

// trips runs n round trips and returns µs per round trip, timed from the
// tracer: resuming and parking the two workers is a few tens of µs, spread
// over thousands of round trips.
func (pp *pingPong) trips(n int) (float64, error) {
	start := time.Now()
	res, err := pp.p.Run(tracee.Command{Op: tracee.OpPingPong, Count: uint64(n)})
	el := time.Since(start)
	if err != nil {
		return 0, err
	}
	for i, ops := range res.Ops {
		if ops != uint64(n) {
			return 0, fmt.Errorf("bench: switch: worker %d made %d round trips, want %d", i, ops, n)
		}
	}
	return float64(el.Nanoseconds()) / 1e3 / float64(n), nil
}

// close closes the breakpoints and kills and reaps the tracee.
func (pp *pingPong) close() {
	for _, e := range pp.events {
		e.Close()
	}
	pp.events = nil
	pp.p.Close()
}

// SwitchRun is what one switch case measured: per batch, µs per round
// trip of the armed tracee and of the breakpoint-free anchor, taken
// alternately in the same run.
type SwitchRun struct {
	Usecs, AnchorUsecs []float64
}

// Slowdowns returns, per batch pair, the armed figure over the anchor's.
func (r SwitchRun) Slowdowns() []float64 {
	out := make([]float64, len(r.Usecs))
	for i := range out {
		out[i] = r.Usecs[i] / r.AnchorUsecs[i]
	}
	return out
}

// RunSwitch measures p. The caller holds kernlock (the breakpoints are
// real). Both tracees are killed and reaped before it returns.
func RunSwitch(ctx context.Context, p SwitchParams, t Timer) (SwitchRun, error) {
	if err := p.Validate(); err != nil {
		return SwitchRun{}, err
	}
	if p.Backend == SwitchPerf {
		if err := perfSupported(); err != nil {
			return SwitchRun{}, err
		}
	}
	tc := switchTracerCPU(p.CPU)
	anchor, err := startPingPong(p.CPU, tc)
	if err != nil {
		return SwitchRun{}, err
	}
	defer anchor.close()
	subj, err := startPingPong(p.CPU, tc)
	if err != nil {
		return SwitchRun{}, err
	}
	defer subj.close()
	if err := subj.arm(p.Backend, p.Breakpoints, p.ThreadsWith); err != nil {
		return SwitchRun{}, err
	}
	// Warm up both (page faults, the futex hash, the scheduler's view of
	// the pair) before anything is kept.
	for _, pp := range []*pingPong{anchor, subj} {
		if _, err := pp.trips(max(1, p.Trips/4)); err != nil {
			return SwitchRun{}, err
		}
	}
	var r SwitchRun
	for b := 0; b < p.Batches; b++ {
		if err := ctx.Err(); err != nil {
			return SwitchRun{}, err
		}
		// Alternate which goes first so neither always follows the other.
		var u, a float64
		if b%2 == 0 {
			if a, err = anchor.trips(p.Trips); err == nil {
				t.StartTimer()
				u, err = subj.trips(p.Trips)
				t.StopTimer()
			}
		} else {
			t.StartTimer()
			u, err = subj.trips(p.Trips)
			t.StopTimer()
			if err == nil {
				a, err = anchor.trips(p.Trips)
			}
		}
		if err != nil {
			return SwitchRun{}, err
		}
		r.Usecs = append(r.Usecs, u)
		r.AnchorUsecs = append(r.AnchorUsecs, a)
	}
	return r, nil
}

// switchTracerCPU keeps the tracer threads off the ping-pong's CPU when
// there is another one; they only wait while the workers run.
func switchTracerCPU(cpu int) int {
	if n := runtime.NumCPU(); n > 1 {
		return (cpu + 1) % n
	}
	return hwregs.NoPin
}

func switchCases(o Options) ([]Case, error) {
	if err := checkOptions("switch", o); err != nil {
		return nil, err
	}
	trips, batches := switchQuickTrips, switchQuickBatches
	if o.Full {
		trips, batches = switchFullTrips, switchFullBatches
	}
	var cs []Case
	cs = append(cs, perfBenchSchedCase(o, trips, batches))
	for _, be := range []string{SwitchPerf, SwitchPtrace} {
		ps := []SwitchParams{{Backend: be}}
		for _, b := range []int{1, 2, 4} {
			for _, tw := range []int{1, 2} {
				ps = append(ps, SwitchParams{Backend: be, Breakpoints: b, ThreadsWith: tw})
			}
		}
		for _, p := range ps {
			p.Trips, p.Batches, p.CPU = trips, batches, o.PinCPU
			cs = append(cs, switchCase(p, o))
		}
	}
	return cs, nil
}

var switchExperiment = Experiment{Name: "switch", Cases: switchCases,
	Question: "What do task breakpoints cost at a context switch on the running kernel, set through perf_event_open or ptrace on one or both threads of a ping-pong pinned to one CPU?"}

// switchCase measures p; n > 0 sets the total round trips of the armed
// tracee (spread over p.Batches batches).
func switchCase(p SwitchParams, o Options) Case {
	return Case{
		Name:     p.Name(),
		Estimate: time.Duration(2*p.Trips*p.Batches)*8*time.Microsecond + 200*time.Millisecond,
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			t.StopTimer()
			p := p
			if n > 0 {
				p.Trips = max(1, int(n)/p.Batches)
			}
			var run SwitchRun
			res, err := underKernlock(func() (Result, error) {
				var err error
				run, err = RunSwitch(ctx, p, t)
				return Result{}, err
			})
			if err != nil {
				return res, err
			}
			return switchResult(p, o, run), nil
		},
	}
}

func switchResult(p SwitchParams, o Options, run SwitchRun) Result {
	// slowdown is the median of the per-pair ratios: the two batches of a
	// pair ran back to back, so a burst of load on this shared machine
	// lands on both and mostly cancels.
	u, a := stats.Median(run.Usecs), stats.Median(run.AnchorUsecs)
	slow := run.Slowdowns()
	sd := stats.Median(slow)
	ns := make([]float64, len(run.Usecs))
	for i, v := range run.Usecs {
		ns[i] = v * 1e3
	}
	sc := harness.Scenario{Experiment: "switch", Backend: p.Backend, Slots: hwregs.NumSlots, Workers: 2,
		Ops: int64(p.Trips * p.Batches), Seed: o.Seed, PinCPU: p.CPU}
	return Result{
		Experiment: "switch",
		Name:       p.Name(),
		Params: commonParams(sc, "breakpoints", strconv.Itoa(p.Breakpoints), "threads-with", strconv.Itoa(p.ThreadsWith),
			"trips", strconv.Itoa(p.Trips), "batches", strconv.Itoa(p.Batches), "op", "round trip (2 context switches)"),
		Iterations: int64(p.Trips * p.Batches),
		NsPerOp:    u * 1e3,
		Metrics: map[string]float64{
			MetricUsecs:    u,
			MetricB0Usecs:  a,
			MetricSlowdown: sd,
		},
		Batches: map[string][]float64{
			"ns/op":        ns,
			MetricUsecs:    run.Usecs,
			MetricB0Usecs:  run.AnchorUsecs,
			MetricSlowdown: slow,
		},
	}
}

// perfBenchSchedCase runs `taskset -c CPU perf bench sched pipe -l trips`
// (two processes, so every switch also changes address space), the same
// with -T (two threads of one process) and the Go ping-pong without
// breakpoints (two threads of one process, through a futex, not pipes),
// alternately, batches times: the two perf bench forms tell how much of
// its round trip is the address-space switch, and the -T form is the one
// shaped like the Go ping-pong.
func perfBenchSchedCase(o Options, trips, batches int) Case {
	const name = "Switch/backend=perfbench/breakpoints=0/threads-with=0"
	return Case{
		Name:     name,
		Estimate: time.Duration(3*trips*batches)*8*time.Microsecond + 400*time.Millisecond,
		Run: func(ctx context.Context, n int64, t Timer) (Result, error) {
			t.StopTimer()
			if n > 0 {
				trips = max(1, int(n)/batches)
			}
			perf, err := exec.LookPath("perf")
			if err != nil {
				return Result{}, Skipf("perf is not installed")
			}
			taskset, err := exec.LookPath("taskset")
			if err != nil {
				return Result{}, Skipf("taskset is not installed: perf bench cannot be pinned")
			}
			pp, err := startPingPong(o.PinCPU, switchTracerCPU(o.PinCPU))
			if err != nil {
				return Result{}, err
			}
			defer pp.close()
			if _, err := pp.trips(max(1, trips/4)); err != nil {
				return Result{}, err
			}
			var pu, tu, gu []float64
			for b := 0; b < batches; b++ {
				if err := ctx.Err(); err != nil {
					return Result{}, err
				}
				t.StartTimer()
				u, err := runPerfBenchSched(ctx, perf, taskset, o.PinCPU, trips, false)
				t.StopTimer()
				if err != nil {
					return Result{}, err
				}
				th, err := runPerfBenchSched(ctx, perf, taskset, o.PinCPU, trips, true)
				if err != nil {
					return Result{}, err
				}
				g, err := pp.trips(trips)
				if err != nil {
					return Result{}, err
				}
				pu, tu, gu = append(pu, u), append(tu, th), append(gu, g)
			}
			ns := make([]float64, len(pu))
			goPerProc, goPerThr, procPerThr := make([]float64, len(pu)), make([]float64, len(pu)), make([]float64, len(pu))
			for i := range pu {
				ns[i] = pu[i] * 1e3
				goPerProc[i], goPerThr[i], procPerThr[i] = gu[i]/pu[i], gu[i]/tu[i], pu[i]/tu[i]
			}
			u := stats.Median(pu)
			sc := harness.Scenario{Experiment: "switch", Backend: SwitchPerfBench, Workers: 2, Ops: int64(trips * batches), Seed: o.Seed, PinCPU: o.PinCPU}
			params := commonParams(sc, "breakpoints", "0", "threads-with", "0", "trips", strconv.Itoa(trips),
				"batches", strconv.Itoa(batches), "op", "round trip (2 context switches)",
				"command", fmt.Sprintf("taskset -c %d perf bench sched pipe -l %d", o.PinCPU, trips),
				"command-threads", fmt.Sprintf("taskset -c %d perf bench sched pipe -T -l %d", o.PinCPU, trips))
			if v := perfVersion(); v != "" {
				params["perf"] = v
			}
			return Result{
				Experiment: "switch",
				Name:       name,
				Params:     params,
				Iterations: int64(trips * batches),
				NsPerOp:    u * 1e3,
				Metrics: map[string]float64{
					MetricUsecs: u, MetricThreadsUsecs: stats.Median(tu), MetricGoUsecs: stats.Median(gu),
					MetricGoPerPerfBench: stats.Median(goPerProc), MetricGoPerPerfBenchThreads: stats.Median(goPerThr),
					MetricProcessesPerThreads: stats.Median(procPerThr),
				},
				Batches: map[string][]float64{
					"ns/op": ns, MetricUsecs: pu, MetricThreadsUsecs: tu, MetricGoUsecs: gu,
					MetricGoPerPerfBench: goPerProc, MetricGoPerPerfBenchThreads: goPerThr, MetricProcessesPerThreads: procPerThr,
				},
			}, nil
		},
	}
}

// runPerfBenchSched runs `taskset -c cpu perf bench sched pipe -l loops`,
// with -T when threads is set, and returns its usecs/op (one op is a
// round trip through two pipes).
func runPerfBenchSched(ctx context.Context, perf, taskset string, cpu, loops int, threads bool) (float64, error) {
	args := []string{"-c", strconv.Itoa(cpu), perf, "bench", "sched", "pipe", "-l", strconv.Itoa(loops)}
	if threads {
		args = append(args, "-T")
	}
	out, err := outputOf(exec.CommandContext(ctx, taskset, args...))
	if err != nil {
		return 0, fmt.Errorf("bench: taskset %s: %w", strings.Join(args, " "), err)
	}
	return parsePerfUsecs(out)
}
