package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"bpbench/alloc"
	"bpbench/bench/harness"
	"bpbench/hwregs"
)

// The ptrace-race experiment is the race experiment with real registers: a
// model strategy does admission, as in a debugger that keeps its own slot
// table, and every register write of the holder goes to thread 0 of a real
// tracee through PTRACE_POKEUSER, from a tracer thread pinned to
// Options.PinCPU. Competitors reserve CPU-bound slots on the same model
// allocator, holding each for raceSimHold. The holder's changes take the
// real ptrace time, so competitors run many more attempts per change than
// in the model-only race.

func ptraceRaceCases(o Options) ([]Case, error) {
	if err := checkOptions("ptrace-race", o); err != nil {
		return nil, err
	}
	return raceCasesOn("ptrace", strategiesOf(o), o, 30*time.Millisecond, true, runRacePtrace), nil
}

var ptraceRaceExperiment = Experiment{Name: "ptrace-race", Cases: ptraceRaceCases,
	Question: "With every register write going to a real tracee through ptrace, does re-registering still lose the slot to competitors, and does modify-in-place never lose it?"}

// runRacePtrace runs one ptrace-race case; the caller holds the kernlock.
// The holder is tracee thread 0 with four breakpoints on four of its
// variables, the changing one alternating between its fourth variable and
// a shared one. Window and recovery are timed as in the model race
// (windowAlloc): from the model release to the next admitted reservation,
// which in Writer.Reregister falls between the DR7 write that disables the
// slot and the DR writes that arm the new one, so the window holds no
// poke. The time the breakpoint is really unarmed in the tracee, from
// before the disarming DR7 poke to after the last arming poke (recovery
// after a steal included), is unarmed-ns/p50|p99 (writerChange); modify,
// a single DR poke, reports 0. The competitors are pinned as s.place says,
// against the tracer thread (the holder) on o.PinCPU. hooks (tests only)
// put competitors into windows deterministically, as in runRaceSim.
func runRacePtrace(ctx context.Context, s raceSpec, o Options, n int64, t Timer, hooks raceHooks) (res Result, err error) {
	t.StopTimer()
	if err := s.validate(); err != nil {
		return Result{}, err
	}
	budget := pickBudget(o, raceBudgetRealQuick, raceBudgetRealFull)
	p, err := startPtrace(hwregs.PtraceOptions{Threads: 1, CPU: o.PinCPU})
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if cerr := p.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("bench: %s: %w", s.name(), err)
		}
	}()
	cpus := max(runtime.NumCPU(), o.PinCPU+1, 2)
	cfg := alloc.X86(cpus)
	inner, err := alloc.New(s.strategy, cfg)
	if err != nil {
		return Result{}, err
	}
	st := newRaceStats()
	wa := &windowAlloc{Allocator: inner, cfg: cfg, task: 0, window: st.window, exposure: st.exposure}
	w := hwregs.NewWriter(wa, p, hwregs.WriteChanged)
	h := p.Hello()
	holder := alloc.Request{Task: 0, CPU: alloc.AnyCPU, Kind: alloc.Data}
	attr := func(addr uint64) hwregs.Attr { return hwregs.Attr{Addr: addr, Len: 8, Type: hwregs.Write} }
	attrs := [2]hwregs.Attr{attr(h.SharedVarAddr(0)), attr(h.VarAddr(0, 3))}
	var bps [hwregs.NumSlots]hwregs.Breakpoint
	spurious := spuriousSince(inner)
	compReq := alloc.Request{Task: alloc.NoTask, CPU: o.PinCPU, Kind: alloc.Data}
	setup, halt := hooks.competitors(wa, inner, compReq, st)
	defer halt()
	defer raceProcs(s.competitors)()
	var comp *harness.Competitors
	var loopErr, compErr error
	derr := p.Do(func() {
		for i := range bps {
			if bps[i], loopErr = w.Register(holder, attr(h.VarAddr(0, i))); loopErr != nil {
				loopErr = fmt.Errorf("holder breakpoint %d: %w", i, loopErr)
				return
			}
		}
		comp = startCompetitors(ctx, s, s.competitorCPU(o.PinCPU), setup)
		loopErr = runChanges(ctx, t, n, budget, 64, st, writerChange(ctx, s, w, &bps[3], holder, &attrs, st))
		halt()
		compErr = stopCompetitors(comp, st)
		if err := unregisterAll(w, bps[:]); loopErr == nil {
			loopErr = err
		}
	})
	if err := errors.Join(derr, loopErr, compErr); err != nil {
		return Result{}, err
	}
	if inner.InUse() {
		return Result{}, fmt.Errorf("model allocator still holds a slot after teardown")
	}
	spurious(st)
	res = st.result(s, o, cpus, map[string]string{
		"policy": hwregs.PolicyName(hwregs.WriteChanged), "competitor_hold": raceSimHold.String(), "admission": "model", "registers": "ptrace"})
	res.Experiment = "ptrace-race"
	return res, nil
}

// stealEveryNth makes a competitor reserve compReq inside every nth
// window of wa's holder and hold it until the holder's reservation has
// been refused once, so that tests know the exact steal count. The
// returned function, called on the holder's goroutine once its changes are
// done, releases a reservation still held and stops stealing, so that the
// teardown's releases are not windows.
func stealEveryNth(wa *windowAlloc, inner alloc.Allocator, compReq alloc.Request, st *raceStats, n int) func() {
	var held alloc.Slot
	windows, stopped := 0, false
	wa.onRelease = func() {
		if windows++; stopped || windows%n != 0 {
			return
		}
		st.compAttempts++
		if sl, err := inner.Reserve(compReq); err == nil {
			held = sl
			st.compWins++
		}
	}
	wa.onRefused = func() {
		if held.Valid() {
			inner.Release(held)
			held = alloc.Slot{}
		}
	}
	release := wa.onRefused
	return func() { release(); stopped = true }
}
