package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"bpbench/alloc"
	"bpbench/hwregs"
	"bpbench/internal/cpupin"
)

// raceAddrs are the model's watched addresses: the holder's four
// breakpoints watch the first four, and the changing one alternates
// between the fourth and the fifth.
var raceAddrs = [...]uint64{0x10000, 0x10008, 0x10010, 0x10018, 0x10020}

// runRaceSim runs one model case. The holder is the calling goroutine,
// pinned to opts.PinCPU; the competitors are pinned as s.place says.
// hooks (tests only) put competitors into windows deterministically.
func runRaceSim(ctx context.Context, s raceSpec, opts Options, n int64, t Timer, hooks raceHooks) (Result, error) {
	t.StopTimer()
	if err := s.validate(); err != nil {
		return Result{}, err
	}
	budget := pickBudget(opts, raceBudgetSimQuick, raceBudgetSimFull)
	cpus := max(runtime.NumCPU(), opts.PinCPU+1, 2)
	cfg := alloc.X86(cpus)
	inner, err := alloc.New(s.strategy, cfg)
	if err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	unpin, err := cpupin.Pin(opts.PinCPU)
	if err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	defer unpin()
	defer raceProcs(s.competitors)()
	st := newRaceStats()
	wa := &windowAlloc{Allocator: inner, cfg: cfg, task: raceHolderTask, window: st.window, exposure: st.exposure}
	compReq := alloc.Request{Task: alloc.NoTask, CPU: opts.PinCPU, Kind: alloc.Data}
	setup, halt := hooks.competitors(wa, inner, compReq, st)
	defer halt()
	w := hwregs.NewWriter(wa, hwregs.NewSim(), hwregs.WriteChanged)
	holder := alloc.Request{Task: raceHolderTask, CPU: alloc.AnyCPU, Kind: alloc.Data}
	var bps [hwregs.NumSlots]hwregs.Breakpoint
	for i := range bps {
		if bps[i], err = w.Register(holder, hwregs.Attr{Addr: raceAddrs[i], Len: 8, Type: hwregs.Write}); err != nil {
			return Result{}, fmt.Errorf("bench: race %s: holder breakpoint %d: %w", s.name(), i, err)
		}
	}
	attrs := [2]hwregs.Attr{
		{Addr: raceAddrs[4], Len: 8, Type: hwregs.Write},
		{Addr: raceAddrs[3], Len: 8, Type: hwregs.Write},
	}
	spurious := spuriousSince(inner)
	comp := startCompetitors(ctx, s, s.competitorCPU(opts.PinCPU), setup)
	loopErr := runChanges(ctx, t, n, budget, 1024, st, writerChange(ctx, s, w, &bps[3], holder, &attrs, st))
	halt()
	compErr := stopCompetitors(comp, st)
	spurious(st)
	if err := unregisterAll(w, bps[:]); loopErr == nil {
		loopErr = err
	}
	if err := errors.Join(loopErr, compErr); err != nil {
		return Result{}, fmt.Errorf("bench: race %s: %w", s.name(), err)
	}
	return st.result(s, opts, cpus, map[string]string{"policy": hwregs.PolicyName(hwregs.WriteChanged), "competitor_hold": raceSimHold.String()}), nil
}
