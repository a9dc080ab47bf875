package alloc

import (
	"sync"
	"sync/atomic"
)

// cpuInfo is the kernel's per-CPU bp_cpuinfo plus the CPU-bound register
// indexes the model hands out.
type cpuInfo struct {
	pinned atomic.Int32 // CPU-bound breakpoints (bp_cpuinfo::cpu_pinned)
	tsk    histogram    // tasks with one-CPU breakpoints, by pinned_t(c)
	mask   uint32       // register indexes of CPU-bound breakpoints
	gen    gens
	_      [64]byte // keeps CPUs off each other's cache lines
}

// ledger is the 6.x constraint table of one pool, shared by the mutex,
// percpu and linux strategies, which differ only in how they lock it: the
// per-CPU infos, the global histograms of CPU-bound (cpuPinned) and of
// CPU-independent task (tskAll) slots. A task holding only all-CPU
// breakpoints is counted once in tskAll; a task with one-CPU breakpoints is
// counted in every CPU's tsk histogram instead, exactly as toggle_bp_slot
// does, so CPU-bound admission is an O(pool size) histogram scan whatever the
// number of tasks.
type ledger struct {
	n, cpus   int
	cpu       []cpuInfo
	cpuPinned histogram // the global cpu_pinned histogram, if kept
	tskAll    histogram
	// keepCPUHist is false for percpu, whose CPU-bound reservations must
	// not write shared state; its all-CPU task check scans the CPUs instead.
	keepCPUHist bool
	errs        *errTable // shared by the Config's pools
}

func newLedger(n, cpus int, keepCPUHist bool, errs *errTable) *ledger {
	return &ledger{n: n, cpus: cpus, cpu: make([]cpuInfo, cpus), keepCPUHist: keepCPUHist, errs: errs}
}

// fitsCPU applies the CPU-bound rule on c: cpu_pinned[c] + max_t pinned_t(c) + 1 <= N.
func (l *ledger) fitsCPU(c int) bool {
	info := &l.cpu[c]
	return admits(int(info.pinned.Load()), maxMerge(&info.tsk, &l.tskAll, l.n), l.n)
}

// fitsTask applies the task rule for a breakpoint of t on cpu, with t not
// yet holding it.
func (l *ledger) fitsTask(t *taskPool, cpu int) bool {
	if cpu != AnyCPU {
		return admits(int(l.cpu[cpu].pinned.Load()), t.pinned(cpu), l.n)
	}
	if t.onCPU == 0 && l.keepCPUHist {
		// max_bp_pinned_slots' fast path: pinned_t is the same on every
		// CPU, so only the busiest CPU's CPU-bound count matters.
		return admits(l.cpuPinned.max(l.n), t.all, l.n)
	}
	for c := range l.cpu {
		if !admits(int(l.cpu[c].pinned.Load()), t.pinned(c), l.n) {
			return false
		}
	}
	return true
}

// holdCPU records a CPU-bound breakpoint on c (already admitted).
func (l *ledger) holdCPU(c int) (raw int, gen uint32) {
	info := &l.cpu[c]
	raw = lowestFree(info.mask, l.n)
	info.mask |= 1 << raw
	if l.keepCPUHist {
		l.cpuPinned.add(int(info.pinned.Load()), 1)
	}
	info.pinned.Add(1)
	return raw, info.gen.take(raw)
}

// dropCPU removes a CPU-bound breakpoint if gen holds it.
func (l *ledger) dropCPU(c, raw int, gen uint32) bool {
	info := &l.cpu[c]
	if !info.gen.give(raw, gen) {
		return false
	}
	info.mask &^= 1 << raw
	if l.keepCPUHist {
		l.cpuPinned.add(int(info.pinned.Load()), -1)
	}
	info.pinned.Add(-1)
	return true
}

// toggleTask moves t's histogram entries for gaining (enable) or losing a
// breakpoint on cpu; t must exclude that breakpoint (call it before hold
// on enable, after drop on disable). It is toggle_bp_slot's four cases.
func (l *ledger) toggleTask(t *taskPool, cpu int, enable bool) {
	w := 1
	if !enable {
		w = -1
	}
	if t.onCPU == 0 {
		switch {
		case cpu == AnyCPU: // case 1: only the CPU-independent histogram
			old := t.all
			if !enable {
				old++
			}
			l.tskAll.add(old, w)
		case enable: // case 2.a: the task becomes CPU-dependent
			for c := range l.cpu {
				l.cpu[c].tsk.add(0, t.all)
			}
			l.cpu[cpu].tsk.add(t.all, 1)
			l.tskAll.add(t.all, -t.all)
		default: // case 2.b: its last one-CPU breakpoint goes
			l.cpu[cpu].tsk.add(t.all+1, -1)
			for c := range l.cpu {
				l.cpu[c].tsk.add(t.all, -t.all)
			}
			l.tskAll.add(0, t.all)
		}
		return
	}
	// Case 3: only the per-CPU histograms of the CPUs the breakpoint covers.
	lo, hi := cpu, cpu+1
	if cpu == AnyCPU {
		lo, hi = 0, l.cpus
	}
	for c := lo; c < hi; c++ {
		next := t.pinned(c)
		if !enable {
			next++
		}
		l.cpu[c].tsk.add(next, w)
	}
}

// used is hw_breakpoint_is_used for this pool.
func (l *ledger) used() bool {
	for c := range l.cpu {
		if l.cpu[c].pinned.Load() != 0 || l.cpu[c].tsk.used() {
			return true
		}
	}
	return l.tskAll.used() || l.cpuPinned.used()
}

// taskRec is one task's record in a task table (the kernel's task_bps_ht
// entries plus task_struct::perf_event_mutex).
type taskRec struct {
	mu    sync.Mutex // used by percpu and linux; mutex relies on its global lock
	pools [numKinds]taskPool
}

// ledgers holds one ledger per pool of a Config.
type ledgers [numKinds]*ledger

func newLedgers(cfg Config, keepCPUHist bool) ledgers {
	var ls ledgers
	errs := newErrTable(cfg)
	ls[Data] = newLedger(cfg.Slots, cfg.CPUs, keepCPUHist, &errs)
	if cfg.InstSlots > 0 {
		ls[Inst] = newLedger(cfg.InstSlots, cfg.CPUs, keepCPUHist, &errs)
	}
	return ls
}

// forRelease checks s against cfg (checkRelease) and returns the ledger
// of its pool.
func (ls *ledgers) forRelease(cfg Config, s Slot) (*ledger, error) {
	if err := cfg.checkRelease(s); err != nil {
		return nil, err
	}
	return ls[cfg.poolIndex(s.req.Kind)], nil
}

func (ls *ledgers) used() bool {
	for _, l := range ls {
		if l != nil && l.used() {
			return true
		}
	}
	return false
}

// reserveLocked runs the whole reservation on ledgers whose locks the
// caller holds, with t the task's record (nil for CPU-bound).
func reserveLocked(cfg Config, l *ledger, t *taskPool, r Request) (Slot, error) {
	if t == nil {
		if !l.fitsCPU(r.CPU) {
			return Slot{}, l.errs.noSlot(r)
		}
		raw, gen := l.holdCPU(r.CPU)
		return NewSlot(r, raw, gen), nil
	}
	if !l.fitsTask(t, r.CPU) {
		return Slot{}, l.errs.noSlot(r)
	}
	raw := t.pick(r.CPU, l.n)
	l.toggleTask(t, r.CPU, true)
	return NewSlot(r, raw, t.hold(r.CPU, raw, cfg.CPUs)), nil
}

// releaseLocked is reserveLocked's inverse.
func releaseLocked(l *ledger, t *taskPool, s Slot) error {
	r := s.req
	if t == nil {
		if r.IsCPUBound() && l.dropCPU(r.CPU, int(s.index), s.gen) {
			return nil
		}
		return l.errs.stale(r)
	}
	if !t.drop(r.CPU, int(s.index), s.gen) {
		return l.errs.stale(r)
	}
	l.toggleTask(t, r.CPU, false)
	return nil
}
