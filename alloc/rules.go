package alloc

import (
	"fmt"
	"math/bits"
	"sync/atomic"
)

// admits is the one admission rule every strategy applies, on every CPU a
// breakpoint can run on: the CPU-bound slots there, the task-side term and
// the new breakpoint itself must fit in the pool (kernel/events/hw_breakpoint.c,
// max_bp_pinned_slots and __reserve_bp_slot: "max_pinned_slots > slots" is
// -ENOSPC). The task-side term is max over tasks of pinned_t(c) for a
// CPU-bound request and the requesting task's own pinned_t(c) for a task
// request; another task never counts against a task request.
func admits(cpuPinned, taskPinned, n int) bool {
	return cpuPinned+taskPinned+1 <= n
}

// lowestFree returns the lowest register index below n whose bit is clear in
// used, or -1 when all n are taken. Lowest first keeps indexes the same on
// every strategy, which the differential test relies on.
func lowestFree(used uint32, n int) int {
	free := ^used & (uint32(1)<<n - 1)
	if free == 0 {
		return -1
	}
	return bits.TrailingZeros32(free)
}

// overflowRaw encodes overflow position pos (a NoIndex slot) as a raw index;
// raw indexes >= 0 are real registers.
func overflowRaw(pos int) int { return -1 - pos }

// overflowPos is the inverse of overflowRaw.
func overflowPos(raw int) int { return -1 - raw }

// poolIndex returns the array index of a request's pool.
func (c Config) poolIndex(k Kind) int { return int(c.Pool(k)) }

// requestOK is ValidateRequest's verdict without building an error, small
// enough to inline on the hot paths.
func (c Config) requestOK(r Request) bool {
	return r.Kind < numKinds && r.Task >= NoTask && r.CPU >= AnyCPU && r.CPU < c.CPUs &&
		(r.Task != NoTask || r.CPU != AnyCPU)
}

// validate is ValidateRequest with the common, valid case inlined.
func (c Config) validate(r Request) error {
	if c.requestOK(r) {
		return nil
	}
	return c.ValidateRequest(r)
}

// checkRelease rejects slots that cannot belong to any allocator for c: the
// zero Slot, or a slot whose request or index is out of range. A slot that
// could be ours but is not held is the strategy's call (ErrNotReserved).
func (c Config) checkRelease(s Slot) error {
	if !s.Valid() {
		return fmt.Errorf("release of the zero Slot: %w", ErrNotReserved)
	}
	if !c.requestOK(s.req) {
		return fmt.Errorf("release of %v: %w", s.req, ErrNotReserved)
	}
	raw, n := int(s.index), c.PoolSize(s.req.Kind)
	if raw >= n || (raw < 0 && (s.req.IsCPUBound() || s.req.CPU != AnyCPU || overflowPos(raw) >= MaxSlots)) {
		return fmt.Errorf("release of %v index %d: %w", s.req, raw, ErrNotReserved)
	}
	return nil
}

// errNoSlot builds the refusal every strategy returns.
func errNoSlot(r Request) error {
	return fmt.Errorf("%v: %w", r, ErrNoSlot)
}

// errStale builds the error for a release of a slot not currently held.
func errStale(s Slot) error {
	return fmt.Errorf("release of %v index %d gen %d: %w", s.req, s.index, s.gen, ErrNotReserved)
}

// histogram is the kernel's bp_slots_histogram: count[k] is the number of
// targets holding k+1 slots, so its maximum is found in O(pool size)
// whatever the number of targets. Counts are atomic because the linux
// strategy updates them under a shared (read) lock, as the kernel does.
type histogram struct {
	count [MaxSlots]atomic.Int32
}

// add moves one target from holding old slots to old+delta
// (bp_slots_histogram_add). Unlike the kernel, which only scans under the
// write lock, it increments the new bucket before decrementing the old one,
// so a concurrent lock-free scan (cas) never misses the target.
func (h *histogram) add(old, delta int) {
	if nw := old + delta; nw > 0 {
		h.count[nw-1].Add(1)
	}
	if old > 0 {
		h.count[old-1].Add(-1)
	}
}

// max returns the largest number of slots any target holds
// (bp_slots_histogram_max).
func (h *histogram) max(n int) int {
	for i := n - 1; i >= 0; i-- {
		if h.count[i].Load() > 0 {
			return i + 1
		}
	}
	return 0
}

// maxMerge returns the largest count held in either histogram
// (bp_slots_histogram_max_merge).
func maxMerge(a, b *histogram, n int) int {
	for i := n - 1; i >= 0; i-- {
		if a.count[i].Load()+b.count[i].Load() > 0 {
			return i + 1
		}
	}
	return 0
}

// used reports whether any target holds a slot.
func (h *histogram) used() bool {
	for i := range h.count {
		if h.count[i].Load() != 0 {
			return true
		}
	}
	return false
}

// gens holds one generation counter per register index: even means free,
// odd means held, and the odd value is the holder's Slot.Gen, so a stale or
// double release never matches. Callers synchronise access.
type gens [MaxSlots]uint32

// take marks index i held and returns its generation.
func (g *gens) take(i int) uint32 {
	g[i]++
	return g[i]
}

// give frees index i if gen is its current holder.
func (g *gens) give(i int, gen uint32) bool {
	if g[i] != gen || gen&1 == 0 {
		return false
	}
	g[i]++
	return true
}

// cpuPart is one task's one-CPU breakpoints on one CPU.
type cpuPart struct {
	n    int    // how many
	mask uint32 // their register indexes
	gen  gens
}

// taskPool is one task's breakpoints in one pool, as the lock-based
// strategies keep it (the kernel's task_bps_ht entries for the task).
type taskPool struct {
	all     int    // breakpoints on every CPU, NoIndex ones included
	allMask uint32 // register indexes of all-CPU breakpoints
	ovMask  uint32 // overflow positions of all-CPU breakpoints without an index
	onCPU   int    // one-CPU breakpoints; 0 is the kernel's CPU-independent fast path
	allGen  gens
	ovGen   gens
	cpu     []cpuPart // per CPU, allocated on the task's first one-CPU breakpoint
}

// pinned returns pinned_t(c): the task's breakpoints on every CPU plus its
// breakpoints bound to c.
func (t *taskPool) pinned(c int) int {
	if t.onCPU == 0 {
		return t.all
	}
	return t.all + t.cpu[c].n
}

// pick chooses the raw index for a new breakpoint on cpu (AnyCPU or c): the
// lowest register free on every CPU the breakpoint can run on. An all-CPU
// breakpoint of a task whose one-CPU breakpoints fragment the indexes may
// find none although admission passed; it then gets an overflow position
// (Slot.Index() == NoIndex), see NoIndex.
func (t *taskPool) pick(cpu, n int) int {
	if cpu != AnyCPU {
		used := t.allMask
		if t.onCPU > 0 {
			used |= t.cpu[cpu].mask
		}
		return lowestFree(used, n)
	}
	used := t.allMask
	if t.onCPU > 0 {
		for i := range t.cpu {
			used |= t.cpu[i].mask
		}
	}
	if i := lowestFree(used, n); i >= 0 {
		return i
	}
	return overflowRaw(lowestFree(t.ovMask, MaxSlots))
}

// hold records a breakpoint on cpu at raw index and returns its generation.
func (t *taskPool) hold(cpu, raw, cpus int) uint32 {
	if cpu == AnyCPU {
		t.all++
		if raw < 0 {
			t.ovMask |= 1 << overflowPos(raw)
			return t.ovGen.take(overflowPos(raw))
		}
		t.allMask |= 1 << raw
		return t.allGen.take(raw)
	}
	if t.cpu == nil {
		t.cpu = make([]cpuPart, cpus)
	}
	t.onCPU++
	p := &t.cpu[cpu]
	p.n++
	p.mask |= 1 << raw
	return p.gen.take(raw)
}

// drop removes the breakpoint at raw index on cpu if gen is its holder.
func (t *taskPool) drop(cpu, raw int, gen uint32) bool {
	if cpu == AnyCPU {
		if raw < 0 {
			if !t.ovGen.give(overflowPos(raw), gen) {
				return false
			}
			t.ovMask &^= 1 << overflowPos(raw)
		} else {
			if !t.allGen.give(raw, gen) {
				return false
			}
			t.allMask &^= 1 << raw
		}
		t.all--
		return true
	}
	if t.cpu == nil || !t.cpu[cpu].gen.give(raw, gen) {
		return false
	}
	p := &t.cpu[cpu]
	p.n--
	p.mask &^= 1 << raw
	t.onCPU--
	return true
}
